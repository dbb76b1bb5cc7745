"""trio-supervisor: supervision trees of guarded service actors, and the resilience rules they apply
(circuit breaker, retry, timeout, fallback, throttle, bulkhead, health), also usable as decorators
on any trio code.

The public names are re-exported here; the modules behind them are private. The pure state
machines behind the rules are public in :mod:`supervisor.cores`.
"""

from ._errors import BulkheadFullError as BulkheadFullError
from ._errors import CircuitOpenError as CircuitOpenError
from ._errors import ConfigError as ConfigError
from ._errors import OperationTimeout as OperationTimeout
from ._errors import RateLimitExceeded as RateLimitExceeded
from ._errors import ResilienceError as ResilienceError
from ._errors import RetryableResult as RetryableResult
from .console._attach import AddressError as AddressError
from .console._attach import AttachError as AttachError
from .console._attach import AttachTimeout as AttachTimeout
from .console._attach import default_socket_path as default_socket_path
from .console._attach import fetch_snapshot as fetch_snapshot
from .console._attach import serve_snapshots as serve_snapshots
from .console._monitor import Monitor as Monitor
from .console._monitor import monitor as monitor
from .console._render import render as render
from .guards._adaptive import AdaptiveBulkhead as AdaptiveBulkhead
from .guards._adaptive import adaptive_bulkhead as adaptive_bulkhead
from .guards._breaker import CircuitBreaker as CircuitBreaker
from .guards._breaker_factory import circuit_breaker as circuit_breaker
from .guards._bulkhead import Bulkhead as Bulkhead
from .guards._bulkhead import BulkheadStatistics as BulkheadStatistics
from .guards._bulkhead import bulkhead as bulkhead
from .guards._fallback import cache_fallback as cache_fallback
from .guards._fallback import default_fallback as default_fallback
from .guards._fallback import degraded_fallback as degraded_fallback
from .guards._fallback import fallback as fallback
from .guards._faults import FaultInjector as FaultInjector
from .guards._faults import inject_faults as inject_faults
from .guards._health import HealthTracker as HealthTracker
from .guards._hedge import Hedge as Hedge
from .guards._hedge import hedge as hedge
from .guards._limiter import RateLimiter as RateLimiter
from .guards._retry import Retrier as Retrier
from .guards._retry import retry as retry
from .guards._retry import retrying as retrying
from .guards._retry_ext import Attempt as Attempt
from .guards._retry_ext import Retrying as Retrying
from .guards._testing import TestingMode as TestingMode
from .guards._testing import testing as testing
from .guards._throttle import throttle as throttle
from .guards._timeout import TimeoutBudget as TimeoutBudget
from .guards._timeout import timeout as timeout
from .observe._bus import CallTracer as CallTracer
from .observe._bus import EventBus as EventBus
from .observe._bus import SubscriberFailed as SubscriberFailed
from .observe._bus import Subscription as Subscription
from .observe._events import AutoShutdownTriggered as AutoShutdownTriggered
from .observe._events import ChildCrashed as ChildCrashed
from .observe._events import ChildIgnored as ChildIgnored
from .observe._events import ChildParked as ChildParked
from .observe._events import ChildRestarted as ChildRestarted
from .observe._events import ChildStarted as ChildStarted
from .observe._events import ChildStopped as ChildStopped
from .observe._events import FallbackUsed as FallbackUsed
from .observe._events import IntensityExceeded as IntensityExceeded
from .observe._events import Refusal as Refusal
from .observe._events import RequestCompleted as RequestCompleted
from .observe._events import RequestFailed as RequestFailed
from .observe._events import RequestRefused as RequestRefused
from .observe._events import RestartScheduled as RestartScheduled
from .observe._events import RetryGaveUp as RetryGaveUp
from .observe._events import RetryScheduled as RetryScheduled
from .observe._events import TreeEvent as TreeEvent
from .observe._fault_events import FaultInjected as FaultInjected
from .observe._logging import EventLogger as EventLogger
from .observe._metrics import Metrics as Metrics
from .observe._otel import OpenTelemetryExporter as OpenTelemetryExporter
from .observe._otel import OpenTelemetryStatistics as OpenTelemetryStatistics
from .observe._prometheus import PrometheusCollector as PrometheusCollector
from .observe._prometheus import prometheus_text as prometheus_text
from .observe._snapshot import EventSnapshot as EventSnapshot
from .observe._snapshot import LatencySnapshot as LatencySnapshot
from .observe._snapshot import NodeSnapshot as NodeSnapshot
from .observe._snapshot import ServiceSnapshot as ServiceSnapshot
from .observe._snapshot import SystemSnapshot as SystemSnapshot
from .observe._snapshot import snapshot_from_json as snapshot_from_json
from .observe._snapshot import snapshot_to_json as snapshot_to_json
from .rules._breaker import ChangeReason as ChangeReason
from .rules._breaker import CircuitBreakerConfig as CircuitBreakerConfig
from .rules._breaker import CircuitBreakerStatistics as CircuitBreakerStatistics
from .rules._breaker import CircuitState as CircuitState
from .rules._breaker import CircuitStateChange as CircuitStateChange
from .rules._faults import Fault as Fault
from .rules._faults import FaultDecision as FaultDecision
from .rules._faults import FaultFlags as FaultFlags
from .rules._faults import FaultKind as FaultKind
from .rules._faults import FaultPoint as FaultPoint
from .rules._faults import fault_flags as fault_flags
from .rules._health import HealthChange as HealthChange
from .rules._health import ServiceStatus as ServiceStatus
from .rules._outcome_window import WindowStatistics as WindowStatistics
from .rules._rate_breaker import OpenBackoff as OpenBackoff
from .rules._rate_breaker import RateWindow as RateWindow
from .rules._retry import ExponentialBackoff as ExponentialBackoff
from .rules._retry import LinearBackoff as LinearBackoff
from .rules._retry import RetryPolicy as RetryPolicy
from .rules._retry_budget import RetryBudget as RetryBudget
from .rules._retry_budget import RetryBudgetConfig as RetryBudgetConfig
from .rules._retry_budget import RetryBudgetStatistics as RetryBudgetStatistics
from .rules._retry_plan import GiveUpReason as GiveUpReason
from .rules._retry_plan import RetryDetails as RetryDetails
from .store import MemoryStore as MemoryStore
from .store import RedisStore as RedisStore
from .store import RedisStoreStatistics as RedisStoreStatistics
from .store import Store as Store
from .store import StoreAuthError as StoreAuthError
from .store import StoreConnectionError as StoreConnectionError
from .store import StoreError as StoreError
from .store import StoreRecovered as StoreRecovered
from .store import StoreUnavailable as StoreUnavailable
from .testkit._errors import WaitTimeout as WaitTimeout
from .testkit._recorder import EventRecorder as EventRecorder
from .testkit._waiting import wait_for_breaker as wait_for_breaker
from .testkit._waiting import wait_for_events as wait_for_events
from .testkit._waiting import wait_for_service as wait_for_service
from .tree._children import ChildCount as ChildCount
from .tree._children import ChildInfo as ChildInfo
from .tree._children import ChildState as ChildState
from .tree._children import SupervisorGaveUp as SupervisorGaveUp
from .tree._children import SupervisorShutdown as SupervisorShutdown
from .tree._dynamic import DynamicSupervisorRef as DynamicSupervisorRef
from .tree._fault_specs import FaultSpec as FaultSpec
from .tree._limit_specs import AdaptiveLimitSpec as AdaptiveLimitSpec
from .tree._limit_specs import HedgeSpec as HedgeSpec
from .tree._loading import load_tree as load_tree
from .tree._loading import load_tree_file as load_tree_file
from .tree._otp import IGNORE as IGNORE
from .tree._otp import AutoShutdown as AutoShutdown
from .tree._otp import Ignore as Ignore
from .tree._otp import RequestError as RequestError
from .tree._rule_specs import BreakerSpec as BreakerSpec
from .tree._rule_specs import BulkheadSpec as BulkheadSpec
from .tree._rule_specs import FallbackSpec as FallbackSpec
from .tree._rule_specs import RetrySpec as RetrySpec
from .tree._rule_specs import ThrottleSpec as ThrottleSpec
from .tree._run import run_tree as run_tree
from .tree._service import ServiceStatistics as ServiceStatistics
from .tree._service_ref import ServiceRef as ServiceRef
from .tree._specs import ChildSpec as ChildSpec
from .tree._specs import Restart as Restart
from .tree._specs import RestartBackoff as RestartBackoff
from .tree._specs import ServiceSpec as ServiceSpec
from .tree._specs import Strategy as Strategy
from .tree._specs import SupervisorSpec as SupervisorSpec
from .tree._tree import Tree as Tree

