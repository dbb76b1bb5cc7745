"""The throttle's trio shell: at most ``max_calls`` starts within any sliding window of ``period``
seconds.

:class:`Throttle` (used by :func:`throttle`) drives the pure
:class:`~supervisor.cores.SlidingWindowCore`: it reads :func:`trio.current_time`, queues waiters
first come first served, and sleeps until their turn.

.. note:: A throttle limits how many calls *start* per period (a rate); a bulkhead limits how many
   *run at the same time* (a concurrency). A throttle never cares when a call ends.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import attrs
import trio

from .._config import COUNT, DURATION, UNSET, Unset
from .._errors import ConfigError, RateLimitExceeded, shown
from ..rules._window import SlidingWindowCore
from ..store._base import FleetThrottleLink, Store
from ._decorate import decorate, qualname_of
from ._generators import UntilFirstItem

P = ParamSpec("P")
R = TypeVar("R")


class OnLimit(enum.Enum):
    """What a throttle does with a call over its limit."""

    WAIT = "wait"
    """Wait for its turn, first come first served."""
    RAISE = "raise"
    """Refuse at once with :class:`~supervisor.RateLimitExceeded`."""


def _on_limit(value: object) -> OnLimit:
    if isinstance(value, OnLimit):
        return value
    for member in OnLimit:
        if value == member.value:
            return member
    raise ConfigError(f'`on_limit` must be "wait" or "raise" (got {shown(value)})')


@attrs.frozen(kw_only=True)
class ThrottleStatistics:
    """A snapshot of a :class:`Throttle`."""

    name: str
    """The throttle's name (the decorated function's ``__qualname__``)."""
    max_calls: int
    """At most this many starts per window."""
    period: float
    """The window length, in seconds."""
    on_limit: OnLimit
    """What happens over the limit."""
    in_window: int
    """Admissions in the window ending now."""
    waiting: int
    """Callers waiting for their turn (``on_limit="wait"`` only)."""
    admitted: int
    """Calls admitted so far."""
    refused: int
    """Calls refused with :class:`~supervisor.RateLimitExceeded` so far."""


class _Waiter:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = trio.Event()


class Throttle:
    """The trio shell around one :class:`SlidingWindowCore`, shared by every caller.

    :func:`throttle` makes one per decorated function; it is exposed as ``fn.throttle``.

    Over the limit, with ``on_limit="wait"`` callers wait first come, first served; a waiter that is
    cancelled leaves the queue and takes no slot. With ``on_limit="raise"`` a call is refused with
    :class:`~supervisor.RateLimitExceeded` whose ``retry_after`` is exactly the time after which it
    would have been admitted.

    A call admitted at once costs a plain check: no checkpoint, no cancel scope; the decorator's
    is one look at which ``trio.run`` this is, one read of that run's clock and the window's test.

    The window's times are trio times, which are meaningful only inside one ``trio.run``: when a
    throttle is used from a new ``trio.run`` its window and queue start empty.

    Store: throttles of the same ``name`` and ``store`` share one limit. With a
    :class:`~supervisor.MemoryStore` they share one window in this process (which, unlike a
    throttle's own, is not emptied by a new ``trio.run``: use one store in one run); with a
    :class:`~supervisor.RedisStore` the limit is the fleet's, exact across every process: each
    admission is one round trip to a script on Redis's clock (``"wait"`` books the next free slot
    and sleeps until it; a cancelled waiter gives it back), and while the server is unreachable
    the local window decides (see ``docs/scale-out.md``).

    Raises:
        ConfigError: ``max_calls`` is not an integer >= 1, ``period`` is not > 0, ``on_limit`` is
            neither ``"wait"`` nor ``"raise"``, or ``store`` is not a store (or already has a
            throttle of this name with other settings).
    """

    def __init__(
        self,
        name: str,
        max_calls: int | Unset = UNSET,
        period: float | Unset = UNSET,
        *,
        on_limit: str | OnLimit = "wait",
        store: Store | None = None,
    ) -> None:
        self.name = name
        self.on_limit = _on_limit(on_limit)
        self._core = SlidingWindowCore(
            COUNT.resolve_int("max_calls", max_calls, env=None, default=100),
            DURATION.resolve("period", period, env=None, default=60.0),
        )
        self._fleet: FleetThrottleLink | None = None
        self._shared = store is not None
        if store is not None:
            if not isinstance(store, Store):
                raise ConfigError(
                    f"`store` must be a MemoryStore or a RedisStore (got {shown(store)})"
                )
            binding = store.throttle_binding(
                name=name, max_calls=self._core.max_calls, period=self._core.period
            )
            self._core, self._fleet = binding.core, binding.fleet
        self._waiters: deque[_Waiter] = deque()
        self._run: object = None
        self._now: Callable[[], float] = trio.current_time
        """The clock of the run in :attr:`_run` (its own ``current_time``, read with no detour)."""

    @property
    def core(self) -> SlidingWindowCore:
        """The pure state machine this shell drives."""
        return self._core

    @property
    def fleet(self) -> FleetThrottleLink | None:
        """The fleet's admission (a shared store's), or ``None``: the core alone decides."""
        return self._fleet

    def _check_run(self) -> None:
        if trio.lowlevel.current_trio_token() is not self._run:
            self._start_run()

    def _start_run(self) -> None:
        # The first call in this trio.run: another run's times mean nothing here.
        self._run = trio.lowlevel.current_trio_token()
        self._now = trio.lowlevel.current_clock().current_time
        if not self._shared:  # a store's window is shared: another shell may use it now
            self._core.reset()
        self._waiters.clear()

    def admit_now(self, now: float) -> bool:
        """Count a call as started at ``now`` if it may start at once: nobody waits and the
        window has room. ``False`` (nothing counted): use :meth:`acquire`, which waits its turn
        or refuses. No checkpoint; the fast path of every admitted call. Always ``False`` with a
        shared store's fleet: the fleet decides, in :meth:`acquire`."""
        self._check_run()
        if self._waiters or self._fleet is not None:
            return False
        # Counts nothing when there is no room, so a call sent on to acquire() is refused once.
        return self._core.admit_if_room(now)

    async def acquire(self, amount: int = 1) -> None:
        """Wait until a call may start now (or refuse it), and count it as started.

        ``amount`` (default 1) is how many admissions the call weighs: it waits (or is refused)
        until the window has room for all of it at once, and takes all of it.

        With a shared store's fleet, the fleet decides (one round trip, bounded by the store's
        ``timeout``) while its server answers; else the local window does, as without a store.

        Raises:
            ConfigError: ``amount`` is not an integer from 1 to ``max_calls``, or not 1 with a
                shared store's fleet.
            RateLimitExceeded: with ``on_limit="raise"``, when the window is full; ``retry_after``
                is the time after which this call would have been admitted (the fleet's, when
                the fleet decided).

        Cancellation: a waiter cancelled while queued leaves the queue, takes no slot, and lets the
        next waiter move up; ``trio.Cancelled`` propagates.
        """
        self._check_run()
        core = self._core
        self._check_amount(amount)
        if self._fleet is not None and await self._fleet_admits(self._fleet):
            return
        if not self._waiters:
            retry_after = core.try_admit(trio.current_time(), amount)
            if retry_after == 0.0:
                return
            if self.on_limit is OnLimit.RAISE:
                raise RateLimitExceeded(retry_after, name=self.name)
        waiter = _Waiter()
        waiters = self._waiters
        waiters.append(waiter)
        try:
            while True:
                if waiters[0] is waiter:
                    now = trio.current_time()
                    due = core.next_admission(now, amount)
                    if due <= now and core.try_admit(now, amount) == 0.0:
                        waiters.popleft()
                        if waiters:
                            waiters[0].event.set()
                        return
                    await trio.sleep_until(due)
                else:
                    await waiter.event.wait()
        except BaseException:
            # Only reachable before admission (admission returns without a checkpoint).
            was_head = bool(waiters) and waiters[0] is waiter
            if waiter in waiters:
                waiters.remove(waiter)
            if was_head and waiters:
                waiters[0].event.set()
            raise

    def _check_amount(self, amount: int) -> None:
        if amount == 1:
            return
        self._core.check_amount(amount)
        if self._fleet is not None:  # the fleet admits one start at a time
            raise ConfigError(
                f"`amount` must be 1 with a shared store's fleet (got {amount})", field="amount"
            )

    async def _fleet_admits(self, fleet: FleetThrottleLink) -> bool:
        # True: the fleet admitted the call; False: it could not decide (the local window will).
        retry_after = await fleet.admit(wait=self.on_limit is OnLimit.WAIT)
        if retry_after is None:
            return False
        if retry_after == 0.0:
            self._core.admitted += 1
            return True
        self._core.refused += 1
        raise RateLimitExceeded(retry_after, name=self.name)

    async def _around(self, call: Callable[[], Awaitable[Any]]) -> Any:
        if not self.admit_now(trio.current_time()):
            await self.acquire()
        return await call()

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Guard ``fn`` (an ``async def`` function or method) with this throttle.

        An async generator function is admitted when its iteration starts (at the first step).

        Raises:
            TypeError: ``fn`` is a plain function or a plain generator function (a throttle
                waits, so it needs trio).
        """
        return decorate(
            fn,
            rule="throttle",
            around_async=self._around,
            around_sync=None,
            extra={"throttle": self},
            wrap_async=self._wrap,
            generators=UntilFirstItem(),
        )

    def _wrap(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        # admit_now() written out: one run check, one read of the run's own clock, the core's
        # check; everything else (waiting, refusing, a fleet) is acquire()'s.
        acquire = self.acquire
        if self._fleet is not None:  # the fleet decides every call

            async def throttled_by_fleet(*args: Any, **kwargs: Any) -> Any:
                await acquire()
                return await fn(*args, **kwargs)

            return throttled_by_fleet
        current_trio_token = trio.lowlevel.current_trio_token
        waiters = self._waiters
        admit_if_room = self._core.admit_if_room

        async def throttled(*args: Any, **kwargs: Any) -> Any:
            if current_trio_token() is not self._run:
                self._start_run()
            if waiters or not admit_if_room(self._now()):
                await acquire()
            return await fn(*args, **kwargs)

        return throttled

    def statistics(self) -> ThrottleStatistics:
        """A snapshot of the window (as of the current trio time, when inside ``trio.run``)."""
        core = self._core
        try:
            in_window = core.in_window(trio.current_time())
        except RuntimeError:
            in_window = core.recorded  # outside trio: no time to expire by
        return ThrottleStatistics(
            name=self.name,
            max_calls=core.max_calls,
            period=core.period,
            on_limit=self.on_limit,
            in_window=in_window,
            waiting=len(self._waiters),
            admitted=core.admitted,
            refused=core.refused if self.on_limit is OnLimit.RAISE else 0,
        )

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<Throttle {self.name!r} {s.in_window}/{s.max_calls} per {s.period}s, "
            f"{s.waiting} waiting, on_limit={self.on_limit.value!r}>"
        )


def throttle(
    max_calls: int | Unset = UNSET,
    period: float | Unset = UNSET,
    *,
    on_limit: str = "wait",
    name: str | None = None,
    store: Store | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Allow at most ``max_calls`` (default 100) calls to start within any ``period`` (default 60)
    seconds.

    The window slides and is half-open: a call that started exactly ``period`` seconds ago is out
    of it. Each decorated function gets its own :class:`Throttle`, named after its
    ``__qualname__``, shared by every caller (and every instance, for a method), and exposed as
    ``fn.throttle``.

    Over the limit, ``on_limit="wait"`` waits its turn (first come, first served; a waiter that is
    cancelled takes no slot); ``on_limit="raise"`` raises
    :class:`~supervisor.RateLimitExceeded` with the ``retry_after`` that would have admitted it.

    With ``store``, the throttles of the same function (its ``__qualname__``, or ``name``) in
    every process that uses the store are one limit (see :class:`Throttle`).

    Raises:
        ConfigError: at once, for ``max_calls`` not an integer >= 1, ``period`` not > 0, an
            ``on_limit`` other than ``"wait"``/``"raise"``, a ``store`` that is not a store, or a
            ``name`` that is not a non-empty string.
        TypeError: when decorating a plain ``def`` function (waiting needs trio).
    """
    # Validate now, at creation time, not when the first function is decorated.
    probe = Throttle("", max_calls, period, on_limit=on_limit)
    resolved_calls, resolved_period, mode = probe.core.max_calls, probe.core.period, probe.on_limit
    if store is not None and not isinstance(store, Store):
        raise ConfigError(f"`store` must be a MemoryStore or a RedisStore (got {shown(store)})")
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(f"`name` must be a non-empty string (got {shown(name)})")

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        return Throttle(
            name or qualname_of(fn), resolved_calls, resolved_period, on_limit=mode, store=store
        )(fn)

    return decorator
