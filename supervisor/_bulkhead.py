"""The bulkhead rule: at most ``max_concurrent`` calls run at once, up to ``max_queued`` more wait.

Two layers, as for every rule:

* :class:`BulkheadCore` is the pure state machine: slot counting and a first-in first-out queue of
  opaque *tickets*. It never calls trio. :meth:`BulkheadCore.leave` hands the freed slot directly
  to the oldest ticket and returns it, so the caller knows whom to wake; a free slot never
  coexists with a waiting ticket. The supervision tree drives the same core (there the mailbox
  bound is the bulkhead's queue).
* :class:`Bulkhead` is the thin trio shell: a free slot is taken with a plain counter check (no
  checkpoint, no semaphore); a caller that must wait parks with
  :func:`trio.lowlevel.wait_task_rescheduled` and is woken by the caller that leaves.

.. note:: A bulkhead limits how many calls *run at the same time* (a concurrency); a throttle
   limits how many *start* per period (a rate).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar

import attrs
import trio

from ._config import COUNT, QUEUE, UNSET, Unset
from ._decorate import decorate, qualname_of
from ._errors import BulkheadFullError

__all__ = ["Admission", "Bulkhead", "BulkheadCore", "BulkheadStatistics", "bulkhead"]

P = ParamSpec("P")
R = TypeVar("R")
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
        if self._queue:
            self.admitted += 1
            return self._queue.popleft()
        self.running -= 1
        return None

    def __repr__(self) -> str:
        return (
            f"<BulkheadCore {self.running}/{self.max_concurrent} running, "
            f"{len(self._queue)}/{self.max_queued} queued>"
        )


@attrs.frozen(kw_only=True)
class BulkheadStatistics:
    """A snapshot of a :class:`Bulkhead`."""

    name: str
    """The bulkhead's name."""
    max_concurrent: int
    """Slots."""
    max_queued: int
    """Queue places."""
    running: int
    """Slots taken now."""
    queued: int
    """Callers waiting now."""
    admitted: int
    """Calls that got a slot so far."""
    refused: int
    """Calls refused with :class:`~supervisor.BulkheadFullError` so far."""


class Bulkhead:
    """At most ``max_concurrent`` (default 10) calls run at once; up to ``max_queued`` (default 0)
    more wait in arrival order; any call beyond that is refused at once with
    :class:`~supervisor.BulkheadFullError` carrying ``name``.

    Use it as a decorator (``@db_bulkhead``, on ``async def`` functions and methods) or as
    ``async with db_bulkhead:``. Every use of one object shares its slots and queue.

    Entering with a free slot is a plain counter check: no checkpoint, no cancel scope. A caller
    that must wait parks until a leaving caller hands it its slot.

    Cancellation: a caller cancelled while queued leaves the queue (freeing its place) and never
    holds a slot; one cancelled while running gives its slot back on the way out, to the oldest
    waiter if any.

    Raises:
        ConfigError: ``max_concurrent`` not an integer >= 1, or ``max_queued`` not an integer
            >= 0.
        TypeError: ``name`` is not a string.
    """

    __slots__ = ("_core", "name")

    def __init__(
        self,
        name: str,
        max_concurrent: int | Unset = UNSET,
        max_queued: int | Unset = UNSET,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a string (got {name!r})")
        self.name = name
        self._core: BulkheadCore[trio.lowlevel.Task] = BulkheadCore(
            COUNT.resolve_int("max_concurrent", max_concurrent, env=None, default=10),
            QUEUE.resolve_int("max_queued", max_queued, env=None, default=0),
        )

    @property
    def core(self) -> BulkheadCore[trio.lowlevel.Task]:
        """The pure state machine this shell drives."""
        return self._core

    @property
    def max_concurrent(self) -> int:
        """Slots."""
        return self._core.max_concurrent

    @property
    def max_queued(self) -> int:
        """Queue places."""
        return self._core.max_queued

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if needed; pair with :meth:`release`.

        Raises:
            BulkheadFullError: at once, when no slot is free and the queue is full.

        Cancellation: while waiting, ``trio.Cancelled`` withdraws the caller from the queue and
        propagates; no slot is held.
        """
        core = self._core
        if core.try_enter():
            return
        task = trio.lowlevel.current_task()
        admission = core.offer(task)
        if admission is Admission.RUN:  # pragma: no cover - try_enter just said no
            return
        if admission is Admission.REFUSED:
            raise BulkheadFullError(self.name)

        def abort(_: Any) -> trio.lowlevel.Abort:
            core.cancel(task)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def release(self) -> None:
        """Give back the slot taken by :meth:`acquire`, to the oldest waiter if any.

        Raises:
            RuntimeError: no slot is held.
        """
        task = self._core.leave()
        if task is not None:
            trio.lowlevel.reschedule(task)

    async def __aenter__(self) -> Bulkhead:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def _around(self, call: Callable[[], Awaitable[Any]]) -> Any:
        await self.acquire()
        try:
            return await call()
        finally:
            self.release()

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Guard ``fn`` (an ``async def`` function or method) with this bulkhead.

        Raises:
            TypeError: ``fn`` is a plain function (waiting for a slot needs trio).
        """
        return decorate(
            fn,
            rule="bulkhead",
            around_async=self._around,
            around_sync=None,
            extra={"bulkhead": self},
        )

    def statistics(self) -> BulkheadStatistics:
        """A snapshot of the slots and the queue."""
        core = self._core
        return BulkheadStatistics(
            name=self.name,
            max_concurrent=core.max_concurrent,
            max_queued=core.max_queued,
            running=core.running,
            queued=core.queued,
            admitted=core.admitted,
            refused=core.refused,
        )

    def __repr__(self) -> str:
        core = self._core
        return (
            f"<Bulkhead {self.name!r} {core.running}/{core.max_concurrent} running, "
            f"{core.queued}/{core.max_queued} queued>"
        )


def bulkhead(
    max_concurrent: int | Unset = UNSET,
    max_queued: int | Unset = UNSET,
    *,
    name: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Make one :class:`Bulkhead` per decorated function, shared by every caller (and every
    instance, for a method), and exposed as ``fn.bulkhead``.

    Its name, carried by :class:`~supervisor.BulkheadFullError`, is ``name`` if given, else the
    decorated function's ``__qualname__``.

    Raises:
        ConfigError: at once, for ``max_concurrent`` not an integer >= 1 or ``max_queued`` not an
            integer >= 0.
        TypeError: at once for a ``name`` that is not a string; when decorating a plain ``def``
            function.
    """
    probe = Bulkhead(name if name is not None else "", max_concurrent, max_queued)
    slots, places = probe.max_concurrent, probe.max_queued

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        return Bulkhead(name if name is not None else qualname_of(fn), slots, places)(fn)

    return decorator
