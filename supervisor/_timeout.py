"""Placeholder: being written."""

from typing import Any

TimeoutBudget: Any = None
timeout: Any = None
