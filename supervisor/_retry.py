"""Placeholder: being written."""

from typing import Any

ExponentialBackoff: Any = None
LinearBackoff: Any = None
Retrier: Any = None
RetryPolicy: Any = None
retry: Any = None
