"""The events of a running supervision tree: every transition, as a frozen value on one bus.

Each event names where it happened (``path``, e.g. ``"app/backend/payments"``) and when (``at``,
trio time). Breaker state changes are published as :class:`~supervisor.CircuitStateChange` (with
the service's path as ``name``) and health changes as the health tracker's own events; the rest are
defined here. Metrics, health, the monitor and user code (logging, Prometheus, OpenTelemetry) all
read the same stream.
"""

from __future__ import annotations

import enum

import attrs

from ..rules._retry_plan import GiveUpReason

__all__ = [
    "AutoShutdownTriggered",
    "ChildCrashed",
    "ChildIgnored",
    "ChildParked",
    "ChildRestarted",
    "ChildStarted",
    "ChildStopped",
    "FallbackUsed",
    "IntensityExceeded",
    "Refusal",
    "RequestCompleted",
    "RequestFailed",
    "RequestRefused",
    "RestartScheduled",
    "RetryGaveUp",
    "RetryScheduled",
    "TreeEvent",
]


@attrs.frozen(kw_only=True)
class TreeEvent:
    """Fields every tree event has."""

    path: str
    """Where it happened: the child's or service's path in the tree."""
    at: float
    """Trio time of the transition."""


# -- supervision ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ChildStarted(TreeEvent):
    """A child finished starting (its start hook returned)."""

    restarts: int = 0
    """How many times this child had been restarted before (0 for a first start)."""


@attrs.frozen(kw_only=True)
class ChildCrashed(TreeEvent):
    """A child failed: its handler raised, its start failed, or (for a supervisor) it gave up."""

    error: BaseException
    """What it raised."""


@attrs.frozen(kw_only=True)
class ChildRestarted(TreeEvent):
    """A child was restarted by its supervisor (after ``delay`` seconds of backoff)."""

    restarts: int
    """How many times this child has now been restarted."""
    delay: float
    """The backoff waited before this restart."""
    probation: bool = False
    """Restarted because its breaker turned half-open: trial requests decide whether it stays."""


@attrs.frozen(kw_only=True)
class ChildStopped(TreeEvent):
    """A child stopped and is not (yet) coming back."""

    reason: BaseException | None
    """``None`` for a normal stop, else the error."""


@attrs.frozen(kw_only=True)
class ChildParked(TreeEvent):
    """A crashed service child is left stopped while its breaker is open, instead of
    restart-looping; it is restarted on probation once the breaker turns half-open."""

    until: float
    """Trio time the breaker turns half-open (``inf`` while it is forced open)."""


@attrs.frozen(kw_only=True)
class IntensityExceeded(TreeEvent):
    """A supervisor restarted more than ``max_restarts`` times within ``within`` seconds: it stops
    its children and fails, and its parent handles that failure."""

    max_restarts: int
    """The limit that was exceeded."""
    within: float
    """The window of the limit, in seconds."""


@attrs.frozen(kw_only=True)
class RestartScheduled(TreeEvent):
    """A supervisor decided to restart the child at ``path`` (and its group) and counted it
    against its intensity; the restart happens ``delay`` seconds later (``ChildRestarted``),
    unless it is called off (``terminate_child``, a stop) meanwhile."""

    delay: float
    """The backoff before the restart, in seconds."""
    group: tuple[str, ...] = ()
    """The paths of every child that restarts with it, in start order (itself included)."""


@attrs.frozen(kw_only=True)
class ChildIgnored(TreeEvent):
    """A child's start (or restart) said ``ignore``: it is kept terminated, with no actor (a
    temporary one is forgotten); no crash is counted."""


@attrs.frozen(kw_only=True)
class AutoShutdownTriggered(TreeEvent):
    """A significant child exited by itself and the supervisor at ``path`` shuts down (OTP's
    ``auto_shutdown``): it stops its children and exits normally (reason ``shutdown``)."""

    significant: str
    """The path of the significant child whose exit triggered it."""


# -- requests to guarded services ----------------------------------------------------------------


class Refusal(enum.Enum):
    """Which rule refused a request on the caller's side."""

    CIRCUIT_OPEN = "circuit_open"
    BULKHEAD_FULL = "bulkhead_full"
    RATE_LIMITED = "rate_limited"


@attrs.frozen(kw_only=True)
class RequestCompleted(TreeEvent):
    """A service answered a request (after ``attempts`` attempts)."""

    latency: float
    """Seconds from the call to the answer, retries included."""
    attempts: int = 1
    """Attempts made, the first included."""


@attrs.frozen(kw_only=True)
class RequestFailed(TreeEvent):
    """One attempt of a request failed (the handler raised, the actor crashed, or it timed out)."""

    latency: float
    """Seconds the attempt took."""
    error: BaseException
    """What it raised."""
    attempt: int = 1
    """Which attempt (1 for the first)."""


@attrs.frozen(kw_only=True)
class RequestRefused(TreeEvent):
    """A rule refused a request on the caller's side, without a mailbox hop.

    Refusals are published per *streak* (see docs/monitoring.md): the first refusal of a streak
    as its own event (``count`` 1), the streak's further refusals as one event when it ends, with
    ``count`` of them, ``since`` the first of those and ``at`` the last. A streak is refusals of
    one service by one rule, in one rate bucket of the tree's metrics, with no other event of
    that service in between; so the sum of ``count`` is exact, and so is every rate.
    """

    refusal: Refusal
    """Which rule refused."""
    retry_after: float = 0.0
    """Seconds until the rule may admit it (0 when unknown); of the last refusal counted."""
    count: int = 1
    """How many refusals this event stands for."""
    since: float | None = None
    """For ``count`` > 1 or an event that ends a streak: the time of the first refusal counted
    (``at`` is the last); ``None`` for a single refusal published as it happens."""


@attrs.frozen(kw_only=True)
class RetryScheduled(TreeEvent):
    """A failed request will be retried after ``delay`` seconds (holding no bulkhead slot)."""

    attempt: int
    """The attempt that failed (1 for the first)."""
    delay: float
    """Seconds until the next attempt."""
    error: BaseException
    """Why the attempt failed."""


@attrs.frozen(kw_only=True)
class RetryGaveUp(TreeEvent):
    """A failed request of a service with a retry rule will not be retried (any more): the
    ``on_giveup`` hook of a guarded service. Published right after the attempt's
    :class:`RequestFailed` (or before the :class:`RequestCompleted` that answers with a result
    ``retry_on_result`` would have retried)."""

    attempts: int
    """Attempts made, the first included."""
    reason: GiveUpReason
    """Why retrying stopped (``budget``: the service's retry budget is spent)."""
    error: BaseException | None = None
    """The last attempt's error, or ``None`` when it returned a result."""


@attrs.frozen(kw_only=True)
class FallbackUsed(TreeEvent):
    """A refused or failed request was answered by the service's fallback."""

    kind: str
    """``"default"``, ``"cache"`` or ``"degraded"``."""
    cause: BaseException
    """The refusal or failure the fallback replaced."""