__all__ = [
    "IGNORE",
    "AdaptiveBulkhead",
    "AdaptiveLimitSpec",
    "AddressError",
    "AttachError",
    "AttachTimeout",
    "Attempt",
    "AutoShutdown",
    "AutoShutdownTriggered",
    "BreakerSpec",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadSpec",
    "BulkheadStatistics",
    "CallTracer",
    "ChangeReason",
    "ChildCount",
    "ChildCrashed",
    "ChildIgnored",
    "ChildInfo",
    "ChildParked",
    "ChildRestarted",
    "ChildSpec",
    "ChildStarted",
    "ChildState",
    "ChildStopped",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerStatistics",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStateChange",
    "ConfigError",
    "DynamicSupervisorRef",
    "EventBus",
    "EventLogger",
    "EventRecorder",
    "EventSnapshot",
    "ExponentialBackoff",
    "FallbackSpec",
    "FallbackUsed",
    "Fault",
    "FaultDecision",
    "FaultFlags",
    "FaultInjected",
    "FaultInjector",
    "FaultKind",
    "FaultPoint",
    "FaultSpec",
    "GiveUpReason",
    "HealthChange",
    "HealthTracker",
    "Hedge",
    "HedgeSpec",
    "Ignore",
    "IntensityExceeded",
    "LatencySnapshot",
    "LinearBackoff",
    "MemoryStore",
    "Metrics",
    "Monitor",
    "NodeSnapshot",
    "OpenBackoff",
    "OpenTelemetryExporter",
    "OpenTelemetryStatistics",
    "OperationTimeout",
    "PrometheusCollector",
    "RateLimitExceeded",
    "RateLimiter",
    "RateWindow",
    "RedisStore",
    "RedisStoreStatistics",
    "Refusal",
    "RequestCompleted",
    "RequestError",
    "RequestFailed",
    "RequestRefused",
    "ResilienceError",
    "Restart",
    "RestartBackoff",
    "RestartScheduled",
    "Retrier",
    "RetryBudget",
    "RetryBudgetConfig",
    "RetryBudgetStatistics",
    "RetryDetails",
    "RetryGaveUp",
    "RetryPolicy",
    "RetryScheduled",
    "RetrySpec",
    "RetryableResult",
    "Retrying",
    "ServiceRef",
    "ServiceSnapshot",
    "ServiceSpec",
    "ServiceStatistics",
    "ServiceStatus",
    "Store",
    "StoreAuthError",
    "StoreConnectionError",
    "StoreError",
    "StoreRecovered",
    "StoreUnavailable",
    "Strategy",
    "SubscriberFailed",
    "Subscription",
    "SupervisorGaveUp",
    "SupervisorShutdown",
    "SupervisorSpec",
    "SystemSnapshot",
    "TestingMode",
    "ThrottleSpec",
    "TimeoutBudget",
    "Tree",
    "TreeEvent",
    "WaitTimeout",
    "WindowStatistics",
    "adaptive_bulkhead",
    "bulkhead",
    "cache_fallback",
    "circuit_breaker",
    "default_fallback",
    "default_socket_path",
    "degraded_fallback",
    "fallback",
    "fault_flags",
    "fetch_snapshot",
    "hedge",
    "inject_faults",
    "load_tree",
    "load_tree_file",
    "monitor",
    "prometheus_text",
    "render",
    "retry",
    "retrying",
    "run_tree",
    "serve_snapshots",
    "snapshot_from_json",
    "snapshot_to_json",
    "testing",
    "throttle",
    "timeout",
    "wait_for_breaker",
    "wait_for_events",
    "wait_for_service",
]
