"""The pure state machines behind the rules, for use on their own.

Each takes the current time as an argument and never calls trio or reads a clock, so it can be
driven by any event loop, a simulation, or a test with explicit times. The decorators and the
guarded services of a supervision tree drive these same objects.
"""

from ._breaker import BreakerCore as BreakerCore
from ._breaker import Permit as Permit
from ._breaker import Refusal as Refusal
from ._bulkhead import Admission as Admission
from ._bulkhead import BulkheadCore as BulkheadCore
from ._fallback import TtlLruCache as TtlLruCache
from ._health import HealthWindow as HealthWindow
from ._intensity import RestartIntensity as RestartIntensity
from ._metrics import ServiceMetrics as ServiceMetrics
from ._retry import RetrySchedule as RetrySchedule
from ._throttle import SlidingWindowCore as SlidingWindowCore
from ._timeout import BudgetCore as BudgetCore

__all__ = [
    "Admission",
    "BreakerCore",
    "BudgetCore",
    "BulkheadCore",
    "HealthWindow",
    "Permit",
    "Refusal",
    "RestartIntensity",
    "RetrySchedule",
    "ServiceMetrics",
    "SlidingWindowCore",
    "TtlLruCache",
]
