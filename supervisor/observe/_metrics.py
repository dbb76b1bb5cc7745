"""The metrics hub of a tree: one :class:`ServiceMetrics` and one health tracker per service,
fed by the event bus, and the :class:`SystemSnapshot` built from them.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio

from .._config import COUNT, UNSET, Unset
from .._errors import shown
from ..guards._health import HealthTracker
from ..rules._breaker import CircuitState, CircuitStateChange
from ..rules._health import HealthWindow, ServiceStatus
from ..rules._hedge import HedgeLaunched, HedgeSettled
from ._aggregates import BreakerOpened, ServiceMetrics, ServiceRestarted
from ._completions import CompletionLog, draining
from ._describe import _error, describe_event
from ._events import (
    ChildRestarted,
    RequestCompleted,
    RequestFailed,
)
from ._snapshot import EventSnapshot, NodeSnapshot, ServiceSnapshot, SystemSnapshot
from ._watched import WatchedTree

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
    __slots__ = ("check", "checks", "interval", "metrics", "ok_calls", "tracker", "window")

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
        self.window: HealthWindow | None = None  # the tracker's window, once registered
        self.checks: trio.CancelScope | None = None  # around its running checks, once started


async def _run_tracker(tracker: HealthTracker, scope: trio.CancelScope) -> None:
    with scope:
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
    bus as :class:`~supervisor.rules._health.HealthChange`.

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
            raise TypeError(f"`keep_completed` must be true or false (got {shown(keep_completed)})")
        self.keep_completed = keep_completed
        probe_metrics = ServiceMetrics(
            "",
            created_at=0.0,
            rate_window=rate_window,
            latency_window=latency_window,
            latency_samples=latency_samples,
        )  # validates the window options
        self.bucket_width = probe_metrics.bucket_width
        """Seconds per rate bucket: the tree's services keep each refusal streak inside one
        (see :class:`~supervisor.observe._events.RequestRefused`), so rates stay exact."""
        self.rate_window = rate_window
        self.latency_window = latency_window
        self.latency_samples = latency_samples
        self._services: dict[str, _Tracked] = {}
        self._logs: dict[str, CompletionLog] = {}
        self._recent: collections.deque[object] = collections.deque(maxlen=self.max_events)
        self._last_at = 0.0
        self._events = 0
        self._tree: WatchedTree | None = None
        self._bus_publish: Callable[[Any], object] | None = None
        self._checks_running: set[str] = set()

    def __repr__(self) -> str:
        return (
            f"<Metrics {len(self._services)} services, {self._events} events, "
            f"{len(self._checks_running)} health checks running>"
        )

    def statistics(self) -> MetricsStatistics:
        """Services tracked, events seen and kept, health checks running."""
        self._drain_all()
        return MetricsStatistics(
            services=len(self._services),
            events=self._events,
            kept_events=len(self._recent),
            health_checks_running=len(self._checks_running),
        )

    # -- wiring --------------------------------------------------------------------------------

    def attach(self, tree: WatchedTree) -> None:
        """Listen to ``tree.events`` and run health checks in the tree's nursery. Call it before
        the tree starts (``run_tree`` does, and makes this object ``tree.metrics``) to see every
        event.

        Raises:
            RuntimeError: this object is already attached to a tree.
        """
        if self._tree is not None:
            raise RuntimeError(f"{shown(self)} is already attached to {shown(self._tree)}")
        self._tree = tree
        self._bus_publish = tree.events.publish
        tree.events.add_listener(self.record)
        for tracked in self._services.values():
            self._start_checks(tracked.metrics.path, tracked)

    def completion_log(self, path: str) -> CompletionLog | None:
        """The log the guarded service at ``path`` writes its answered requests to, instead of
        publishing a ``RequestCompleted`` for each while these metrics are the only listener on
        its bus (see ``_completions.py``); made on first use, one per path. ``None`` with
        ``keep_completed``: the kept events need every ``RequestCompleted`` as it happens.

        A ``RequestCompleted`` of a path with a log that still reaches :meth:`record` (published
        for the bus's other listeners) is not counted again.
        """
        if self.keep_completed:
            return None
        log = self._logs.get(path)
        if log is None:
            log = self._logs[path] = CompletionLog(functools.partial(self._count_log, path))
        return log

    def _count_log(self, path: str, log: CompletionLog) -> None:
        # The log's drain (called only with entries): counted as their RequestCompleted events
        # would have been.
        ats, latencies, attempts = log.take()
        self._events += len(ats)
        self._last_at = max(self._last_at, ats[-1])
        done = self._services.get(path) or self._discover(path, ats[0])
        if done is None:
            return
        done.metrics.completions(ats, latencies, attempts)
        done.ok_calls += len(ats)
        done.window.calls_succeeded(latencies)  # type: ignore[union-attr]

    def _drain(self, path: str) -> None:
        log = self._logs.get(path)
        if log is not None:
            log.drain()

    def _drain_all(self) -> None:
        for log in self._logs.values():
            log.drain()

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
            raise TypeError(f"`health_check` must be callable (got {shown(health_check)})")
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
            path,
            _constant(True)
            if health_check is None
            else draining(health_check, functools.partial(self._drain, path)),
            health_interval,
        )
        tracked = _Tracked(metrics, tracker, health_check, health_interval)
        tracked.window = tracker.window(path)
        self._services[path] = tracked
        self._start_checks(path, tracked)
        return metrics

    def _start_checks(self, path: str, tracked: _Tracked) -> None:
        tree = self._tree
        if tracked.check is None or tree is None or path in self._checks_running:
            return
        publish = self._bus_publish
        if publish is not None:
            tracked.tracker.add_listener(publish)
        self._checks_running.add(path)
        tracker = tracked.tracker
        scope = tracked.checks = trio.CancelScope()
        tree.start_background(lambda: _run_tracker(tracker, scope), name=f"health check of {path}")

    def forget(self, path: str) -> None:
        """Stop tracking the service at ``path``, which left the tree (deleted, or a temporary
        child that ended): its aggregates, its health, its completion log go, and its health
        checks stop. A service at the same path later is tracked afresh. A no-op for a path not
        tracked. So a tree whose children come and go keeps no metrics of the gone ones."""
        self._logs.pop(path, None)
        tracked = self._services.pop(path, None)
        if tracked is not None and tracked.checks is not None:
            tracked.checks.cancel()
        self._checks_running.discard(path)

    def _discover(self, path: str, at: float) -> _Tracked | None:
        tracked = self._services.get(path)
        if tracked is not None:
            return tracked
        tree = self._tree
        if tree is None:
            return None
        facts = tree.service_facts(path)
        if facts is None:
            return None
        interval = facts.health_interval
        self.add_service(
            path,
            at=at,
            breaker=CircuitState.CLOSED if facts.has_breaker else None,
            max_queued=facts.max_queued,
            health_check=facts.health_check,
            health_interval=UNSET if interval is None else interval,
        )
        return self._services[path]

    # -- the listener ----------------------------------------------------------------------------

    def record(self, event: object) -> None:
        """The bus listener: count ``event`` for its service, feed that service's health, and
        keep it among the recent events (see ``keep_completed``). Never raises for an unknown
        event; synchronous, no checkpoint."""
        if type(event) is RequestCompleted:  # one per answered request, without a log
            self._completed(event)
            return
        self._events += 1
        at = getattr(event, "at", None)
        if isinstance(at, int | float):
            self._last_at = float(at)
        if self.keep_completed or type(event) is not RequestCompleted:
            self._recent.append(event)
        path: Any
        if isinstance(event, CircuitStateChange | HedgeLaunched | HedgeSettled):
            path = event.name
        else:
            path = getattr(event, "path", None)
            if not isinstance(path, str):
                return
        self._drain(path)  # the service's earlier answers first: counted in order
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

    def _completed(self, event: RequestCompleted) -> None:
        if event.path in self._logs:
            return  # a copy for the bus's other listeners: counted from the service's log
        self._events += 1
        self._last_at = event.at
        if self.keep_completed:
            self._recent.append(event)
        done = self._services.get(event.path) or self._discover(event.path, event.at)
        if done is not None:
            done.metrics.completed(event)
            done.ok_calls += 1
            # The window directly: the latency of a published event is valid already.
            done.window.call_succeeded(event.latency)  # type: ignore[union-attr]

    # -- reading ---------------------------------------------------------------------------------

    def service(self, path: str) -> ServiceMetrics:
        """The aggregator of the service at ``path``.

        Raises:
            KeyError: the service is not tracked (yet: it is tracked from its first event).
        """
        self._drain(path)
        return self._services[path].metrics

    def health(self, path: str) -> ServiceStatus:
        """The health tracker's :class:`~supervisor.ServiceStatus` of the service at ``path``.

        Raises:
            KeyError: the service is not tracked.
        """
        self._drain(path)
        return self._services[path].tracker.get_status(path)

    def service_snapshot(
        self,
        path: str,
        now: float,
        *,
        in_flight: int = 0,
        queued: int = 0,
        concurrency_limit: int | None = None,
    ) -> ServiceSnapshot:
        """The :class:`ServiceSnapshot` of the tracked service at ``path`` at ``now``.

        The check success rate is derived from the health status: passed outcomes
        (``availability * (checks + calls) / 100``, rounded) minus the successful calls recorded.

        Raises:
            KeyError: the service is not tracked.
        """
        self._drain(path)
        tracked = self._services[path]
        status = tracked.tracker.get_status(path)
        passed = round(status.availability * (status.checks + status.calls) / 100.0)
        return tracked.metrics.snapshot(
            now,
            in_flight=in_flight,
            queued=queued,
            concurrency_limit=concurrency_limit,
            health=status,
            health_checks_passed=max(0, min(status.checks, passed - tracked.ok_calls)),
        )

    def recent_events(self) -> tuple[EventSnapshot, ...]:
        """The kept events (at most ``max_events``), oldest first, as text."""
        at = self._last_at
        return tuple(describe_event(event, at=at) for event in self._recent)

    def snapshot(self, tree: WatchedTree, now: float) -> SystemSnapshot:
        """The whole system at trio time ``now``: ``tree.nodes()``, then for each service in
        tree order its metrics, its live ``in_flight`` / ``queued`` (``tree.service_load``; a
        tree's also applies a due half-open change of the service's breaker first) and its
        health; then the recent events and the tree's failure, if any.

        Synchronous: safe to call from any task between checkpoints.
        """
        nodes = tree.nodes()
        services: list[ServiceSnapshot] = []
        for path in _service_paths(nodes):
            stats = tree.service_load(path)
            if stats is None:
                continue
            self._discover(path, now)
            if path not in self._services:
                continue
            services.append(
                self.service_snapshot(
                    path,
                    now,
                    in_flight=stats.in_flight,
                    queued=stats.queued,
                    concurrency_limit=getattr(stats, "concurrency_limit", None),
                )
            )
        failure = tree.failure
        return SystemSnapshot(
            at=now,
            name=tree.name,
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
