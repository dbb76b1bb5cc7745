"""The bulkhead's trio shell: at most ``max_concurrent`` calls run at once, up to ``max_queued``
more wait.

:class:`Bulkhead` drives the pure :class:`~supervisor.cores.BulkheadCore`: a free slot is taken
with a plain counter check (no checkpoint, no semaphore); a caller that must wait parks with
:func:`trio.lowlevel.wait_task_rescheduled` and is woken by the caller that leaves, to whom the
core handed the freed slot directly.

.. note:: A bulkhead limits how many calls *run at the same time* (a concurrency); a throttle
   limits how many *start* per period (a rate).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import attrs
import trio

from .._config import COUNT, QUEUE, UNSET, Unset
from .._errors import BulkheadFullError, shown
from ..rules._bulkhead import Admission, BulkheadCore
from ._decorate import decorate, qualname_of
from ._generators import Refused

P = ParamSpec("P")
R = TypeVar("R")


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


async def wait_for_slot(core: BulkheadCore[trio.lowlevel.Task], task: trio.lowlevel.Task) -> None:
    """Park ``task`` (the current task, queued in ``core`` as its own ticket) until a leaving
    caller hands it a slot and reschedules it.

    Cancellation: the ticket is withdrawn from the queue (it never held a slot) and
    ``trio.Cancelled`` propagates.
    """

    def abort(_: Any) -> trio.lowlevel.Abort:
        core.cancel(task)
        return trio.lowlevel.Abort.SUCCEEDED

    await trio.lowlevel.wait_task_rescheduled(abort)


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
            raise TypeError(f"`name` must be a string (got {shown(name)})")
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
        await wait_for_slot(core, task)

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
            TypeError: ``fn`` is a plain function (waiting for a slot needs trio) or a generator
                function (a slot would be held between its items).
        """
        return decorate(
            fn,
            rule="bulkhead",
            around_async=self._around,
            around_sync=None,
            extra={"bulkhead": self},
            generators=Refused(
                "a slot would be held between its items for as long as the consumer keeps it "
                "open; guard the calls inside it, or an `async def` that collects the items"
            ),
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
