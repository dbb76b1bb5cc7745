"""Health tracking's trio shell: :class:`HealthTracker` runs each registered check every
``interval`` seconds inside ``async with tracker:``, times them out, feeds one pure
:class:`~supervisor.cores.HealthWindow` per service, and tells ``on_alert`` and its listeners when
a service turns unhealthy or recovers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any

import attrs
import trio

from .._config import COUNT, DURATION, NON_NEGATIVE, UNSET, Unset
from .._errors import shown
from .._listeners import Listeners
from ..rules._health import TIMEOUT_ERROR_NAME, HealthChange, HealthWindow, ServiceStatus


@attrs.frozen(kw_only=True)
class HealthTrackerStatistics:
    """A snapshot of a :class:`HealthTracker`."""

    running: bool
    """Whether the tracker is inside ``async with`` (checks running)."""
    services: int
    """Services registered."""
    unhealthy: tuple[str, ...]
    """Names of the services now unhealthy, in registration order."""


class _Service:
    __slots__ = ("check", "interval", "window")

    def __init__(self, check: Callable[[], Any], interval: float, window: HealthWindow) -> None:
        self.check = check
        self.interval = interval
        self.window = window


class _FirstRound:
    __slots__ = ("done", "pending")

    def __init__(self, pending: int) -> None:
        self.pending = pending
        self.done = trio.Event()
        if pending == 0:
            self.done.set()

    def finished_one(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self.done.set()


class HealthTracker:
    """Runs health checks for registered services and keeps their :class:`ServiceStatus`.

    ``failure_threshold`` (default 3, else ``$HEALTH_CHECK_FAILURE_THRESHOLD``) failed checks in a
    row make a service unhealthy. A check fails when it raises an ``Exception``, returns
    ``False``, or runs past ``check_timeout`` seconds (default 5.0, else
    ``$HEALTH_CHECK_TIMEOUT``; a check still running at exactly ``check_timeout`` has failed and is
    cancelled); anything else passes. ``window_size`` (default 100) is the number of recent
    outcomes ``health_score``, ``error_rate`` and the latencies are computed over.

    Running: ``async with tracker:`` starts one task per service. The first round of checks runs
    on entering, concurrently, and ``__aenter__`` returns once every first check has finished (so
    at most ``check_timeout`` later). Then each service's checks start every ``interval`` seconds,
    start to start: the next check starts at ``max(previous start + interval, previous end)``, so
    a check still running when the next is due delays it and never overlaps it. A service
    registered while the tracker runs gets its first check at once. Leaving the block cancels the
    checks in progress (they count as nothing) and starts no new one, even one due at the very
    instant of the exit. Note that the block itself starts only after the first round: with a
    4 s check, ``async with tracker: await trio.sleep(13)`` exits at 17 s, so checks started at
    0, 4, 8, 12 and 16 s all began before the exit.

    Alerts: when a service turns unhealthy, and when it recovers, the tracker publishes a
    :class:`HealthChange` to the listeners added with :meth:`add_listener` and then calls
    ``on_alert(status)`` once (awaited if it returns an awaitable), from the service's check task;
    an error raised by either ends ``async with`` with that error.

    ``get_status`` and ``record_call`` also work outside ``async with``.

    Raises:
        ConfigError: a bad ``failure_threshold``, ``check_timeout`` or ``window_size`` (argument
            or environment variable), at creation.
        TypeError: ``on_alert`` is neither ``None`` nor callable.
    """

    def __init__(
        self,
        *,
        failure_threshold: int | Unset = UNSET,
        check_timeout: float | Unset = UNSET,
        on_alert: Callable[[ServiceStatus], Any] | None = None,
        window_size: int = 100,
    ) -> None:
        self.failure_threshold = COUNT.resolve_int(
            "failure_threshold", failure_threshold, env="HEALTH_CHECK_FAILURE_THRESHOLD", default=3
        )
        self.check_timeout = DURATION.resolve(
            "check_timeout", check_timeout, env="HEALTH_CHECK_TIMEOUT", default=5.0
        )
        self.window_size = int(COUNT.check("window_size", window_size))
        if on_alert is not None and not callable(on_alert):
            raise TypeError(f"`on_alert` must be callable or None (got {shown(on_alert)})")
        self._on_alert = on_alert
        self._services: dict[str, _Service] = {}
        self._listeners: Listeners[HealthChange] = Listeners()
        self._nursery: trio.Nursery | None = None
        self._nursery_cm: Any = None
        self._closing = False

    # -- registration and inspection ------------------------------------------------------------

    def register_service(
        self, name: str, health_check: Callable[[], Any], interval: float | Unset = UNSET
    ) -> None:
        """Register ``health_check`` (plain or async, no arguments) for service ``name``.

        ``interval`` defaults to ``$HEALTH_CHECK_INTERVAL``, read now, else 30.0 seconds. If the
        tracker is running, the service's first check starts at once.

        Raises:
            ValueError: ``name`` is already registered.
            ConfigError: a bad ``interval`` (argument or environment variable).
            TypeError: ``name`` is not a string or ``health_check`` is not callable.
        """
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a string (got {shown(name)})")
        if not callable(health_check):
            raise TypeError(f"`health_check` must be callable (got {shown(health_check)})")
        if name in self._services:
            raise ValueError(f"service {shown(name)} is already registered")
        seconds = DURATION.resolve("interval", interval, env="HEALTH_CHECK_INTERVAL", default=30.0)
        service = _Service(
            health_check,
            seconds,
            HealthWindow(
                name, failure_threshold=self.failure_threshold, window_size=self.window_size
            ),
        )
        self._services[name] = service
        if self._nursery is not None:
            self._nursery.start_soon(self._run_service, service, None)

    @property
    def services(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._services)

    def get_status(self, name: str) -> ServiceStatus:
        """The current :class:`ServiceStatus` of ``name``.

        Raises:
            KeyError: ``name`` was never registered.
        """
        return self._services[name].window.status()

    def record_call(self, name: str, latency: float, error: BaseException | None = None) -> None:
        """Count one call to ``name`` that took ``latency`` seconds and failed with ``error``
        (``None`` for a success).

        It counts towards ``health_score``, ``error_rate``, ``errors_by_type``, the latencies and
        ``availability``, never towards ``consecutive_failures`` or ``healthy``. An ``error`` that
        is a ``BaseException`` but not an ``Exception`` (``trio.Cancelled``, ...) is not counted:
        the call is ignored.

        Raises:
            KeyError: ``name`` was never registered.
            ValueError: ``latency`` is not a finite number >= 0.
            TypeError: ``error`` is neither ``None`` nor an exception.
        """
        service = self._services[name]
        if not NON_NEGATIVE.admits(latency):
            raise ValueError(f"`latency` must be a finite number >= 0 (got {shown(latency)})")
        if error is None:
            service.window.record_call(ok=True, latency=float(latency))
        elif isinstance(error, Exception):
            service.window.record_call(
                ok=False, latency=float(latency), error_type=type(error).__name__
            )
        elif not isinstance(error, BaseException):
            raise TypeError(f"`error` must be an exception or None (got {shown(error)})")

    def add_listener(self, callback: Callable[[HealthChange], object]) -> None:
        """Call ``callback(change)`` synchronously with each :class:`HealthChange`."""
        self._listeners.add(callback)

    def remove_listener(self, callback: Callable[[HealthChange], object]) -> None:
        """Stop calling ``callback``; :class:`ValueError` if it was never added."""
        self._listeners.remove(callback)

    def statistics(self) -> HealthTrackerStatistics:
        """A snapshot: running or not, how many services, which are unhealthy."""
        return HealthTrackerStatistics(
            running=self._nursery is not None,
            services=len(self._services),
            unhealthy=tuple(n for n, s in self._services.items() if not s.window.healthy),
        )

    def __repr__(self) -> str:
        s = self.statistics()
        state = "running" if s.running else "idle"
        return f"<HealthTracker {s.services} services, {len(s.unhealthy)} unhealthy, {state}>"

    # -- running --------------------------------------------------------------------------------

    async def __aenter__(self) -> HealthTracker:
        """Start the checks; return once the first round has finished.

        Raises:
            RuntimeError: the tracker is already running.
        """
        if self._nursery_cm is not None:
            raise RuntimeError("this HealthTracker is already running")
        cm = trio.open_nursery()
        nursery = await cm.__aenter__()
        self._nursery_cm, self._nursery = cm, nursery
        try:
            first = _FirstRound(len(self._services))
            for service in tuple(self._services.values()):
                nursery.start_soon(self._run_service, service, first)
            await first.done.wait()
        except BaseException as exc:
            nursery.cancel_scope.cancel()
            self._nursery_cm = self._nursery = None
            if not await cm.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Cancel the running checks and wait for them to end; from the moment exit begins no
        check starts (one due at that same instant included)."""
        cm, nursery = self._nursery_cm, self._nursery
        self._nursery_cm = self._nursery = None
        if nursery is None:
            return False
        self._closing = True
        try:
            nursery.cancel_scope.cancel()
            return bool(await cm.__aexit__(exc_type, exc, tb))
        finally:
            self._closing = False

    async def _run_service(self, service: _Service, first: _FirstRound | None) -> None:
        start = trio.current_time()
        await self._check(service, start)
        if first is not None:
            first.finished_one()
        while True:
            await trio.sleep_until(start + service.interval)
            if self._closing:  # exit began while this task was waking: start nothing more
                return
            start = trio.current_time()
            await self._check(service, start)

    async def _check(self, service: _Service, start: float) -> None:
        timeout = self.check_timeout
        deadline = start + timeout
        ok = False
        error_type: str | None = None
        with trio.move_on_at(deadline) as scope:
            try:
                result = service.check()
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                error_type = type(exc).__name__
            else:
                ok = result is not False
        end = trio.current_time()
        if scope.cancelled_caught or end >= deadline:
            ok, error_type = False, TIMEOUT_ERROR_NAME
        change = service.window.record_check(
            ok=ok, latency=end - start, error_type=error_type, now=end
        )
        if change is None:
            return
        status = service.window.status()
        self._listeners.emit(HealthChange(name=status.name, healthy=change, at=end, status=status))
        if self._on_alert is not None:
            outcome = self._on_alert(status)
            if inspect.isawaitable(outcome):
                await outcome
