"""Events as one line of text: the :class:`EventSnapshot` that the monitor, the logs and the
snapshots show."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from ..rules._breaker import CircuitStateChange
from ..rules._health import HealthChange
from ..rules._hedge import HedgeLaunched, HedgeSettled
from ._bus import SubscriberFailed
from ._events import (
    AutoShutdownTriggered,
    ChildCrashed,
    ChildIgnored,
    ChildParked,
    ChildRestarted,
    ChildStarted,
    ChildStopped,
    FallbackUsed,
    IntensityExceeded,
    RequestCompleted,
    RequestFailed,
    RequestRefused,
    RestartScheduled,
    RetryGaveUp,
    RetryScheduled,
)
from ._fault_events import FaultInjected
from ._snapshot import EventSnapshot

if TYPE_CHECKING:
    pass


_DETAIL_LIMIT: Final = 120


def _error(error: BaseException | None) -> str:
    if error is None:
        return "normal"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _detail(event: object) -> str:
    if isinstance(
        event, RequestCompleted | RequestFailed | RetryScheduled | RetryGaveUp | RequestRefused
    ):
        return _request_detail(event)
    if isinstance(event, HedgeLaunched | HedgeSettled):
        return _hedge_detail(event)
    return _transition_detail(event)


def _request_detail(
    event: RequestCompleted | RequestFailed | RetryScheduled | RetryGaveUp | RequestRefused,
) -> str:
    if isinstance(event, RequestCompleted):
        text = f"answered in {1000.0 * event.latency:.1f} ms"
        return text if event.attempts == 1 else f"{text} after {event.attempts} attempts"
    if isinstance(event, RequestFailed):
        return f"attempt {event.attempt} failed after {1000.0 * event.latency:.1f} ms: " + _error(
            event.error
        )
    if isinstance(event, RetryScheduled):
        error = type(event.error).__name__
        return f"attempt {event.attempt} failed ({error}); retry in {event.delay:.3g}s"
    if isinstance(event, RetryGaveUp):
        return f"no more retries after {event.attempts} attempt(s): {event.reason.value}"
    if isinstance(event, RequestRefused):
        # A streak's refusals say how many in the snapshot's ``count`` (the rows show it).
        text = f"refused: {event.refusal.value}"
        return f"{text}, retry after {event.retry_after:.3g}s" if event.retry_after else text
    return ""


def _hedge_detail(event: HedgeLaunched | HedgeSettled) -> str:
    if isinstance(event, HedgeLaunched):
        why = "no answer" if event.reason == "delay" else "a failure"
        return f"hedge #{event.hedge} sent after {event.after:.3g}s ({why})"
    won = "every attempt failed" if event.winner is None else f"attempt {event.winner} won"
    return f"{won}; {event.hedges} hedged, {event.cancelled} cancelled"


def _transition_detail(event: object) -> str:
    if isinstance(event, FallbackUsed):
        return f"{event.kind} fallback answered ({type(event.cause).__name__})"
    if isinstance(event, CircuitStateChange):
        return f"breaker {event.old_state.value} -> {event.new_state.value} ({event.reason.value})"
    if isinstance(event, ChildStarted):
        return "started" if not event.restarts else f"started (restarted {event.restarts} times)"
    if isinstance(event, ChildCrashed):
        return f"crashed: {_error(event.error)}"
    if isinstance(event, ChildRestarted):
        text = f"restart #{event.restarts} after {event.delay:.3g}s"
        return f"{text}, on probation" if event.probation else text
    if isinstance(event, ChildStopped):
        return "stopped" if event.reason is None else f"stopped: {_error(event.reason)}"
    if isinstance(event, ChildParked):
        if math.isinf(event.until):
            return "parked while its breaker is forced open"
        return f"parked until t={event.until:.3f} (breaker open)"
    if isinstance(event, IntensityExceeded):
        return f"gave up: more than {event.max_restarts} restarts within {event.within:g}s"
    if isinstance(event, HealthChange):
        return "healthy again" if event.healthy else "unhealthy"
    if isinstance(event, SubscriberFailed):
        return f"listener {event.callback} removed: {_error(event.error)}"
    if isinstance(event, FaultInjected):
        return f"injected at {event.point.value}: {event.fault.describe()}"
    return _restart_detail(event)


def _restart_detail(event: object) -> str:
    if isinstance(event, RestartScheduled):
        others = len(event.group) - 1
        text = f"restart in {event.delay:.3g}s"
        return f"{text} with {others} others" if others > 0 else text
    if isinstance(event, ChildIgnored):
        return "start ignored: kept terminated"
    if isinstance(event, AutoShutdownTriggered):
        return f"shuts down: significant child {event.significant} exited"
    return ""


def describe_event(event: object, *, at: float = 0.0) -> EventSnapshot:
    """``event`` as an :class:`EventSnapshot`: its class name, where (``path``, or ``name`` for
    breaker and health changes), when (its ``at``, else the given ``at``), and a one-line detail
    (at most 120 characters). Works for any object; unknown kinds get an empty detail."""
    where: Any = getattr(event, "path", None)
    if not isinstance(where, str):
        where = getattr(event, "name", "")
        where = where if isinstance(where, str) else ""
    when = getattr(event, "at", at)
    detail = _detail(event)
    if len(detail) > _DETAIL_LIMIT:
        detail = detail[: _DETAIL_LIMIT - 3] + "..."
    count = getattr(event, "count", 1) if isinstance(event, RequestRefused) else 1
    return EventSnapshot(
        at=float(when) if isinstance(when, int | float) else at,
        kind=type(event).__name__,
        path=where,
        detail=detail,
        count=count,
    )
