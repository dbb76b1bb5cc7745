"""Snapshots: one frozen, serialisable picture of a running system.

A :class:`SystemSnapshot` holds the supervision tree (each node's state, restarts, restart budget
and breaker state), one :class:`ServiceSnapshot` of metrics per guarded service, and the latest
events. The monitor renders snapshots, the attach server sends them as JSON, and users export them
(JSON, Prometheus, logs). They are plain data: strings for states, numbers for metrics, so that a
snapshot round-trips through JSON with :func:`snapshot_to_json` / :func:`snapshot_from_json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import attrs
import cattrs

__all__ = [
    "EventSnapshot",
    "LatencySnapshot",
    "NodeSnapshot",
    "ServiceSnapshot",
    "SystemSnapshot",
    "snapshot_from_json",
    "snapshot_to_json",
]


@attrs.frozen(kw_only=True)
class NodeSnapshot:
    """One node of the supervision tree."""

    path: str
    """Its path, e.g. ``"app/backend/payments"``."""
    name: str
    """The last part of the path."""
    kind: str
    """``"supervisor"``, ``"service"`` or ``"worker"``."""
    state: str
    """``"running"``, ``"restarting"``, ``"parked"``, ``"terminated"`` or ``"failed"``."""
    restarts: int = 0
    """Times this node was restarted by its supervisor."""
    restart_budget: int | None = None
    """For a supervisor: restarts it may still make within its intensity window."""
    breaker: str | None = None
    """For a service with a breaker: ``"closed"``, ``"open"`` or ``"half_open"``."""
    children: tuple[NodeSnapshot, ...] = ()
    """For a supervisor: its children in start order."""


@attrs.frozen(kw_only=True)
class LatencySnapshot:
    """Latency percentiles over the recent window, in milliseconds (0 when there is no sample)."""

    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    samples: int = 0
    """Samples in the window."""


@attrs.frozen(kw_only=True)
class ServiceSnapshot:
    """The metrics of one guarded service."""

    path: str
    """The service's path in the tree."""
    breaker: str | None = None
    """Breaker state (``None``: no breaker)."""
    healthy: bool = True
    """The health tracker's verdict."""
    health_score: float = 100.0
    """0 to 100 (see :class:`~supervisor.ServiceStatus`)."""
    availability: float = 100.0
    """Percent of outcomes that succeeded, since the start."""
    in_flight: int = 0
    """Requests running in the service actor now."""
    queued: int = 0
    """Requests waiting in its mailbox now."""
    queued_high_water: int = 0
    """The most requests ever waiting at once."""
    calls_per_second: float = 0.0
    """Requests started per second over the recent window."""
    latency: LatencySnapshot = attrs.field(factory=LatencySnapshot)
    """Latency of answered requests over the recent window."""
    error_rate: float = 0.0
    """Failed attempts / attempts over the recent window (0 to 1)."""
    successes: int = 0
    """Requests answered by the service, in total."""
    failures: int = 0
    """Failed attempts, in total."""
    errors_by_type: Mapping[str, int] = attrs.field(factory=dict)
    """Failed attempts by exception type name: the 20 most frequent names, the rest under
    ``"other"``."""
    refusals: Mapping[str, int] = attrs.field(factory=dict)
    """Requests refused on the caller's side, by rule (``circuit_open``, ``bulkhead_full``,
    ``rate_limited``)."""
    fallbacks: Mapping[str, int] = attrs.field(factory=dict)
    """Requests answered by the fallback, by kind (``default``, ``cache``, ``degraded``)."""
    retries: int = 0
    """Retry attempts scheduled, in total."""
    retry_delay_total: float = 0.0
    """Seconds of retry delay added, in total."""
    succeeded_after_retry: int = 0
    """Requests answered on a second or later attempt."""
    retries_exhausted: int = 0
    """Requests whose last attempt failed after at least one retry."""
    breaker_transitions: int = 0
    """Breaker state changes, in total."""
    time_in_state: Mapping[str, float] = attrs.field(factory=dict)
    """Seconds the breaker spent in each state."""
    restarts: int = 0
    """Restarts of the service actor."""
    health_checks: int = 0
    """Health checks run."""
    health_check_success_rate: float = 1.0
    """Passed checks / checks (1 when none ran)."""
    concurrency_limit: int | None = None
    """The adaptive concurrency limit of the bulkhead now (``None``: a fixed bulkhead)."""
    hedges: int = 0
    """Hedged attempts launched, in total."""
    hedge_wins: int = 0
    """Requests answered by a hedge rather than their first attempt."""
    hedges_cancelled: int = 0
    """Attempts cancelled because another attempt of the same request answered first."""


@attrs.frozen(kw_only=True)
class EventSnapshot:
    """One recent event, as text."""

    at: float
    """Trio time of the event."""
    kind: str
    """The event's class name (``ChildRestarted``, ``CircuitStateChange``, ...)."""
    path: str
    """Where it happened."""
    detail: str = ""
    """A short human-readable description."""


@attrs.frozen(kw_only=True)
class SystemSnapshot:
    """The whole system at one moment."""

    at: float
    """Trio time of the snapshot."""
    name: str
    """The root supervisor's name."""
    tree: NodeSnapshot
    """The supervision tree."""
    services: tuple[ServiceSnapshot, ...] = ()
    """Every guarded service, in tree order."""
    events: tuple[EventSnapshot, ...] = ()
    """The latest events, oldest first."""
    failure: str | None = None
    """Why the tree failed, if it did."""
    started_at: float = 0.0
    """Trio time the tree started (trio's clock has an arbitrary origin: the monitor shows every
    time relative to this one)."""


_CONVERTER: Final = cattrs.Converter(forbid_extra_keys=True)


def snapshot_to_json(snapshot: SystemSnapshot, *, indent: int | None = None) -> str:
    """The snapshot as a JSON document."""
    return json.dumps(_CONVERTER.unstructure(snapshot), indent=indent, sort_keys=True)


def snapshot_from_json(text: str | bytes) -> SystemSnapshot:
    """Read a snapshot written by :func:`snapshot_to_json`.

    Raises:
        ValueError: the text is not JSON (also: not UTF-8, nested too deeply to parse, a number
            too long to read) or not a snapshot (the message says which field, the first few
            when many are wrong; a tree nested too deeply to rebuild says so).
    """
    try:
        data: Any = json.loads(text)
        return _CONVERTER.structure(data, SystemSnapshot)
    except RecursionError as exc:
        raise ValueError("not a JSON snapshot: nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an over-long integer
        raise ValueError(f"not a JSON snapshot: {exc}") from exc
    except (cattrs.BaseValidationError, KeyError, TypeError, OverflowError) as exc:
        problems = (
            cattrs.transform_error(exc)
            if isinstance(exc, cattrs.BaseValidationError)
            else [str(exc)]
        )
        if any("maximum recursion depth" in problem for problem in problems):
            raise ValueError("not a valid snapshot: nested too deeply") from exc
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        details = "; ".join(problem[:200] for problem in problems[:5]) + more
        raise ValueError(f"not a valid snapshot: {details}") from exc
