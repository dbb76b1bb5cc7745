"""The sliding window of call outcomes a failure-rate breaker decides on (resilience4j's
count-based and time-based sliding windows).

:class:`OutcomeWindow` keeps, exactly, either the last ``size`` recorded calls or the calls
recorded within the last ``duration`` seconds, each as failed or not and slow or not, with
running totals, so every rate is read in constant time. Pure: the time is an argument.
"""

from __future__ import annotations

import collections
import math

import attrs

from .._config import COUNT, DURATION
from .._errors import ConfigError, shown

__all__ = ["OutcomeWindow", "WindowStatistics"]


@attrs.frozen(kw_only=True)
class WindowStatistics:
    """A snapshot of a breaker's outcome window (see ``CircuitBreaker.statistics().window``)."""

    calls: int
    """Calls in the window (successes and counted failures; ignored calls are not recorded)."""
    failures: int
    """Counted failures in the window."""
    slow_calls: int
    """Calls in the window that took longer than ``slow_call_duration``."""
    failure_rate: float
    """``failures / calls`` (0.0 for an empty window)."""
    slow_call_rate: float
    """``slow_calls / calls`` (0.0 for an empty window)."""
    minimum_calls: int
    """Calls needed in the window before a rate may open the breaker."""


class OutcomeWindow:
    """The last ``size`` calls (count-based), or the calls of the last ``duration`` seconds
    (time-based): exactly one of the two is given.

    Time-based windows are half-open: a call recorded exactly ``duration`` ago is out. Memory is
    one entry per call in the window (calls recorded at the same instant with the same outcome
    share one entry).

    Raises:
        ConfigError: both or neither of ``size`` and ``duration`` given, ``size`` not an integer
            >= 1, or ``duration`` not a number > 0.
    """

    __slots__ = ("_codes", "_entries", "calls", "duration", "failures", "size", "slow_calls")

    def __init__(self, *, size: int | None = None, duration: float | None = None) -> None:
        if (size is None) == (duration is None):
            raise ConfigError(
                f"a window needs exactly one of `size` and `duration` (got size={shown(size)}, "
                f"duration={shown(duration)})",
                field="size",
            )
        self.size = None if size is None else int(COUNT.check("size", size))
        self.duration = None if duration is None else float(DURATION.check("duration", duration))
        # Count-based: one code per call (1: failed, 2: slow, 3: both), oldest first.
        self._codes: collections.deque[int] = collections.deque()
        # Time-based: [at, code, count] per run of calls ended at one instant with one outcome.
        self._entries: collections.deque[list[float]] = collections.deque()
        self.calls = 0
        self.failures = 0
        self.slow_calls = 0

    def _forget(self, code: float, count: int) -> None:
        self.calls -= count
        if code == 1 or code == 3:  # noqa: PLR1714 -- two codes, one test each, no set built
            self.failures -= count
        if code >= 2:  # the slow bit
            self.slow_calls -= count

    def expire(self, now: float) -> None:
        """Forget the calls that left a time-based window at ``now`` (recorded at or before
        ``now - duration``). Does nothing for a count-based window."""
        duration = self.duration
        if duration is None:
            return
        horizon = now - duration
        entries = self._entries
        while entries and entries[0][0] <= horizon:
            _, code, count = entries.popleft()
            self._forget(code, int(count))

    def record(self, now: float, *, failed: bool, slow: bool) -> None:
        """Add one call that ended at ``now``."""
        code = (1 if failed else 0) + (2 if slow else 0)
        if self.size is not None:
            codes = self._codes
            if self.calls >= self.size:
                self._forget(codes.popleft(), 1)
            codes.append(code)
        else:
            self.expire(now)
            entries = self._entries
            last = entries[-1] if entries else None
            if last is not None and last[0] == now and last[1] == code:
                last[2] += 1
            else:
                entries.append([now, code, 1])
        self.calls += 1
        if failed:
            self.failures += 1
        if slow:
            self.slow_calls += 1

    def clear(self) -> None:
        """Forget every call."""
        self._codes.clear()
        self._entries.clear()
        self.calls = self.failures = self.slow_calls = 0

    @property
    def failure_rate(self) -> float:
        """``failures / calls`` (0.0 when empty)."""
        return self.failures / self.calls if self.calls else 0.0

    @property
    def slow_call_rate(self) -> float:
        """``slow_calls / calls`` (0.0 when empty)."""
        return self.slow_calls / self.calls if self.calls else 0.0

    def statistics(self, now: float, minimum_calls: int) -> WindowStatistics:
        """A snapshot at ``now`` (expires what left a time-based window first)."""
        self.expire(now)
        return WindowStatistics(
            calls=self.calls,
            failures=self.failures,
            slow_calls=self.slow_calls,
            failure_rate=self.failure_rate,
            slow_call_rate=self.slow_call_rate,
            minimum_calls=minimum_calls,
        )

    def __repr__(self) -> str:
        kind = f"last {self.size} calls" if self.size is not None else f"last {self.duration}s"
        rate = self.failure_rate if self.calls else math.nan
        return f"<OutcomeWindow {kind}: {self.calls} calls, failure rate {rate:.2f}>"
