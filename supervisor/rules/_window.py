"""The throttle's pure core: a sliding window of call start times, no trio, no clock."""

from __future__ import annotations

from collections import deque

from .._config import COUNT, DURATION


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
        """Admissions so far (all time)."""
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

    def next_admission(self, now: float) -> float:
        """The earliest time ``>= now`` at which :meth:`try_admit` would admit a call."""
        self._expire(now)
        if len(self._starts) < self.max_calls:
            return now
        return self._starts[0] + self.period

    def try_admit(self, now: float) -> float:
        """Admit a call starting at ``now`` if the window has room.

        Returns:
            ``0.0`` if the call was admitted (and recorded); else the ``retry_after``: the number
            of seconds (``> 0``) after which the same call would have been admitted. Nothing is
            recorded for a refused call.
        """
        self._expire(now)
        starts = self._starts
        if len(starts) < self.max_calls:
            starts.append(now)
            self.admitted += 1
            return 0.0
        self.refused += 1
        return starts[0] + self.period - now

    def reset(self) -> None:
        """Forget every admission (the window becomes empty)."""
        self._starts.clear()

    def __repr__(self) -> str:
        return (
            f"<SlidingWindowCore {len(self._starts)}/{self.max_calls} per {self.period}s "
            "(before expiry)>"
        )
