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
from .._errors import ConfigError

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

    __slots__ = ("_entries", "calls", "duration", "failures", "size", "slow_calls")

    def __init__(self, *, size: int | None = None, duration: float | None = None) -> None:
        if (size is None) == (duration is None):
            raise ConfigError(
                f"a window needs exactly one of `size` and `duration` (got size={size!r}, "
                f"duration={duration!r})"
            )
        self.size = None if size is None else int(COUNT.check("size", size))
        self.duration = None if duration is None else float(DURATION.check("duration", duration))
        # Entries: [at, failed, slow, count]; count > 1 only in time-based windows.
        self._entries: collections.deque[list[object]] = collections.deque()
        self.calls = 0
        self.failures = 0
        self.slow_calls = 0

    def _drop_oldest(self, count: int) -> None:
        entry = self._entries[0]
        left = entry[3] - count  # type: ignore[operator]
        self.calls -= count
        if entry[1]:
            self.failures -= count
        if entry[2]:
            self.slow_calls -= count
        if left:
            entry[3] = left
        else:
            self._entries.popleft()

    def expire(self, now: float) -> None:
        """Forget the calls that left a time-based window at ``now`` (recorded at or before
        ``now - duration``). Does nothing for a count-based window."""
        duration = self.duration
        if duration is None:
            return
        horizon = now - duration
        entries = self._entries
        while entries and entries[0][0] <= horizon:  # type: ignore[operator]
            self._drop_oldest(entries[0][3])  # type: ignore[arg-type]

    def record(self, now: float, *, failed: bool, slow: bool) -> None:
        """Add one call that ended at ``now``."""
        entries = self._entries
        if self.size is None:
            self.expire(now)
            last = entries[-1] if entries else None
            if last is not None and last[0] == now and last[1] is failed and last[2] is slow:
                last[3] += 1  # type: ignore[operator]
            else:
                entries.append([now, failed, slow, 1])
        else:
            if self.calls >= self.size:
                self._drop_oldest(1)
            entries.append([now, failed, slow, 1])
        self.calls += 1
        if failed:
            self.failures += 1
        if slow:
            self.slow_calls += 1

    def clear(self) -> None:
        """Forget every call."""
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
