"""The bounded mailbox: a pure queue with an overflow policy and a line of waiting senders.

No trio here: the mailbox only decides where an item goes. The actor's cell (the async shell)
parks and wakes tasks according to those decisions.

The queue and the line of waiters are made on first use: an idle actor that never got a message
holds neither (an empty ``deque`` alone is ~600 bytes). Until then both are one empty tuple
shared by every mailbox: read them freely (``len``, truth, iteration), but only :meth:`offer`,
:meth:`wait` and :meth:`ensure_queue` may add to them.

Invariants: ``len(queue) <= capacity``; ``waiting`` is non-empty only under ``Overflow.WAIT`` and
only while the queue is full (every pop or removal admits the first waiter at once through
:meth:`Mailbox.admit`); items leave in the order they were admitted.
"""

from __future__ import annotations

import collections
import enum
from typing import Any, Generic, TypeVar

from ._messages import Overflow

__all__ = ["Admission", "Mailbox"]

T = TypeVar("T")
W = TypeVar("W")


class Admission(enum.Enum):
    """What :meth:`Mailbox.offer` did with an item."""

    ACCEPTED = "accepted"
    """Queued."""
    DROPPED = "dropped"
    """Queued, after dropping the oldest item (returned beside this verdict)."""
    REJECTED = "rejected"
    """Not queued: full under ``REJECT``."""
    FULL = "full"
    """Not queued: full under ``WAIT``; the caller may :meth:`Mailbox.wait` or give up."""


# Messages a run loop takes from its mailbox back to back before it yields to the scheduler once
# (fairness); the single-handler loop (_cell.py) and the dispatcher (_pool.py) share it.
SERVE_BATCH = 64

# The queue and the waiters of a mailbox that never had any (see the module docstring).
NO_QUEUE: Any = ()
_NO_WAITERS: Any = ()

_ACCEPTED: tuple[Admission, None] = (Admission.ACCEPTED, None)
_REJECTED: tuple[Admission, None] = (Admission.REJECTED, None)
_FULL: tuple[Admission, None] = (Admission.FULL, None)


class Mailbox(Generic[T, W]):
    """A bounded FIFO of items of type ``T`` plus a FIFO of waiters ``W`` holding items for it.

    ``capacity`` must be an int >= 1 (validated by the caller, ``spawn``).
    """

    __slots__ = ("capacity", "overflow", "queue", "waiting")

    def __init__(self, capacity: int, overflow: Overflow) -> None:
        self.capacity = capacity
        self.overflow = overflow
        self.queue: collections.deque[T] = NO_QUEUE
        # A list, not a deque, once made: waiters are the rare slow path (O(n) pop from the front
        # is fine there).
        self.waiting: list[tuple[T, W]] = _NO_WAITERS

    def __repr__(self) -> str:
        return (
            f"<Mailbox {len(self.queue)}/{self.capacity} {self.overflow.value}, "
            f"{len(self.waiting)} waiting>"
        )

    def ensure_queue(self) -> collections.deque[T]:
        """The queue, made now if this mailbox never had one."""
        queue = self.queue
        if queue is NO_QUEUE:
            queue = self.queue = collections.deque()
        return queue

    def offer(self, item: T) -> tuple[Admission, T | None]:
        """Try to queue ``item``; return the verdict and, for ``DROPPED``, the dropped item."""
        queue = self.queue
        if queue is NO_QUEUE:
            queue = self.queue = collections.deque()
        if len(queue) < self.capacity and not self.waiting:
            queue.append(item)
            return _ACCEPTED
        overflow = self.overflow
        if overflow is Overflow.DROP_OLDEST:
            dropped = queue.popleft()
            queue.append(item)
            return (Admission.DROPPED, dropped)
        if overflow is Overflow.REJECT:
            return _REJECTED
        return _FULL

    def wait(self, item: T, waiter: W) -> None:
        """Line ``waiter`` up to put ``item`` in the queue once room frees (after ``FULL``)."""
        if self.waiting is _NO_WAITERS:
            self.waiting = []
        self.waiting.append((item, waiter))

    def take(self) -> T:
        """Remove and return the oldest item. Raises IndexError if the queue is empty."""
        return self.queue.popleft()

    def admit(self) -> W | None:
        """Move the first waiter's item into the queue if there is room; return that waiter."""
        if self.waiting and len(self.queue) < self.capacity:
            item, waiter = self.waiting.pop(0)
            self.queue.append(item)
            return waiter
        return None

    def remove(self, item: T) -> bool:
        """Remove a queued ``item`` (by identity); return whether it was queued."""
        for index, queued in enumerate(self.queue):
            if queued is item:
                del self.queue[index]
                return True
        return False

    def remove_waiter(self, waiter: W) -> bool:
        """Remove ``waiter`` from the line of waiters; return whether it was waiting."""
        for index, (_, waiting) in enumerate(self.waiting):
            if waiting is waiter:
                del self.waiting[index]
                return True
        return False

    def drain(self) -> tuple[list[T], list[W]]:
        """Empty the mailbox; return the queued items and the waiters, oldest first."""
        items = list(self.queue)
        waiters = [waiter for _, waiter in self.waiting]
        if items:
            self.queue.clear()
        if waiters:
            self.waiting.clear()
        return items, waiters
