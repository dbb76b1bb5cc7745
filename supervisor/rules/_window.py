"""The throttle's pure core: a sliding window of call start times, no trio, no clock."""

from __future__ import annotations

from collections import deque

from .._config import COUNT, DURATION
from .._errors import ConfigError, shown


class SlidingWindowCore:
    """Pure sliding-window rate limit: at most ``max_calls`` admissions in any ``period``.

    The window is half-open: at time ``now`` it holds the admissions made at times ``t`` with
    ``now - period < t <= now``; an admission made exactly ``period`` ago is already out of it
    (the comparison is done as ``t + period <= now``, the same sum that
    :meth:`next_admission` returns, so that sleeping until that time always admits).

    Times must be passed in non-decreasing order. Nothing here reads a clock.
    """

    __slots__ = ("_starts", "admitted", "max_calls", "period", "refused")

    def __init__(self, max_calls: int, period: float) -> None:
        self.max_calls = int(COUNT.check("max_calls", max_calls))
        self.period = float(DURATION.check("period", period))
        self._starts: deque[float] = deque()
        self.admitted = 0
        """Admissions so far (all time; a call of ``amount`` n counts n)."""
        self.refused = 0
        """Calls to :meth:`try_admit` that did not admit (all time)."""

    def _expire(self, now: float) -> None:
        starts, period = self._starts, self.period
        while starts and starts[0] + period <= now:
            starts.popleft()

    def in_window(self, now: float) -> int:
        """How many admissions are in the window ending at ``now``."""
        self._expire(now)
        return len(self._starts)

    @property
    def recorded(self) -> int:
        """Admissions recorded and not yet expired by a later call (no time needed)."""
        return len(self._starts)

    def check_amount(self, amount: int) -> int:
        """``amount`` if it is an integer from 1 to ``max_calls``, else :class:`ConfigError`
        (a larger amount could never be admitted)."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            raise ConfigError(
                f"`amount` must be an integer >= 1 (got {shown(amount)})", field="amount"
            )
        if amount > self.max_calls:
            raise ConfigError(
                f"`amount` must be at most `max_calls` ({self.max_calls}) (got {shown(amount)})",
                field="amount",
            )
        return amount

    def next_admission(self, now: float, amount: int = 1) -> float:
        """The earliest time ``>= now`` at which :meth:`try_admit` would admit ``amount``
        (default 1; at most ``max_calls``, unchecked here)."""
        self._expire(now)
        starts = self._starts
        # Admitting ``amount`` needs the oldest ``len + amount - max_calls`` starts gone.
        gone = len(starts) + amount - self.max_calls
        if gone <= 0:
            return now
        return starts[gone - 1] + self.period

    def try_admit(self, now: float, amount: int = 1) -> float:
        """Admit a call starting at ``now``, weighing ``amount`` admissions (default 1, at most
        ``max_calls``, unchecked here: see :meth:`check_amount`), if the window has room for all
        of it.

        Returns:
            ``0.0`` if the call was admitted (and recorded, ``amount`` times); else the
            ``retry_after``: the number of seconds (``> 0``) after which the same call would have
            been admitted. Nothing is recorded for a refused call.
        """
        self._expire(now)
        starts = self._starts
        if len(starts) + amount <= self.max_calls:
            if amount == 1:
                starts.append(now)
            else:
                starts.extend([now] * amount)
            self.admitted += amount
            return 0.0
        self.refused += 1
        return starts[len(starts) + amount - self.max_calls - 1] + self.period - now

    def reset(self) -> None:
        """Forget every admission (the window becomes empty)."""
        self._starts.clear()

    def __repr__(self) -> str:
        return (
            f"<SlidingWindowCore {len(self._starts)}/{self.max_calls} per {self.period}s "
            "(before expiry)>"
        )
