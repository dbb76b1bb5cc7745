"""The pure state machines behind the rules, for use on their own.

Each takes the current time as an argument and never calls trio or reads a clock, so it can be
driven by any event loop, a simulation, or a test with explicit times. The decorators and the
guarded services of a supervision tree drive these same objects.
"""

from .observe._aggregates import ServiceMetrics as ServiceMetrics
from .rules._adaptive import AdaptiveLimitCore as AdaptiveLimitCore
from .rules._adaptive import LimitAlgorithm as LimitAlgorithm
from .rules._adaptive import LimitStatistics as LimitStatistics
from .rules._breaker import BreakerCore as BreakerCore
from .rules._breaker import Permit as Permit
from .rules._breaker import Refusal as Refusal
from .rules._budget import BudgetCore as BudgetCore
from .rules._bulkhead import Admission as Admission
from .rules._bulkhead import BulkheadCore as BulkheadCore
from .rules._cache import TtlLruCache as TtlLruCache
from .rules._classify import Outcome as Outcome
from .rules._classify import OutcomeClassifier as OutcomeClassifier
from .rules._counts import TopCounts as TopCounts
from .rules._faults import FaultCore as FaultCore
from .rules._health import HealthWindow as HealthWindow
from .rules._hedge import HedgeCore as HedgeCore
from .rules._hedge import HedgeLaunched as HedgeLaunched
from .rules._hedge import HedgeRun as HedgeRun
from .rules._hedge import HedgeSettled as HedgeSettled
from .rules._hedge import HedgeStatistics as HedgeStatistics
from .rules._hedge import Verdict as Verdict
from .rules._intensity import RestartIntensity as RestartIntensity
from .rules._outcome_window import OutcomeWindow as OutcomeWindow
from .rules._rate_breaker import RateBreakerCore as RateBreakerCore
from .rules._rate_breaker import TimedPermit as TimedPermit
from .rules._retry import RetrySchedule as RetrySchedule
from .rules._retry_budget import RetryBudget as RetryBudget
from .rules._retry_plan import RetryPlan as RetryPlan
from .rules._window import SlidingWindowCore as SlidingWindowCore

__all__ = [
    "AdaptiveLimitCore",
    "Admission",
    "BreakerCore",
    "BudgetCore",
    "BulkheadCore",
    "FaultCore",
    "HealthWindow",
    "HedgeCore",
    "HedgeLaunched",
    "HedgeRun",
    "HedgeSettled",
    "HedgeStatistics",
    "LimitAlgorithm",
    "LimitStatistics",
    "Outcome",
    "OutcomeClassifier",
    "OutcomeWindow",
    "Permit",
    "RateBreakerCore",
    "Refusal",
    "RestartIntensity",
    "RetryBudget",
    "RetryPlan",
    "RetrySchedule",
    "ServiceMetrics",
    "SlidingWindowCore",
    "TimedPermit",
    "TopCounts",
    "TtlLruCache",
    "Verdict",
]
