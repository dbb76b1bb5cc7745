"""Metrics and health of a supervision tree, computed from its event stream.

Three layers:

* :class:`ServiceMetrics` is the pure aggregator of one guarded service. It is fed the tree's
  events (:meth:`ServiceMetrics.record`) and never reads a clock nor calls trio: the time is each
  event's ``at``, or the ``now`` given to :meth:`ServiceMetrics.snapshot`. Its memory is bounded
  whatever the run length: counters, a ring of ten time buckets and a ring of latency samples.
* :class:`Metrics` subscribes to a tree's bus with one synchronous listener, owns one
  :class:`ServiceMetrics` and one :class:`~supervisor.HealthTracker` per service, keeps the latest
  events, and builds a :class:`~supervisor._snapshot.SystemSnapshot` (:meth:`Metrics.snapshot`).
  ``run_tree`` makes one by default (``tree.metrics``; ``tree.snapshot()``).
* Exports: :func:`prometheus_text` / :class:`PrometheusCollector` (Prometheus text exposition, with
  the optional ``prometheus-client`` library: ``pip install trio-supervisor[prometheus]``) and
  :class:`EventLogger` (a bus listener that logs each event with structured ``extra``).

Windows (all half-open, as everywhere in the project):

* ``calls_per_second`` and ``error_rate`` are computed over the last ``rate_window`` seconds
  (default 10), counted in ten buckets of ``rate_window / 10`` seconds: the bucket holding ``now``
  and the nine before it. Bucket ``k`` holds the times ``[k * width, (k + 1) * width)``.
  ``calls_per_second`` = requests that reached their outcome (answered, failed for good, or
  refused) in those buckets / ``rate_window``. ``error_rate`` = failed attempts / attempts
  (answered requests count their one successful attempt) in those buckets; 0 with no attempt.
* Latency percentiles are over the latencies of answered requests (``RequestCompleted.latency``,
  retries included) among the last ``latency_samples`` (default 1000) answers, keeping those less
  than ``latency_window`` seconds old (default 60): an answer exactly ``latency_window`` old is out.
  Percentiles use the nearest rank: ``p`` is the ``ceil(p * n)``-th smallest of ``n`` samples.
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from ._breaker import CircuitState, CircuitStateChange
from ._bus import SubscriberFailed
from ._config import COUNT, DURATION, UNSET, Unset
from ._events import (
    ChildCrashed,
    ChildParked,
    ChildRestarted,
    ChildStarted,
    ChildStopped,
    FallbackUsed,
    IntensityExceeded,
    Refusal,
    RequestCompleted,
    RequestFailed,
    RequestRefused,
    RetryScheduled,
)
from ._health import HealthChange, HealthTracker, ServiceStatus
from ._snapshot import (
    EventSnapshot,
    LatencySnapshot,
    NodeSnapshot,
    ServiceSnapshot,
    SystemSnapshot,
)

if TYPE_CHECKING:
    from ._tree import Tree

__all__ = [
    "BreakerOpened",
    "EventLogger",
    "Metrics",
    "MetricsStatistics",
    "PrometheusCollector",
    "ServiceMetrics",
    "ServiceMetricsStatistics",
    "ServiceRestarted",
    "describe_event",
    "prometheus_text",
]

_BUCKETS: Final = 10
_DETAIL_LIMIT: Final = 120


class ServiceRestarted(Exception):
    """Recorded against a service's health for each restart of its actor (never raised)."""


class BreakerOpened(Exception):
    """Recorded against a service's health each time its breaker opens (never raised)."""


# -- the pure aggregator of one service ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class ServiceMetricsStatistics:
    """How much a :class:`ServiceMetrics` holds (its memory is bounded by these maxima)."""

    buckets: int
    """Rate buckets held (at most 10)."""
    latency_samples: int
    """Latency samples held (at most ``latency_samples``)."""
    error_types: int
    """Distinct exception type names counted."""
    events: int
    """Events recorded."""


