"""A standalone rate limiter, :class:`RateLimiter`: the throttle's sliding window as an object to
``async with`` or ``await limiter.acquire(amount)``, as users of aiolimiter's ``AsyncLimiter``
know it.

It *is* a :class:`~supervisor.guards._throttle.Throttle` (same pure
:class:`~supervisor.cores.SlidingWindowCore`, same first-come-first-served queue, same
cancellation rules); it only adds the peer's names and the ``async with`` form.
"""

from __future__ import annotations

from types import TracebackType

import trio

from .._config import COUNT, DURATION, UNSET, Unset
from .._errors import shown
from ._throttle import OnLimit, Throttle


class RateLimiter(Throttle):
    """At most ``max_rate`` admissions start within any sliding window of ``time_period``
    seconds (default 60), shared by every task that uses this object.

    Forms::

        limiter = RateLimiter(10, 1.0)           # 10 per second
        async with limiter:                      # one admission
            ...
        await limiter.acquire(3)                 # three admissions at once
        @limiter                                 # every call of the function takes one
        async def fetch(): ...

    The window is half-open, as :func:`~supervisor.throttle`'s: an admission made exactly
    ``time_period`` ago is out of it. ``on_limit="wait"`` (default) waits first come, first
    served (a larger ``amount`` ahead in the queue is served before a smaller one behind it);
    ``on_limit="raise"`` refuses at once with :class:`~supervisor.RateLimitExceeded` whose
    ``retry_after`` would have admitted it.

    .. note:: aiolimiter's ``AsyncLimiter`` is a leaky bucket: its capacity drips back
       continuously, so a burst of ``max_rate`` can follow shortly after another. This is a strict
       sliding window: no window of ``time_period`` ever holds more than ``max_rate``
       admissions.

    Cancellation: a task cancelled while waiting takes nothing and leaves the queue; leaving an
    ``async with`` block gives nothing back (a rate counts starts, not running calls).

    Raises:
        ConfigError: ``max_rate`` is not an integer >= 1, ``time_period`` not > 0, or
            ``on_limit`` neither ``"wait"`` nor ``"raise"``.
    """

    def __init__(
        self,
        max_rate: int | Unset = UNSET,
        time_period: float | Unset = 60.0,
        *,
        name: str = "rate limiter",
        on_limit: str | OnLimit = "wait",
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a string (got {shown(name)})")
        # Checked under this class's own names (the throttle's would say max_calls and period).
        if max_rate is not UNSET:
            COUNT.check("max_rate", max_rate)
        if time_period is not UNSET:
            DURATION.check("time_period", time_period)
        super().__init__(name, max_rate, time_period, on_limit=on_limit)

    @property
    def max_rate(self) -> int:
        """Admissions allowed per window (aiolimiter's name for ``max_calls``)."""
        return self.core.max_calls

    @property
    def time_period(self) -> float:
        """The window, in seconds (aiolimiter's name for ``period``)."""
        return self.core.period

    def has_capacity(self, amount: int = 1) -> bool:
        """Whether :meth:`acquire` of ``amount`` would be admitted now, without waiting (no task
        is queued and the window has room for all of it). Must be called inside ``trio.run``.

        Raises:
            ConfigError: ``amount`` is not an integer from 1 to ``max_rate``.
        """
        self._check_run()
        core = self.core
        core.check_amount(amount)
        if self._waiters:
            return False
        now = trio.current_time()
        return core.next_admission(now, amount) <= now

    async def __aenter__(self) -> RateLimiter:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<RateLimiter {self.name!r} {s.in_window}/{s.max_calls} per {s.period}s, "
            f"{s.waiting} waiting, on_limit={self.on_limit.value!r}>"
        )
