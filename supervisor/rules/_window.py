"""The throttle's pure core: a sliding window of call start times, no trio, no clock."""

from __future__ import annotations

import math
from array import array

from .._config import COUNT, DURATION
from .._errors import ConfigError, shown


class SlidingWindowCore:
    """Pure sliding-window rate limit: at most ``max_calls`` admissions in any ``period``.

    The window is half-open: at time ``now`` it holds the admissions made at times ``t`` with
    ``now - period < t <= now``; an admission made exactly ``period`` ago is already out of it
    (the comparison is done as ``t + period <= now``, the same sum that
    :meth:`next_admission` returns, so that sleeping until that time always admits).

    Times must be passed in non-decreasing order. Nothing here reads a clock.

    Storage: the start times are C doubles in one ``array('d')``, oldest first, from a head
    index on; an expired start only moves the head, and the expired prefix is cut off once it
    is longer than the rest. That is 8 bytes per admission in the window (at most twice that
    just before a cut), no Python object per admission, and nothing for the garbage collector
    to walk, however many admissions the window holds.
    """

    __slots__ = (
        "_due",
        "_head",
        "_limit",
        "_times",
        "admitted",
        "max_calls",
        "period",
        "refused",
    )

    def __init__(self, max_calls: int, period: float) -> None:
        self.max_calls = int(COUNT.check("max_calls", max_calls))
        self.period = float(DURATION.check("period", period))
        self._times: array[float] = array("d")
        """Every recorded start; those before ``_head`` have expired."""
        self._head = 0
        self._limit = self.max_calls
        """``_head + max_calls``: the window has room while ``len(_times)`` is below it."""
        self._due = -math.inf
        """When the oldest recorded start leaves the window; before it nothing can expire, so
        nobody needs to look. ``-inf`` when none is recorded: the next call looks (and sets it
        when it records the first start)."""
        self.admitted = 0
        """Admissions so far (all time; a call of ``amount`` n counts n)."""
        self.refused = 0
        """Calls to :meth:`try_admit` that did not admit (all time)."""

    def _expire(self, now: float) -> None:
        times, period, head = self._times, self.period, self._head
        end = len(times)
        while head < end:
            due = times[head] + period
            if due > now:
                break
            head += 1
        else:
            due = -math.inf
        self._due = due
        if head * 2 > end:  # the expired prefix outgrew the window: cut it off
            del times[:head]
            head = 0
        self._head = head
        self._limit = head + self.max_calls

    def _take(self, now: float, amount: int) -> None:
        # Record ``amount`` starts at ``now``: the caller expired what was due and saw room.
        times = self._times
        if len(times) == self._head:
            self._due = now + self.period
        if amount == 1:
            times.append(now)
        else:
            times.extend([now] * amount)
        self.admitted += amount

    def in_window(self, now: float) -> int:
        """How many admissions are in the window ending at ``now``."""
        if now >= self._due:
            self._expire(now)
        return len(self._times) - self._head

    @property
    def recorded(self) -> int:
        """Admissions recorded and not yet expired by a later call (no time needed)."""
        return len(self._times) - self._head

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
        (default 1; at most ``max_calls``: any other amount raises :class:`ConfigError`, as in
        :meth:`check_amount`)."""
        if amount != 1:
            self.check_amount(amount)
        if now >= self._due:
            self._expire(now)
        # Admitting ``amount`` needs the oldest ``in window + amount - max_calls`` starts gone.
        head = self._head
        gone = len(self._times) - head + amount - self.max_calls
        if gone <= 0:
            return now
        return self._times[head + gone - 1] + self.period

    def try_admit(self, now: float, amount: int = 1) -> float:
        """Admit a call starting at ``now``, weighing ``amount`` admissions (default 1, at most
        ``max_calls``), if the window has room for all of it.

        Returns:
            ``0.0`` if the call was admitted (and recorded, ``amount`` times); else the
            ``retry_after``: the number of seconds (``> 0``) after which the same call would have
            been admitted. Nothing is recorded for a refused call.

        Raises:
            ConfigError: an ``amount`` that :meth:`check_amount` refuses (it is only checked when
                it is not 1; callers check it first to say so at their own entry).
        """
        if amount != 1:
            self.check_amount(amount)
        if now >= self._due:
            self._expire(now)
        head = self._head
        gone = len(self._times) - head + amount - self.max_calls
        if gone <= 0:
            self._take(now, amount)
            return 0.0
        self.refused += 1
        return self._times[head + gone - 1] + self.period - now

    def admit_if_room(self, now: float) -> bool:
        """Admit a call starting at ``now`` if the window has room; ``False`` records nothing
        (not even a refusal: the caller goes on to wait or to :meth:`try_admit`)."""
        times = self._times
        if now < self._due and len(times) < self._limit:  # nothing to expire, and room
            times.append(now)
            self.admitted += 1
            return True
        if now >= self._due:
            self._expire(now)
        if len(self._times) < self._limit:
            self._take(now, 1)
            return True
        return False

    def reset(self) -> None:
        """Forget every admission (the window becomes empty and its memory is given back)."""
        self._times = array("d")
        self._head = 0
        self._limit = self.max_calls
        self._due = -math.inf

    def __repr__(self) -> str:
        return (
            f"<SlidingWindowCore {self.recorded}/{self.max_calls} per {self.period}s "
            "(before expiry)>"
        )
