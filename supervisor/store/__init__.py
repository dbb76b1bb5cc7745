"""Where rule state lives: in this process (:class:`MemoryStore`, the default) or shared by a
fleet of processes through Redis (:class:`RedisStore`).

What may live here: keeping a rule's state, sharing it between processes (the Lua scripts, the
pure fleet logic that tells a local core the fleet's decisions, the trio tasks that move them),
and the fallback to local state when the server is unreachable. What may not: the request-path
logic of a rule (that is its core's, in ``rules/``), the rule shells and decorators (``guards/``,
above), and anything of the tree or the event bus.

See ``docs/scale-out.md`` for the design, what is exact and what is eventually consistent, and
the failure modes with their bounds.
"""

from ._base import BreakerSettings as BreakerSettings
from ._base import FleetThrottleLink as FleetThrottleLink
from ._base import MemoryStore as MemoryStore
from ._base import Store as Store
from ._base import ThrottleBinding as ThrottleBinding
from ._errors import StoreAuthError as StoreAuthError
from ._errors import StoreConnectionError as StoreConnectionError
from ._errors import StoreError as StoreError
from ._events import StoreEvent as StoreEvent
from ._events import StoreRecovered as StoreRecovered
from ._events import StoreUnavailable as StoreUnavailable
from ._fleet import Availability as Availability
from ._fleet import FleetBreakerCore as FleetBreakerCore
from ._fleet import FleetState as FleetState
from ._fleet import FleetView as FleetView
from ._fleet import LeaseAction as LeaseAction
from ._fleet import Report as Report
from ._fleet import booking_time as booking_time
from ._redis import RedisStore as RedisStore
from ._redis import RedisStoreStatistics as RedisStoreStatistics
from ._redis_connect import URL_ENV as URL_ENV
from ._redis_connect import redact_url as redact_url

__all__ = [
    "URL_ENV",
    "Availability",
    "BreakerSettings",
    "FleetBreakerCore",
    "FleetState",
    "FleetThrottleLink",
    "FleetView",
    "LeaseAction",
    "MemoryStore",
    "RedisStore",
    "RedisStoreStatistics",
    "Report",
    "Store",
    "StoreAuthError",
    "StoreConnectionError",
    "StoreError",
    "StoreEvent",
    "StoreRecovered",
    "StoreUnavailable",
    "ThrottleBinding",
    "booking_time",
]
