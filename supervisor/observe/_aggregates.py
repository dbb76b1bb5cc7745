"""The pure aggregator of one guarded service's metrics, :class:`ServiceMetrics`.

It is fed the tree's events (:meth:`ServiceMetrics.record`) and never reads a clock nor calls trio:
the time is each event's ``at``, or the ``now`` given to :meth:`ServiceMetrics.snapshot`. Its memory
is bounded whatever the run length: counters, a ring of ten time buckets and a ring of latency
samples. :class:`~supervisor.Metrics` (``_metrics.py``) owns one per service.

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
import math
from typing import TYPE_CHECKING, Final

import attrs

from .._config import COUNT, DURATION
from ..rules._breaker import CircuitState, CircuitStateChange
from ..rules._counts import ERROR_TYPES_KEPT, TopCounts
from ..rules._health import ServiceStatus
from ..rules._hedge import HedgeLaunched, HedgeSettled
from ._events import (
    ChildRestarted,
    FallbackUsed,
    Refusal,
    RequestCompleted,
    RequestFailed,
    RequestRefused,
    RetryScheduled,
)
from ._snapshot import LatencySnapshot, ServiceSnapshot

if TYPE_CHECKING:
    from collections.abc import Sequence


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
    """Exception type names held (at most ``ERROR_TYPES_KEPT``, 20; the rest are counted under
    ``"other"``)."""
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
        "hedge_wins",
        "hedges",
        "hedges_cancelled",
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
        self._errors = TopCounts(ERROR_TYPES_KEPT)
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
        self.hedges = 0
        self.hedge_wins = 0
        self.hedges_cancelled = 0

    def __repr__(self) -> str:
        return (
            f"<ServiceMetrics {self.path!r} {self.successes} answered, {self.failures} failed "
            f"attempts, {self.retries} retries, {self.restarts} restarts>"
        )

    @property
    def bucket_width(self) -> float:
        """Seconds per rate bucket (``rate_window / 10``): a refusal streak stays in one."""
        return self._width

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
        :class:`RetryScheduled`, :class:`FallbackUsed`, :class:`ChildRestarted`, and, whose
        ``name`` is the service's path, :class:`~supervisor.CircuitStateChange`,
        :class:`~supervisor.cores.HedgeLaunched` and :class:`~supervisor.cores.HedgeSettled`.
        """
        if isinstance(event, CircuitStateChange):
            if event.name == self.path:
                self.events += 1
                self._breaker_changed(event)
            return
        if isinstance(event, HedgeLaunched | HedgeSettled):
            # Named like breaker changes; published inside an attempt, so they settle nothing.
            if event.name == self.path:
                self.events += 1
                self._hedged(event)
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
            self._count_completions((event.at,), (event.latency,), (event.attempts,))  # type: ignore[attr-defined]
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
        """:meth:`record` of a :class:`RequestCompleted` of this service."""
        self.completions((event.at,), (event.latency,), (event.attempts,))

    def completions(
        self, ats: Sequence[float], latencies: Sequence[float], attempts: Sequence[int]
    ) -> None:
        """:meth:`record` of ``len(ats)`` answered requests of this service, oldest first: the
        ``at``, ``latency`` and ``attempts`` of each one's :class:`RequestCompleted` (see
        ``_completions.py``)."""
        if not ats:
            return
        self.events += len(ats)
        if self._pending is not None:
            self.settle()
        self._count_completions(ats, latencies, attempts)

    def _count_completions(
        self, ats: Sequence[float], latencies: Sequence[float], attempts: Sequence[int]
    ) -> None:
        self.successes += len(ats)
        self.succeeded_after_retry += sum(1 for n in attempts if n > 1)
        width = self._width
        buckets = self._buckets
        bucket = buckets[-1] if buckets else None
        for at in ats:
            if bucket is None or bucket[0] != at // width:
                bucket = self._bucket(at)
                if bucket is None:  # older than the window: not counted in a rate
                    continue
            bucket[1] += 1
            bucket[2] += 1
        self._latencies.extend(zip(ats, latencies, strict=True))

    def _failed(self, event: RequestFailed) -> None:
        self.failures += 1
        self._errors.add(type(event.error).__name__)
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
        # ``count`` refusals, all in the rate bucket of ``at`` (a streak never spans two).
        rule = event.refusal.value
        count = event.count
        self._refusals[rule] = self._refusals.get(rule, 0) + count
        if event.refusal is Refusal.BULKHEAD_FULL and self.max_queued is not None:
            self.sample_queued(self.max_queued)
        bucket = self._bucket(event.at)
        if bucket is not None:
            bucket[1] += count

    def _hedged(self, event: HedgeLaunched | HedgeSettled) -> None:
        if isinstance(event, HedgeLaunched):
            self.hedges += 1
            return
        self.hedges_cancelled += event.cancelled
        if event.winner:
            self.hedge_wins += 1

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
        concurrency_limit: int | None = None,
    ) -> ServiceSnapshot:
        """The service's :class:`ServiceSnapshot` at ``now``.

        ``in_flight`` and ``queued`` are the live counts (``queued`` also feeds the high-water
        mark); ``concurrency_limit`` is the live adaptive limit, if any; ``health`` gives
        ``healthy``, ``health_score``, ``availability`` and the check count, and
        ``health_checks_passed`` the check success rate (1.0 when no check ran). A pending failed
        attempt is settled first (:meth:`settle`).
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
            errors_by_type=self._errors.as_dict(),
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
            concurrency_limit=concurrency_limit,
            hedges=self.hedges,
            hedge_wins=self.hedge_wins,
            hedges_cancelled=self.hedges_cancelled,
        )


# -- event text ----------------------------------------------------------------------------------