class ServiceMetrics:
    """The metrics of one guarded service, from its events (pure: no clock, no trio).

    Args:
        path: the service's path (events of other paths are ignored).
        created_at: trio time the service started; the breaker's time in state counts from it.
        breaker: the breaker's state at ``created_at`` (``None``: the service has no breaker).
        max_queued: the bulkhead's queue size; a ``BULKHEAD_FULL`` refusal means the queue was
            full, so it raises the queued high-water mark to this (``None``: unknown).
        rate_window: seconds of the ``calls_per_second`` / ``error_rate`` window (module doc).
        latency_window: seconds a latency sample stays in the percentiles.
        latency_samples: the most latency samples kept.

    Raises:
        ConfigError: a window not a number > 0, or ``latency_samples`` not an integer >= 1.

    Retries are paired with failures by order: a :class:`RequestFailed` is *pending* until the
    next event of this service that is not a breaker change; a :class:`RetryScheduled` for the same
    attempt then marks it retried, anything else (or :meth:`settle` / :meth:`snapshot`) marks it
    the request's last attempt. This is exact because the guarded service publishes the retry
    decision right after the failure, in the same task, with no checkpoint in between.
    """

    __slots__ = (
        "_buckets",
        "_errors",
        "_fallbacks",
        "_in_state",
        "_latencies",
        "_pending",
        "_refusals",
        "_state_since",
        "_width",
        "breaker",
        "breaker_transitions",
        "events",
        "failed_requests",
        "failures",
        "latency_window",
        "max_queued",
        "path",
        "queued_high_water",
        "rate_window",
        "restarts",
        "retries",
        "retries_exhausted",
        "retry_delay_total",
        "succeeded_after_retry",
        "successes",
    )

    def __init__(
        self,
        path: str,
        *,
        created_at: float,
        breaker: CircuitState | None = None,
        max_queued: int | None = None,
        rate_window: float = 10.0,
        latency_window: float = 60.0,
        latency_samples: int = 1000,
    ) -> None:
        self.path = path
        self.rate_window = DURATION.check("rate_window", rate_window)
        self.latency_window = DURATION.check("latency_window", latency_window)
        maxlen = int(COUNT.check("latency_samples", latency_samples))
        self.max_queued = max_queued
        self._width = self.rate_window / _BUCKETS
        # [bucket index, requests finished, attempts, failed attempts], oldest first.
        self._buckets: collections.deque[list[int]] = collections.deque(maxlen=_BUCKETS)
        self._latencies: collections.deque[tuple[float, float]] = collections.deque(maxlen=maxlen)
        self._errors: dict[str, int] = {}
        self._refusals: dict[str, int] = {}
        self._fallbacks: dict[str, int] = {}
        self._pending: RequestFailed | None = None
        self.breaker = breaker
        """The breaker's current state, as last seen (``None``: no breaker)."""
        self._state_since = created_at
        self._in_state: dict[CircuitState, float] = {}
        self.events = 0
        self.successes = 0
        self.failures = 0
        self.failed_requests = 0
        self.retries = 0
        self.retry_delay_total = 0.0
        self.succeeded_after_retry = 0
        self.retries_exhausted = 0
        self.breaker_transitions = 0
        self.restarts = 0
        self.queued_high_water = 0

    def __repr__(self) -> str:
        return (
            f"<ServiceMetrics {self.path!r} {self.successes} answered, {self.failures} failed "
            f"attempts, {self.retries} retries, {self.restarts} restarts>"
        )

    def statistics(self) -> ServiceMetricsStatistics:
        """How many buckets, samples and error types are held now."""
        return ServiceMetricsStatistics(
            buckets=len(self._buckets),
            latency_samples=len(self._latencies),
            error_types=len(self._errors),
            events=self.events,
        )

    # -- feeding ------------------------------------------------------------------------------

    def _bucket(self, at: float) -> list[int] | None:
        index = math.floor(at / self._width)
        buckets = self._buckets
        if not buckets or buckets[-1][0] < index:
            bucket = [index, 0, 0, 0]
            buckets.append(bucket)
            return bucket
        for bucket in reversed(buckets):  # rare: an event older than the newest bucket
            if bucket[0] == index:
                return bucket
            if bucket[0] < index:
                break
        if index <= buckets[-1][0] - _BUCKETS:
            return None  # older than any window that includes the newest bucket
        position = sum(1 for bucket in buckets if bucket[0] < index)
        bucket = [index, 0, 0, 0]
        if len(buckets) == buckets.maxlen:
            if position == 0:
                return None
            buckets.popleft()
            position -= 1
        buckets.insert(position, bucket)
        return bucket

    def settle(self) -> None:
        """Count a pending failed attempt (see the class doc) as its request's last attempt."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        self.failed_requests += 1
        if pending.attempt >= 2:
            self.retries_exhausted += 1
        bucket = self._bucket(pending.at)
        if bucket is not None:
            bucket[1] += 1

    def sample_queued(self, queued: int) -> None:
        """Raise the queued high-water mark to ``queued`` if it is higher."""
        self.queued_high_water = max(self.queued_high_water, queued)

    def record(self, event: object) -> None:
        """Count one event of the tree; events of other paths and other kinds are ignored.

        Counted: :class:`RequestCompleted`, :class:`RequestFailed`, :class:`RequestRefused`,
        :class:`RetryScheduled`, :class:`FallbackUsed`, :class:`ChildRestarted` and
        :class:`~supervisor.CircuitStateChange` (whose ``name`` is the service's path).
        """
        if isinstance(event, CircuitStateChange):
            if event.name == self.path:
                self.events += 1
                self._breaker_changed(event)
            return
        if getattr(event, "path", None) != self.path:
            return
        self.events += 1
        kind = type(event)
        if kind is RetryScheduled:
            self._retry(event)  # type: ignore[arg-type]
            return
        if self._pending is not None:
            self.settle()
        if kind is RequestCompleted:
            self._completed(event)  # type: ignore[arg-type]
        elif kind is RequestFailed:
            self._failed(event)  # type: ignore[arg-type]
        elif kind is RequestRefused:
            self._refused(event)  # type: ignore[arg-type]
        elif kind is FallbackUsed:
            kind_name = event.kind  # type: ignore[attr-defined]
            self._fallbacks[kind_name] = self._fallbacks.get(kind_name, 0) + 1
        elif kind is ChildRestarted:
            self.restarts += 1

    def completed(self, event: RequestCompleted) -> None:
        """:meth:`record` of a :class:`RequestCompleted` of this service (the hot path)."""
        self.events += 1
        if self._pending is not None:
            self.settle()
        self._completed(event)

    def _completed(self, event: RequestCompleted) -> None:
        self.successes += 1
        if event.attempts > 1:
            self.succeeded_after_retry += 1
        at = event.at
        bucket = self._buckets[-1] if self._buckets else None
        if bucket is None or bucket[0] != at // self._width:
            bucket = self._bucket(at)
        if bucket is not None:
            bucket[1] += 1
            bucket[2] += 1
        self._latencies.append((at, event.latency))

    def _failed(self, event: RequestFailed) -> None:
        self.failures += 1
        name = type(event.error).__name__
        self._errors[name] = self._errors.get(name, 0) + 1
        bucket = self._bucket(event.at)
        if bucket is not None:
            bucket[2] += 1
            bucket[3] += 1
        self._pending = event

    def _retry(self, event: RetryScheduled) -> None:
        pending = self._pending
        if pending is not None and pending.attempt == event.attempt:
            self._pending = None
        else:
            self.settle()
        self.retries += 1
        self.retry_delay_total += event.delay

    def _refused(self, event: RequestRefused) -> None:
        rule = event.refusal.value
        self._refusals[rule] = self._refusals.get(rule, 0) + 1
        if event.refusal is Refusal.BULKHEAD_FULL and self.max_queued is not None:
            self.sample_queued(self.max_queued)
        bucket = self._bucket(event.at)
        if bucket is not None:
            bucket[1] += 1

    def _breaker_changed(self, event: CircuitStateChange) -> None:
        self.breaker_transitions += 1
        since = self._state_since
        if event.at > since:
            old = event.old_state
            self._in_state[old] = self._in_state.get(old, 0.0) + (event.at - since)
            self._state_since = event.at
        self.breaker = event.new_state

    # -- reading -------------------------------------------------------------------------------

    def calls_per_second(self, now: float) -> float:
        """Requests that reached their outcome in the rate window, per second (module doc)."""
        first = math.floor(now / self._width) - _BUCKETS + 1
        total = sum(bucket[1] for bucket in self._buckets if bucket[0] >= first)
        return total / self.rate_window

    def error_rate(self, now: float) -> float:
        """Failed attempts / attempts in the rate window (0.0 when there was none)."""
        first = math.floor(now / self._width) - _BUCKETS + 1
        attempts = failed = 0
        for bucket in self._buckets:
            if bucket[0] >= first:
                attempts += bucket[2]
                failed += bucket[3]
        return failed / attempts if attempts else 0.0

    def latency(self, now: float) -> LatencySnapshot:
        """p50 / p90 / p99 in milliseconds over the latency window (module doc)."""
        oldest = now - self.latency_window
        samples = sorted(latency for at, latency in self._latencies if at > oldest)
        n = len(samples)
        if not n:
            return LatencySnapshot()

        def rank(p: float) -> float:
            return 1000.0 * samples[max(0, math.ceil(p * n) - 1)]

        return LatencySnapshot(p50=rank(0.5), p90=rank(0.9), p99=rank(0.99), samples=n)

    def time_in_state(self, now: float) -> dict[str, float]:
        """Seconds the breaker spent in each state up to ``now`` (``{}`` without a breaker)."""
        if self.breaker is None and not self._in_state:
            return {}
        spent = {state.value: seconds for state, seconds in self._in_state.items()}
        if self.breaker is not None and now > self._state_since:
            key = self.breaker.value
            spent[key] = spent.get(key, 0.0) + (now - self._state_since)
        return spent

    def snapshot(
        self,
        now: float,
        *,
        in_flight: int = 0,
        queued: int = 0,
        health: ServiceStatus | None = None,
        health_checks_passed: int | None = None,
    ) -> ServiceSnapshot:
        """The service's :class:`ServiceSnapshot` at ``now``.

        ``in_flight`` and ``queued`` are the live counts (``queued`` also feeds the high-water
        mark); ``health`` gives ``healthy``, ``health_score``, ``availability`` and the check
        count, and ``health_checks_passed`` the check success rate (1.0 when no check ran). A
        pending failed attempt is settled first (:meth:`settle`).
        """
        self.settle()
        self.sample_queued(queued)
        checks = health.checks if health is not None else 0
        passed = checks if health_checks_passed is None else health_checks_passed
        return ServiceSnapshot(
            path=self.path,
            breaker=None if self.breaker is None else self.breaker.value,
            healthy=True if health is None else health.healthy,
            health_score=100.0 if health is None else health.health_score,
            availability=100.0 if health is None else health.availability,
            in_flight=in_flight,
            queued=queued,
            queued_high_water=self.queued_high_water,
            calls_per_second=self.calls_per_second(now),
            latency=self.latency(now),
            error_rate=self.error_rate(now),
            successes=self.successes,
            failures=self.failures,
            errors_by_type=dict(self._errors),
            refusals=dict(self._refusals),
            fallbacks=dict(self._fallbacks),
            retries=self.retries,
            retry_delay_total=self.retry_delay_total,
            succeeded_after_retry=self.succeeded_after_retry,
            retries_exhausted=self.retries_exhausted,
            breaker_transitions=self.breaker_transitions,
            time_in_state=self.time_in_state(now),
            restarts=self.restarts,
            health_checks=checks,
            health_check_success_rate=passed / checks if checks else 1.0,
        )


# -- event text ----------------------------------------------------------------------------------


def _error(error: BaseException | None) -> str:
    if error is None:
        return "normal"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _detail(event: object) -> str:
    if isinstance(event, RequestCompleted | RequestFailed | RetryScheduled | RequestRefused):
        return _request_detail(event)
    return _transition_detail(event)


def _request_detail(
    event: RequestCompleted | RequestFailed | RetryScheduled | RequestRefused,
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
    if isinstance(event, RequestRefused):
        text = f"refused: {event.refusal.value}"
        return f"{text}, retry after {event.retry_after:.3g}s" if event.retry_after else text
    return ""


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
    return EventSnapshot(
        at=float(when) if isinstance(when, int | float) else at,
        kind=type(event).__name__,
        path=where,
        detail=detail,
    )


# -- the tree's metrics ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MetricsStatistics:
    """A snapshot of a :class:`Metrics`."""

    services: int
    """Services tracked."""
    events: int
    """Events seen by the listener."""
    kept_events: int
    """Recent events held (at most ``max_events``)."""
    health_checks_running: int
    """Services whose health checks run."""


class _Tracked:
    __slots__ = ("check", "interval", "metrics", "ok_calls", "tracker")

    def __init__(
        self,
        metrics: ServiceMetrics,
        tracker: HealthTracker,
        check: Callable[[], Any] | None,
        interval: float | Unset,
    ) -> None:
        self.metrics = metrics
        self.tracker = tracker
        self.check = check
        self.interval = interval
        self.ok_calls = 0


async def _run_tracker(tracker: HealthTracker) -> None:
    async with tracker:
        await trio.sleep_forever()


def _constant(value: bool) -> Callable[[], bool]:
    def check() -> bool:
        return value

    return check


class Metrics:
    """Metrics, health and recent events of a supervision tree, from its event bus.

    Args:
        failure_threshold: failed health checks in a row that make a service unhealthy (default
            ``$HEALTH_CHECK_FAILURE_THRESHOLD``, else 3).
        check_timeout: seconds a health check may run before it fails and is cancelled (default
            ``$HEALTH_CHECK_TIMEOUT``, else 5.0).
        max_events: recent events kept for snapshots (default 100).
        keep_completed: whether :class:`RequestCompleted` events are among the kept events
            (default ``False``: successes are counted, not listed, so that they do not push the
            transitions out).
        rate_window, latency_window, latency_samples: see :class:`ServiceMetrics`.

    Raises:
        ConfigError: a bad option (argument or environment variable), at creation.

    Each service gets a :class:`ServiceMetrics` and its own :class:`~supervisor.HealthTracker`
    (named after the service's path) when its first event arrives, or at :meth:`add_service`.
    Health is fed from events: every answered request is a successful call with its latency,
    every failed attempt a failed call with its latency and error, and, so that instability shows
    in ``health_score`` and ``availability``, every restart of the service actor is a failed call
    of latency 0 with error :class:`ServiceRestarted`, and every opening of its breaker one with
    :class:`BreakerOpened` (recorded calls never decide ``healthy``: only checks do). A service
    with a ``health_check`` has its checks run every ``health_interval`` seconds by its tracker,
    in the tree's nursery; a check that hangs is cut off at ``check_timeout``, one that raises is
    a failed check, and neither stops the tracker. Health changes are published on the tree's
    bus as :class:`~supervisor._health.HealthChange`.

    The listener is synchronous and cheap (a few counter updates per event); an event is turned
    into text only when a snapshot is built.
    """

    def __init__(
        self,
        *,
        failure_threshold: int | Unset = UNSET,
        check_timeout: float | Unset = UNSET,
        max_events: int = 100,
        keep_completed: bool = False,
        rate_window: float = 10.0,
        latency_window: float = 60.0,
        latency_samples: int = 1000,
    ) -> None:
        # A throwaway tracker resolves and validates the health options once, here.
        probe = HealthTracker(failure_threshold=failure_threshold, check_timeout=check_timeout)
        self.failure_threshold = probe.failure_threshold
        self.check_timeout = probe.check_timeout
        self.max_events = int(COUNT.check("max_events", max_events))
        if not isinstance(keep_completed, bool):
            raise TypeError(f"`keep_completed` must be true or false (got {keep_completed!r})")
        self.keep_completed = keep_completed
        ServiceMetrics(
            "",
            created_at=0.0,
            rate_window=rate_window,
            latency_window=latency_window,
            latency_samples=latency_samples,
        )  # validates the window options
        self.rate_window = rate_window
        self.latency_window = latency_window
        self.latency_samples = latency_samples
        self._services: dict[str, _Tracked] = {}
        self._recent: collections.deque[object] = collections.deque(maxlen=self.max_events)
        self._last_at = 0.0
        self._events = 0
        self._tree: Tree | None = None
        self._nursery: trio.Nursery | None = None
        self._bus_publish: Callable[[Any], object] | None = None
        self._checks_running: set[str] = set()

    def __repr__(self) -> str:
        return (
            f"<Metrics {len(self._services)} services, {self._events} events, "
            f"{len(self._checks_running)} health checks running>"
        )

    def statistics(self) -> MetricsStatistics:
        """Services tracked, events seen and kept, health checks running."""
        return MetricsStatistics(
            services=len(self._services),
            events=self._events,
            kept_events=len(self._recent),
            health_checks_running=len(self._checks_running),
        )

    # -- wiring --------------------------------------------------------------------------------

    def attach(self, tree: Tree) -> None:
        """Listen to ``tree.events``, run health checks in the tree's nursery, and become
        ``tree.metrics``. Call it before the tree starts (``run_tree`` does) to see every event.

        Raises:
            RuntimeError: this object is already attached to a tree.
        """
        if self._tree is not None:
            raise RuntimeError(f"{self!r} is already attached to {self._tree!r}")
        self._tree = tree
        self._nursery = tree._nursery
        self._bus_publish = tree.events.publish
        tree.events.add_listener(self.record)
        tree.metrics = self
        for tracked in self._services.values():
            self._start_checks(tracked.metrics.path, tracked)

    def add_service(
        self,
        path: str,
        *,
        at: float,
        breaker: CircuitState | None = None,
        max_queued: int | None = None,
        health_check: Callable[[], Any] | None = None,
        health_interval: float | Unset = UNSET,
    ) -> ServiceMetrics:
        """Track the service at ``path`` from trio time ``at`` (idempotent: a tracked path is
        returned as it is). ``health_check`` (plain or async, no arguments) runs every
        ``health_interval`` seconds (default ``$HEALTH_CHECK_INTERVAL``, else 30) once attached
        to a tree.

        Raises:
            ConfigError: a bad ``health_interval``.
            TypeError: ``health_check`` is not callable.
        """
        tracked = self._services.get(path)
        if tracked is not None:
            return tracked.metrics
        if health_check is not None and not callable(health_check):
            raise TypeError(f"`health_check` must be callable (got {health_check!r})")
        metrics = ServiceMetrics(
            path,
            created_at=at,
            breaker=breaker,
            max_queued=max_queued,
            rate_window=self.rate_window,
            latency_window=self.latency_window,
            latency_samples=self.latency_samples,
        )
        tracker = HealthTracker(
            failure_threshold=self.failure_threshold, check_timeout=self.check_timeout
        )
        # Registered with the real check, or with a placeholder that never runs (the tracker of a
        # service without checks is never entered; it only counts recorded calls).
        tracker.register_service(
            path, health_check if health_check is not None else _constant(True), health_interval
        )
        tracked = _Tracked(metrics, tracker, health_check, health_interval)
        self._services[path] = tracked
        self._start_checks(path, tracked)
        return metrics

    def _start_checks(self, path: str, tracked: _Tracked) -> None:
        nursery = self._nursery
        if tracked.check is None or nursery is None or path in self._checks_running:
            return
        publish = self._bus_publish
        if publish is not None:
            tracked.tracker.add_listener(publish)
        self._checks_running.add(path)
        nursery.start_soon(_run_tracker, tracked.tracker, name=f"health check of {path}")

    def _discover(self, path: str, at: float) -> _Tracked | None:
        tracked = self._services.get(path)
        if tracked is not None:
            return tracked
        tree = self._tree
        if tree is None:
            return None
        service = tree._services.get(path)
        if service is None:
            return None
        spec = service.spec
        interval = getattr(spec, "health_interval", None)
        self.add_service(
            path,
            at=at,
            breaker=None if spec.breaker is None else CircuitState.CLOSED,
            max_queued=spec.bulkhead.max_queued,
            health_check=getattr(spec, "health_check", None),
            health_interval=UNSET if interval is None else interval,
        )
        return self._services[path]

    # -- the listener ----------------------------------------------------------------------------

    def record(self, event: object) -> None:
        """The bus listener: count ``event`` for its service, feed that service's health, and
        keep it among the recent events (see ``keep_completed``). Never raises for an unknown
        event; synchronous, no checkpoint."""
        self._events += 1
        if type(event) is RequestCompleted:  # the hot path: one per answered request
            self._last_at = event.at
            if self.keep_completed:
                self._recent.append(event)
            done = self._services.get(event.path) or self._discover(event.path, event.at)
            if done is not None:
                done.metrics.completed(event)
                done.ok_calls += 1
                done.tracker.record_call(event.path, event.latency)
            return
        at = getattr(event, "at", None)
        if isinstance(at, int | float):
            self._last_at = float(at)
        if self.keep_completed or type(event) is not RequestCompleted:
            self._recent.append(event)
        path: Any
        if isinstance(event, CircuitStateChange):
            path = event.name
        else:
            path = getattr(event, "path", None)
            if not isinstance(path, str):
                return
        tracked = self._discover(path, self._last_at)
        if tracked is None:
            return
        tracked.metrics.record(event)
        tracker = tracked.tracker
        kind = type(event)
        if kind is RequestFailed:
            tracker.record_call(path, event.latency, event.error)  # type: ignore[attr-defined]
        elif kind is ChildRestarted:
            tracker.record_call(path, 0.0, ServiceRestarted(f"{path} restarted"))
        elif kind is CircuitStateChange and event.new_state is CircuitState.OPEN:  # type: ignore[attr-defined]
            tracker.record_call(path, 0.0, BreakerOpened(f"breaker of {path} opened"))

    # -- reading ---------------------------------------------------------------------------------

    def service(self, path: str) -> ServiceMetrics:
        """The aggregator of the service at ``path``.

        Raises:
            KeyError: the service is not tracked (yet: it is tracked from its first event).
        """
        return self._services[path].metrics

    def health(self, path: str) -> ServiceStatus:
        """The health tracker's :class:`~supervisor.ServiceStatus` of the service at ``path``.

        Raises:
            KeyError: the service is not tracked.
        """
        return self._services[path].tracker.get_status(path)

    def service_snapshot(
        self, path: str, now: float, *, in_flight: int = 0, queued: int = 0
    ) -> ServiceSnapshot:
        """The :class:`ServiceSnapshot` of the tracked service at ``path`` at ``now``.

        The check success rate is derived from the health status: passed outcomes
        (``availability * (checks + calls) / 100``, rounded) minus the successful calls recorded.

        Raises:
            KeyError: the service is not tracked.
        """
        tracked = self._services[path]
        status = tracked.tracker.get_status(path)
        passed = round(status.availability * (status.checks + status.calls) / 100.0)
        return tracked.metrics.snapshot(
            now,
            in_flight=in_flight,
            queued=queued,
            health=status,
            health_checks_passed=max(0, min(status.checks, passed - tracked.ok_calls)),
        )

    def recent_events(self) -> tuple[EventSnapshot, ...]:
        """The kept events (at most ``max_events``), oldest first, as text."""
        at = self._last_at
        return tuple(describe_event(event, at=at) for event in self._recent)

    def snapshot(self, tree: Tree, now: float) -> SystemSnapshot:
        """The whole system at trio time ``now``: ``tree.nodes()``, then for each service in
        tree order its metrics, its live ``in_flight`` / ``queued`` (from its
        ``ServiceRef.statistics()``, which also applies a due half-open change of its breaker
        first) and its health; then the recent events and the tree's failure, if any.

        Synchronous: safe to call from any task between checkpoints.
        """
        nodes = tree.nodes()
        services: list[ServiceSnapshot] = []
        for path in _service_paths(nodes):
            service = tree._services.get(path)
            if service is None:
                continue
            stats = service.handle.statistics()
            self._discover(path, now)
            if path not in self._services:
                continue
            services.append(
                self.service_snapshot(path, now, in_flight=stats.in_flight, queued=stats.queued)
            )
        failure = tree.failure
        return SystemSnapshot(
            at=now,
            name=tree.spec.name,
            started_at=tree.started_at,
            tree=nodes,
            services=tuple(services),
            events=self.recent_events(),
            failure=None if failure is None else _error(failure),
        )


def _service_paths(node: NodeSnapshot) -> Iterable[str]:
    if node.kind == "service":
        yield node.path
    for child in node.children:
        yield from _service_paths(child)


# -- exports -------------------------------------------------------------------------------------


class EventLogger:
    """A bus listener that logs each event at ``level`` (default INFO) on ``logger`` (default
    the ``"supervisor.events"`` logger), as ``"<kind> <path>: <detail>"``.

    The record's ``extra`` carries ``event_kind``, ``event_path``, ``event_at`` and
    ``event_detail`` (the :class:`EventSnapshot` fields) and ``event`` (the event object itself),
    for structured log handlers. Add it with ``tree.events.add_listener(EventLogger())``.
    """

    __slots__ = ("level", "logger")

    def __init__(self, logger: logging.Logger | None = None, *, level: int = logging.INFO) -> None:
        self.logger = logger if logger is not None else logging.getLogger("supervisor.events")
        self.level = level

    def __repr__(self) -> str:
        return f"<EventLogger {self.logger.name!r} at {logging.getLevelName(self.level)}>"

    def __call__(self, event: object) -> None:
        """Log ``event`` (only if the logger is enabled for the level)."""
        if not self.logger.isEnabledFor(self.level):
            return
        text = describe_event(event)
        self.logger.log(
            self.level,
            "%s %s: %s",
            text.kind,
            text.path,
            text.detail,
            extra={
                "event_kind": text.kind,
                "event_path": text.path,
                "event_at": text.at,
                "event_detail": text.detail,
                "event": event,
            },
        )


def _prometheus() -> Any:
    try:
        import prometheus_client.core  # noqa: PLC0415 - an optional dependency
    except ImportError as exc:
        raise ImportError(
            "Prometheus export needs the prometheus-client library: "
            "pip install 'trio-supervisor[prometheus]'"
        ) from exc
    return prometheus_client.core


def _families(snapshot: SystemSnapshot, namespace: str) -> list[Any]:
    core = _prometheus()
    gauge, counter = core.GaugeMetricFamily, core.CounterMetricFamily
    n = namespace
    svc = ["service"]

    def g(name: str, doc: str, labels: list[str] = svc) -> Any:
        return gauge(f"{n}_service_{name}", doc, labels=labels)

    def c(name: str, doc: str, labels: list[str] = svc) -> Any:
        return counter(f"{n}_service_{name}", doc, labels=labels)

    fam: dict[str, Any] = {
        "successes": c("successes", "Requests answered by the service."),
        "failures": c("failures", "Failed attempts, by exception type.", [*svc, "error_type"]),
        "refusals": c("refusals", "Requests refused by a rule.", [*svc, "rule"]),
        "fallbacks": c("fallbacks", "Requests answered by the fallback.", [*svc, "kind"]),
        "retries": c("retries", "Retry attempts scheduled."),
        "retry_delay": c("retry_delay_seconds", "Seconds of retry delay added."),
        "after_retry": c("succeeded_after_retry", "Requests answered on a later attempt."),
        "exhausted": c("retries_exhausted", "Requests whose last attempt failed after a retry."),
        "restarts": c("restarts", "Restarts of the service actor."),
        "transitions": c("breaker_transitions", "Breaker state changes."),
        "in_state": c("breaker_state_seconds", "Seconds in each breaker state.", [*svc, "state"]),
        "breaker": g("breaker_state", "1 for the breaker's current state.", [*svc, "state"]),
        "in_flight": g("in_flight", "Requests running now."),
        "queued": g("queued", "Requests queued now."),
        "high_water": g("queued_high_water", "Most requests queued at once."),
        "rate": g("calls_per_second", "Requests per second over the recent window."),
        "error_rate": g("error_rate", "Failed attempts / attempts over the recent window."),
        "latency": g("latency_seconds", "Latency percentiles.", [*svc, "quantile"]),
        "healthy": g("healthy", "1 when the service is healthy."),
        "score": g("health_score", "Health score, 0 to 100."),
        "availability": g("availability_percent", "Percent of outcomes that succeeded."),
        "checks": c("health_checks", "Health checks run."),
    }
    for s in snapshot.services:
        p = [s.path]
        fam["successes"].add_metric(p, s.successes)
        for name, count in sorted(s.errors_by_type.items()):
            fam["failures"].add_metric([*p, name], count)
        for name, count in sorted(s.refusals.items()):
            fam["refusals"].add_metric([*p, name], count)
        for name, count in sorted(s.fallbacks.items()):
            fam["fallbacks"].add_metric([*p, name], count)
        fam["retries"].add_metric(p, s.retries)
        fam["retry_delay"].add_metric(p, s.retry_delay_total)
        fam["after_retry"].add_metric(p, s.succeeded_after_retry)
        fam["exhausted"].add_metric(p, s.retries_exhausted)
        fam["restarts"].add_metric(p, s.restarts)
        fam["transitions"].add_metric(p, s.breaker_transitions)
        for state, seconds in sorted(s.time_in_state.items()):
            fam["in_state"].add_metric([*p, state], seconds)
        if s.breaker is not None:
            for member in CircuitState:
                fam["breaker"].add_metric([*p, member.value], float(member.value == s.breaker))
        fam["in_flight"].add_metric(p, s.in_flight)
        fam["queued"].add_metric(p, s.queued)
        fam["high_water"].add_metric(p, s.queued_high_water)
        fam["rate"].add_metric(p, s.calls_per_second)
        fam["error_rate"].add_metric(p, s.error_rate)
        for quantile, ms in (
            ("0.5", s.latency.p50),
            ("0.9", s.latency.p90),
            ("0.99", s.latency.p99),
        ):
            fam["latency"].add_metric([*p, quantile], ms / 1000.0)
        fam["healthy"].add_metric(p, float(s.healthy))
        fam["score"].add_metric(p, s.health_score)
        fam["availability"].add_metric(p, s.availability)
        fam["checks"].add_metric(p, s.health_checks)
    restarts = counter(f"{n}_node_restarts", "Restarts of each tree node.", labels=["path", "kind"])
    state = gauge(f"{n}_node_state", "1 for each node's current state.", labels=["path", "state"])
    budget = gauge(
        f"{n}_supervisor_restart_budget", "Restarts a supervisor may still make.", labels=["path"]
    )
    stack = [snapshot.tree]
    while stack:
        node = stack.pop()
        restarts.add_metric([node.path, node.kind], node.restarts)
        state.add_metric([node.path, node.state], 1.0)
        if node.restart_budget is not None:
            budget.add_metric([node.path], node.restart_budget)
        stack.extend(reversed(node.children))
    return [*fam.values(), restarts, state, budget]


class PrometheusCollector:
    """A ``prometheus-client`` collector: each scrape calls ``source()`` for a fresh
    :class:`SystemSnapshot` (e.g. ``tree.snapshot``) and exposes it as metric families named
    ``<namespace>_service_*`` (label ``service``: the path) and ``<namespace>_node_*``.

    Register it with ``prometheus_client.REGISTRY.register(PrometheusCollector(tree.snapshot))``.
    ``source`` runs in the scraping thread: with a tree, call :func:`prometheus_text` from a trio
    task instead, or hand over snapshots taken in trio.

    Raises:
        ImportError: ``prometheus-client`` is not installed (at creation).
    """

    def __init__(
        self, source: Callable[[], SystemSnapshot], *, namespace: str = "supervisor"
    ) -> None:
        _prometheus()
        if not callable(source):
            raise TypeError(f"`source` must be callable (got {source!r})")
        self.source = source
        self.namespace = namespace

    def __repr__(self) -> str:
        return f"<PrometheusCollector {self.namespace!r} from {self.source!r}>"

    def describe(self) -> list[Any]:
        """No fixed descriptions (the services are known only at scrape time)."""
        return []

    def collect(self) -> Iterable[Any]:
        """The metric families of a fresh snapshot."""
        return _families(self.source(), self.namespace)


def prometheus_text(snapshot: SystemSnapshot, *, namespace: str = "supervisor") -> str:
    """``snapshot`` in the Prometheus text exposition format (version 0.0.4).

    Raises:
        ImportError: ``prometheus-client`` is not installed.
    """
    _prometheus()
    from prometheus_client import CollectorRegistry, generate_latest  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    registry.register(PrometheusCollector(lambda: snapshot, namespace=namespace))
    text: bytes = generate_latest(registry)
    return text.decode("utf-8")
