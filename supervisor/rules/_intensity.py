"""Restart intensity: OTP's rule that a supervisor restarting too often gives up.

Pure: the time of each restart is passed in. Counted per supervisor (not per child), exactly as
``supervisor.erl`` does: a supervisor may perform at most ``max_restarts`` restarts within any
window of ``within`` seconds; the restart that would make it ``max_restarts + 1`` is refused, and
the supervisor stops its children and fails.
"""

from __future__ import annotations

import collections

__all__ = ["RestartIntensity"]


class RestartIntensity:
    """The sliding window of one supervisor's recent restarts.

    The window is half-open: a restart exactly ``within`` seconds before ``now`` no longer counts.
    """

    __slots__ = ("_times", "max_restarts", "within")

    def __init__(self, *, max_restarts: int, within: float) -> None:
        self.max_restarts = max_restarts
        self.within = within
        self._times: collections.deque[float] = collections.deque()

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.within:
            self._times.popleft()

    def record(self, now: float) -> bool:
        """Record one restart at ``now``; return whether it is allowed (False: give up)."""
        self._expire(now)
        self._times.append(now)
        return len(self._times) <= self.max_restarts

    def recent(self, now: float) -> int:
        """How many restarts count within the window ending at ``now`` (the n of the backoff)."""
        self._expire(now)
        return len(self._times)

    def reset(self) -> None:
        """Forget every recorded restart."""
        self._times.clear()

    def __repr__(self) -> str:
        return (
            f"<RestartIntensity {len(self._times)} recent of at most {self.max_restarts} "
            f"within {self.within}s>"
        )
