"""The throttle's pure core: a sliding window of call start times, no trio, no clock."""

from __future__ import annotations

import math
from array import array

from .._config import COUNT, DURATION
from .._errors import ConfigError, shown

_FIRST_CAPACITY = 16
"""Slots the ring starts with (fewer when ``max_calls`` is smaller); it doubles when full, up to
``max_calls``."""


def _slots(capacity: int) -> array[float]:
    return array("d", bytes(8 * capacity))


class SlidingWindowCore:
    """Pure sliding-window rate limit: at most ``max_calls`` admissions in any ``period``.

    The window is half-open: at time ``now`` it holds the admissions made at times ``t`` with
    ``now - period < t <= now``; an admission made exactly ``period`` ago is already out of it
    (the comparison is done as ``t + period <= now``, the same sum that
    :meth:`next_admission` returns, so that sleeping until that time always admits).

    Times must be passed in non-decreasing order. Nothing here reads a clock.

    Storage: the start times are C doubles in a ring buffer (an ``array('d')``), 8 bytes per
    admission in the window and no Python object per admission, so the garbage collector has
    nothing to walk however many admissions the window holds. The ring starts with 16 slots
    (``max_calls`` if fewer) and doubles when full, never past ``max_calls``; :meth:`reset`
    gives the memory back.
    """

    __slots__ = (
        "_count",
        "_due",
        "_head",
        "_times",
        "admitted",
        "max_calls",
        "period",
        "refused",
    )

    def __init__(self, max_calls: int, period: float) -> None:
        self.max_calls = int(COUNT.check("max_calls", max_calls))
        self.period = float(DURATION.check("period", period))
        # The ring: ``_count`` start times from slot ``_head`` on, wrapping around the end.
        self._times = _slots(min(self.max_calls, _FIRST_CAPACITY))
        self._head = 0
        self._count = 0
        # Never later than the time the oldest recorded start leaves the window (``inf`` when
        # none is recorded): before it, nothing can expire and nobody needs to look.
        self._due = math.inf
        self.admitted = 0
        """Admissions so far (all time; a call of ``amount`` n counts n)."""
        self.refused = 0
        """Calls to :meth:`try_admit` that did not admit (all time)."""

    def _expire(self, now: float) -> None:
        times, period = self._times, self.period
        capacity = len(times)
        head, count = self._head, self._count
        while count:
            due = times[head] + period
            if due > now:
                self._due = due
                break
            head += 1
            if head == capacity:
                head = 0
            count -= 1
        else:
            self._due = math.inf
            head = 0
        self._head, self._count = head, count

    def _start(self, index: int) -> float:
        # The ``index``-th oldest recorded start (0: the oldest; ``index < _count``).
        times = self._times
        slot = self._head + index
        if slot >= len(times):
            slot -= len(times)
        return times[slot]

    def _record(self, now: float, amount: int) -> None:
        # Append ``amount`` starts at ``now`` (the caller made sure the window has room).
        count = self._count
        times = self._times
        if count + amount > len(times):
            times = self._grow(count + amount)
        capacity = len(times)
        tail = self._head + count
        if tail >= capacity:
            tail -= capacity
        if amount == 1:
            times[tail] = now
        else:
            for _ in range(amount):
                times[tail] = now
                tail += 1
                if tail == capacity:
                    tail = 0
        if count == 0:
            self._due = now + self.period
        self._count = count + amount
        self.admitted += amount

    def _grow(self, needed: int) -> array[float]:
        times, head, count = self._times, self._head, self._count
        capacity = len(times)
        while capacity < needed:
            capacity *= 2
        capacity = min(capacity, self.max_calls)
        end = head + count
        if end <= len(times):
            grown = times[head:end]
        else:
            grown = times[head:]
            grown.extend(times[: end - len(times)])
        grown.extend(_slots(capacity - count))
        self._times, self._head = grown, 0
        return grown

    def in_window(self, now: float) -> int:
        """How many admissions are in the window ending at ``now``."""
        if now >= self._due:
            self._expire(now)
        return self._count

    @property
    def recorded(self) -> int:
        """Admissions recorded and not yet expired by a later call (no time needed)."""
        return self._count

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
        # Admitting ``amount`` needs the oldest ``count + amount - max_calls`` starts gone.
        gone = self._count + amount - self.max_calls
        if gone <= 0:
            return now
        return self._start(gone - 1) + self.period

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
        gone = self._count + amount - self.max_calls
        if gone <= 0:
            self._record(now, amount)
            return 0.0
        self.refused += 1
        return self._start(gone - 1) + self.period - now

    def admit_if_room(self, now: float) -> bool:
        """Admit a call starting at ``now`` if the window has room; ``False`` records nothing
        (not even a refusal: the caller goes on to wait or to :meth:`try_admit`)."""
        if now >= self._due:
            self._expire(now)
        if self._count < self.max_calls:
            self._record(now, 1)
            return True
        return False

    def reset(self) -> None:
        """Forget every admission (the window becomes empty and its memory is given back)."""
        self._times = _slots(min(self.max_calls, _FIRST_CAPACITY))
        self._head = self._count = 0
        self._due = math.inf

    def __repr__(self) -> str:
        return (
            f"<SlidingWindowCore {self._count}/{self.max_calls} per {self.period}s (before expiry)>"
        )
