"""The bulkhead's pure core: slots and a bounded first-come-first-served queue, no trio."""

from __future__ import annotations

import enum
from collections import deque
from typing import Generic, TypeVar

from .._config import COUNT, QUEUE

T = TypeVar("T")


class Admission(enum.Enum):
    """What :meth:`BulkheadCore.offer` decided for a ticket."""

    RUN = "run"
    """A slot was free: the ticket holds it now."""
    QUEUED = "queued"
    """No slot: the ticket waits at the back of the queue."""
    REFUSED = "refused"
    """No slot and no queue room: nothing was recorded."""


class BulkheadCore(Generic[T]):
    """Pure concurrency limit with a bounded first-in first-out queue of tickets.

    Invariants: ``0 <= running <= max_concurrent``, ``0 <= queued <= max_queued``, and a ticket
    waits only while every slot is taken (``queued > 0`` implies ``running == max_concurrent``).
    After :meth:`set_limit` shrinks the slots, ``running`` may exceed ``max_concurrent`` until
    enough tickets leave (``queued > 0`` then implies ``running >= max_concurrent``).

    Tickets are opaque (a trio task, an actor's envelope, ...) and compared by equality, so each
    waiting ticket must be distinct.
    """

    __slots__ = ("_queue", "admitted", "max_concurrent", "max_queued", "refused", "running")

    def __init__(self, max_concurrent: int, max_queued: int) -> None:
        self.max_concurrent = int(COUNT.check("max_concurrent", max_concurrent))
        self.max_queued = int(QUEUE.check("max_queued", max_queued))
        self.running = 0
        """Slots taken."""
        self.admitted = 0
        """Slots granted so far, at once or after waiting (all time)."""
        self.refused = 0
        """Offers refused so far (all time)."""
        self._queue: deque[T] = deque()

    @property
    def queued(self) -> int:
        """Tickets waiting."""
        return len(self._queue)

    def waiting(self) -> tuple[T, ...]:
        """The waiting tickets, oldest first."""
        return tuple(self._queue)

    def try_enter(self) -> bool:
        """Take a slot if one is free (and nobody waits); return whether it was taken.

        A ``False`` is not counted as a refusal: the caller goes on with :meth:`offer`.
        """
        if self.running < self.max_concurrent and not self._queue:
            self.running += 1
            self.admitted += 1
            return True
        return False

    def offer(self, ticket: T) -> Admission:
        """Take a slot for ``ticket``, else queue it, else refuse it (counted in ``refused``)."""
        if self.try_enter():
            return Admission.RUN
        if len(self._queue) < self.max_queued:
            self._queue.append(ticket)
            return Admission.QUEUED
        self.refused += 1
        return Admission.REFUSED

    def cancel(self, ticket: T) -> bool:
        """Withdraw a waiting ``ticket``; return ``False`` if it was not waiting.

        A withdrawn ticket frees its queue place; it never held a slot.
        """
        try:
            self._queue.remove(ticket)
        except ValueError:
            return False
        return True

    def leave(self) -> T | None:
        """Give back one slot.

        Returns:
            The oldest waiting ticket, which now holds the slot (the caller must wake it), or
            ``None`` when nobody waited and the slot is free.

        Raises:
            RuntimeError: no slot was taken.
        """
        if self.running <= 0:
            raise RuntimeError("BulkheadCore.leave() without a slot taken")
        if self._queue and self.running <= self.max_concurrent:
            self.admitted += 1
            return self._queue.popleft()
        self.running -= 1
        return None

    def set_limit(self, max_concurrent: int) -> list[T]:
        """Change the number of slots to ``max_concurrent`` (an adaptive limit moves it).

        Growing hands the new slots to the oldest waiting tickets, which are returned (oldest
        first; the caller must wake them). Shrinking takes no slot away from a running ticket:
        until enough of them leave, ``running`` may exceed ``max_concurrent`` and :meth:`leave`
        frees slots without handing them on.

        Raises:
            ConfigError: ``max_concurrent`` is not an integer >= 1.
        """
        self.max_concurrent = int(COUNT.check("max_concurrent", max_concurrent))
        woken: list[T] = []
        queue = self._queue
        while queue and self.running < self.max_concurrent:
            self.running += 1
            self.admitted += 1
            woken.append(queue.popleft())
        return woken

    def __repr__(self) -> str:
        return (
            f"<BulkheadCore {self.running}/{self.max_concurrent} running, "
            f"{len(self._queue)}/{self.max_queued} queued>"
        )
