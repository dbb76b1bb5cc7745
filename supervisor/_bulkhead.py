"""Placeholder: being written."""

from typing import Any

Bulkhead: Any = None
bulkhead: Any = None
