"""Placeholder: being written."""

from typing import Any

CircuitBreaker: Any = None
CircuitBreakerConfig: Any = None
CircuitState: Any = None
CircuitStateChange: Any = None
circuit_breaker: Any = None
