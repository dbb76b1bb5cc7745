"""trio-supervisor: supervision trees of guarded service actors, and the resilience rules they apply
(circuit breaker, retry, timeout, fallback, throttle, bulkhead, health), also usable as decorators
on any trio code.

The public names are re-exported here; the modules behind them are private. The pure state
machines behind the rules are public in :mod:`supervisor.cores`.
"""

from ._attach import AddressError as AddressError
from ._attach import AttachError as AttachError
from ._attach import AttachTimeout as AttachTimeout
from ._attach import fetch_snapshot as fetch_snapshot
from ._attach import serve_snapshots as serve_snapshots
from ._breaker import ChangeReason as ChangeReason
from ._breaker import CircuitBreaker as CircuitBreaker
from ._breaker import CircuitBreakerConfig as CircuitBreakerConfig
from ._breaker import CircuitBreakerStatistics as CircuitBreakerStatistics
from ._breaker import CircuitState as CircuitState
from ._breaker import CircuitStateChange as CircuitStateChange
from ._breaker import circuit_breaker as circuit_breaker
from ._bulkhead import Bulkhead as Bulkhead
from ._bulkhead import BulkheadStatistics as BulkheadStatistics
from ._bulkhead import bulkhead as bulkhead
from ._bus import EventBus as EventBus
from ._bus import SubscriberFailed as SubscriberFailed
from ._bus import Subscription as Subscription
from ._errors import BulkheadFullError as BulkheadFullError
from ._errors import CircuitOpenError as CircuitOpenError
from ._errors import ConfigError as ConfigError
from ._errors import OperationTimeout as OperationTimeout
from ._errors import RateLimitExceeded as RateLimitExceeded
from ._errors import ResilienceError as ResilienceError
from ._events import ChildCrashed as ChildCrashed
from ._events import ChildParked as ChildParked
from ._events import ChildRestarted as ChildRestarted
from ._events import ChildStarted as ChildStarted
from ._events import ChildStopped as ChildStopped
from ._events import FallbackUsed as FallbackUsed
from ._events import IntensityExceeded as IntensityExceeded
from ._events import Refusal as Refusal
from ._events import RequestCompleted as RequestCompleted
from ._events import RequestFailed as RequestFailed
from ._events import RequestRefused as RequestRefused
from ._events import RetryScheduled as RetryScheduled
from ._events import TreeEvent as TreeEvent
from ._fallback import cache_fallback as cache_fallback
from ._fallback import default_fallback as default_fallback
from ._fallback import degraded_fallback as degraded_fallback
from ._fallback import fallback as fallback
from ._health import HealthChange as HealthChange
from ._health import HealthTracker as HealthTracker
from ._health import ServiceStatus as ServiceStatus
from ._metrics import EventLogger as EventLogger
from ._metrics import Metrics as Metrics
from ._metrics import PrometheusCollector as PrometheusCollector
from ._metrics import prometheus_text as prometheus_text
from ._monitor import Monitor as Monitor
from ._monitor import monitor as monitor
from ._monitor import render as render
from ._retry import ExponentialBackoff as ExponentialBackoff
from ._retry import LinearBackoff as LinearBackoff
from ._retry import Retrier as Retrier
from ._retry import RetryPolicy as RetryPolicy
from ._retry import retry as retry
from ._service import ServiceRef as ServiceRef
from ._service import ServiceStatistics as ServiceStatistics
from ._snapshot import EventSnapshot as EventSnapshot
from ._snapshot import LatencySnapshot as LatencySnapshot
from ._snapshot import NodeSnapshot as NodeSnapshot
from ._snapshot import ServiceSnapshot as ServiceSnapshot
from ._snapshot import SystemSnapshot as SystemSnapshot
from ._snapshot import snapshot_from_json as snapshot_from_json
from ._snapshot import snapshot_to_json as snapshot_to_json
from ._specs import BreakerSpec as BreakerSpec
from ._specs import BulkheadSpec as BulkheadSpec
from ._specs import ChildSpec as ChildSpec
from ._specs import FallbackSpec as FallbackSpec
from ._specs import Restart as Restart
from ._specs import RestartBackoff as RestartBackoff
from ._specs import RetrySpec as RetrySpec
from ._specs import ServiceSpec as ServiceSpec
from ._specs import Strategy as Strategy
from ._specs import SupervisorSpec as SupervisorSpec
from ._specs import ThrottleSpec as ThrottleSpec
from ._specs import load_tree as load_tree
from ._specs import load_tree_file as load_tree_file
from ._throttle import throttle as throttle
from ._timeout import TimeoutBudget as TimeoutBudget
from ._timeout import timeout as timeout
from ._tree import ChildInfo as ChildInfo
from ._tree import ChildState as ChildState
from ._tree import SupervisorGaveUp as SupervisorGaveUp
from ._tree import Tree as Tree
from ._tree import run_tree as run_tree

__all__ = [
    "AddressError",
    "AttachError",
    "AttachTimeout",
    "BreakerSpec",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadSpec",
    "BulkheadStatistics",
    "ChangeReason",
    "ChildCrashed",
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
    "EventBus",
    "EventLogger",
    "EventSnapshot",
    "ExponentialBackoff",
    "FallbackSpec",
    "FallbackUsed",
    "HealthChange",
    "HealthTracker",
    "IntensityExceeded",
    "LatencySnapshot",
    "LinearBackoff",
    "Metrics",
    "Monitor",
    "NodeSnapshot",
    "OperationTimeout",
    "PrometheusCollector",
    "RateLimitExceeded",
    "Refusal",
    "RequestCompleted",
    "RequestFailed",
    "RequestRefused",
    "ResilienceError",
    "Restart",
    "RestartBackoff",
    "Retrier",
    "RetryPolicy",
    "RetryScheduled",
    "RetrySpec",
    "ServiceRef",
    "ServiceSnapshot",
    "ServiceSpec",
    "ServiceStatistics",
    "ServiceStatus",
    "Strategy",
    "SubscriberFailed",
    "Subscription",
    "SupervisorGaveUp",
    "SupervisorSpec",
    "SystemSnapshot",
    "ThrottleSpec",
    "TimeoutBudget",
    "Tree",
    "TreeEvent",
    "bulkhead",
    "cache_fallback",
    "circuit_breaker",
    "default_fallback",
    "degraded_fallback",
    "fallback",
    "fetch_snapshot",
    "load_tree",
    "load_tree_file",
    "monitor",
    "prometheus_text",
    "render",
    "retry",
    "run_tree",
    "serve_snapshots",
    "snapshot_from_json",
    "snapshot_to_json",
    "throttle",
    "timeout",
]
