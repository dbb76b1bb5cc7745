"""The :class:`ActorRef`: the only handle on an actor."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._messages import ActorState, ActorStatistics

if TYPE_CHECKING:
    from ._cell import Cell

__all__ = ["ActorRef"]

M = TypeVar("M")


class ActorRef(Generic[M]):
    """A handle on one actor (its slot), generic in the message type it accepts.

    There is exactly one ref per actor, so equality and hashing are by identity of the slot;
    the ref stays the same object across restarts. Every messaging call on the ref of a
    stopped (or stopping) actor raises :class:`ActorStopped` at once.
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: Cell[M]) -> None:
        self._cell = cell

    def __repr__(self) -> str:
        cell = self._cell
        text = f"<ActorRef {cell.name!r} {cell.state.value}, {len(cell.mailbox.queue)} queued"
        limit = cell.max_concurrency
        if limit == 1:
            return text + ">"
        return f"{text}, {cell.in_flight}/{limit} in flight>"

    @property
    def name(self) -> str:
        """The actor's registered name."""
        return self._cell.name

    @property
    def max_concurrency(self) -> int:
        """How many messages one instance may handle at the same time (the ``spawn`` option)."""
        return self._cell.max_concurrency

    @property
    def is_alive(self) -> bool:
        """True until the actor is ``STOPPED``."""
        return self._cell.state is not ActorState.STOPPED

    def statistics(self) -> ActorStatistics:
        """A snapshot of the actor: state, queued, in flight, processed, restarts, ..."""
        return self._cell.statistics()

    def tell(self, message: M) -> None:
        """Queue ``message`` without waiting; the reply, if any, is discarded.

        A full mailbox follows the overflow policy: ``DROP_OLDEST`` drops the oldest queued
        message (answering it with :class:`MailboxFull` if it was an ``ask``); ``REJECT`` and
        ``WAIT`` raise :class:`MailboxFull` (``tell`` cannot wait; use :meth:`send`).

        Raises:
            ActorStopped: the actor is stopped or stopping.
            MailboxFull: see above.
        """
        self._cell.tell(message)

    async def send(self, message: M) -> None:
        """Queue ``message``, waiting for room in a full ``WAIT`` mailbox (backpressure).

        Waiting senders get room first come, first served. Under ``REJECT`` a full mailbox
        raises :class:`MailboxFull`; under ``DROP_OLDEST`` it drops the oldest message.

        Raises:
            ActorStopped: the actor is stopped, or stopped while this call waited for room.
            MailboxFull: see above.

        Cancellation: a ``send`` cancelled while it waits for room queues nothing. This is a
        checkpoint.
        """
        await self._cell.send(message)

    def ask(self, message: M, *, timeout: float | None = None) -> Coroutine[Any, Any, Any]:
        """``await ref.ask(message, timeout=...)``: send ``message`` as a request and return the
        handler's return value.

        If ``receive`` raises, that very exception object is raised here (with its actor-side
        traceback and a note naming the actor); the actor then crashes and restarts (or is
        suspended, under a supervisor hook). With ``timeout``, the request carries the deadline
        ``trio.current_time() + timeout``: a request still queued at its deadline is answered
        with :class:`AskTimeout` without running; a running handler is cancelled at the deadline
        (the actor goes on with the next message); and this call never waits past the deadline.
        A full ``WAIT`` mailbox makes this call wait for room (inside the same deadline).

        Raises:
            AskTimeout: the deadline passed first.
            ActorStopped: the actor is stopped, or stopped while the request was queued or
                in hand, or restarted/suspended (``ActorSystem.restart``/``suspend``) while it
                was in hand and the grace ran out.
            MailboxFull: ``REJECT`` policy and a full mailbox, or the request was dropped by
                ``DROP_OLDEST``.
            TypeError, ValueError: ``timeout`` is not a number, or is negative or NaN.

        Cancellation: a cancelled caller abandons its request; if it has not started it is
        taken out of the mailbox and never runs; if it has, it runs on and its reply is
        discarded.
        """
        # A plain function handing back the cell's coroutine: one frame less per ask.
        return self._cell.ask(message, timeout)
