"""Placeholder: being written."""

from typing import Any

throttle: Any = None
