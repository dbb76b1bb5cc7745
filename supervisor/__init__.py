"""trio-supervisor: supervision trees of guarded service actors, and the resilience rules they apply
(circuit breaker, retry, timeout, fallback, throttle, bulkhead, health), also usable as decorators
on any trio code.

The public names are re-exported here; the modules behind them are private.
"""

from ._breaker import CircuitBreaker as CircuitBreaker
from ._breaker import CircuitBreakerConfig as CircuitBreakerConfig
from ._breaker import CircuitState as CircuitState
from ._breaker import CircuitStateChange as CircuitStateChange
from ._breaker import circuit_breaker as circuit_breaker
from ._bulkhead import Bulkhead as Bulkhead
from ._bulkhead import bulkhead as bulkhead
from ._errors import BulkheadFullError as BulkheadFullError
from ._errors import CircuitOpenError as CircuitOpenError
from ._errors import ConfigError as ConfigError
from ._errors import OperationTimeout as OperationTimeout
from ._errors import RateLimitExceeded as RateLimitExceeded
from ._errors import ResilienceError as ResilienceError
from ._fallback import cache_fallback as cache_fallback
from ._fallback import default_fallback as default_fallback
from ._fallback import degraded_fallback as degraded_fallback
from ._fallback import fallback as fallback
from ._health import HealthTracker as HealthTracker
from ._health import ServiceStatus as ServiceStatus
from ._retry import ExponentialBackoff as ExponentialBackoff
from ._retry import LinearBackoff as LinearBackoff
from ._retry import Retrier as Retrier
from ._retry import RetryPolicy as RetryPolicy
from ._retry import retry as retry
from ._throttle import throttle as throttle
from ._timeout import TimeoutBudget as TimeoutBudget
from ._timeout import timeout as timeout

__all__ = [
    "Bulkhead",
    "BulkheadFullError",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStateChange",
    "ConfigError",
    "ExponentialBackoff",
    "HealthTracker",
    "LinearBackoff",
    "OperationTimeout",
    "RateLimitExceeded",
    "ResilienceError",
    "Retrier",
    "RetryPolicy",
    "ServiceStatus",
    "TimeoutBudget",
    "bulkhead",
    "cache_fallback",
    "circuit_breaker",
    "default_fallback",
    "degraded_fallback",
    "fallback",
    "retry",
    "throttle",
    "timeout",
]
