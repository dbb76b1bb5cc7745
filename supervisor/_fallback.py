"""Placeholder: being written."""

from typing import Any

cache_fallback: Any = None
default_fallback: Any = None
degraded_fallback: Any = None
fallback: Any = None
