"""The envelope of one request (an ``ask``, or a ``send`` waiting for room).

The caller parks with ``trio.lowlevel.wait_task_rescheduled``; whoever decides the outcome calls
:meth:`Request.answer`, which reschedules the caller exactly once. A caller that is cancelled
abandons the request through :meth:`Request.abort`: a request not yet started is taken out of
the mailbox (never run); a started one runs on and its answer is discarded.

A request with a deadline is answered at its deadline by the system's deadline keeper
(:meth:`Request.expire`), not by a cancel scope of the caller: the caller parks the same way
with or without a deadline, and a trio deadline is only registered by the keeper (one for all
pending requests) and by the handler's scope.
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING, Any, Final

import outcome
import trio

from ._errors import AskTimeout

if TYPE_CHECKING:
    from ._cell import Cell

__all__ = ["Phase", "Request", "SendWaiter"]


class Phase(enum.Enum):
    """Where a request is."""

    WAITING_ROOM = "waiting_room"
    """Its caller waits for room in a full ``WAIT`` mailbox."""
    QUEUED = "queued"
    """In the mailbox."""
    STARTED = "started"
    """In hand (the handler runs), or answered."""


# Set on every request: module globals, since reading a member off its enum class is an
# unspecialised attribute lookup in CPython 3.11 (about 85 ns, against 10 for a global).
QUEUED: Final = Phase.QUEUED
STARTED: Final = Phase.STARTED


class Request:
    """One request: its message, the parked caller task (None once answered or abandoned),
    its deadline (``inf`` if none), and the cell that owns it."""

    __slots__ = ("cell", "deadline", "message", "phase", "task", "timeout")

    def __init__(
        self,
        cell: Cell[Any],
        message: Any,
        task: trio.lowlevel.Task,
        timeout: float | None,
        deadline: float,
    ) -> None:
        self.cell = cell
        self.message = message
        self.task: trio.lowlevel.Task | None = task
        self.timeout = timeout
        self.deadline = deadline
        self.phase = QUEUED

    def __repr__(self) -> str:
        deadline = "" if math.isinf(self.deadline) else f" deadline={self.deadline}"
        waiting = "abandoned or answered" if self.task is None else "waiting"
        return f"<Request {self.phase.value} {waiting}{deadline} {self.message!r}>"

    @property
    def pending(self) -> bool:
        """True while a caller still waits for this request's outcome."""
        return self.task is not None

    def answer(self, result: outcome.Outcome[Any]) -> None:
        """Give the caller its outcome; a no-op if it was already answered or abandoned."""
        task = self.task
        if task is not None:
            self.task = None
            trio.lowlevel.reschedule(task, result)

    def abort(self, _raise_cancel: Any) -> trio.lowlevel.Abort:
        """``abort_fn`` of the caller's park: abandon the request (see the module docstring)."""
        self.task = None
        phase = self.phase
        if phase is not Phase.STARTED:
            self.cell.withdraw(self, waiting=phase is Phase.WAITING_ROOM)
        return trio.lowlevel.Abort.SUCCEEDED

    def expire(self) -> None:
        """Its deadline has come: answer the caller with :class:`AskTimeout`, taking the request
        out of the mailbox if it has not started (a started one runs on under its handler's
        scope, which has the same deadline). A no-op if it was already answered or abandoned."""
        task = self.task
        if task is None:
            return
        self.task = None
        phase = self.phase
        cell = self.cell
        if phase is not Phase.STARTED:
            cell.withdraw(self, waiting=phase is Phase.WAITING_ROOM)
        timeout: float = self.timeout  # type: ignore[assignment]
        trio.lowlevel.reschedule(task, outcome.Error(AskTimeout(cell.name, timeout)))


class SendWaiter(Request):
    """A ``send`` waiting for room in a full ``WAIT`` mailbox: once its message is admitted
    into the queue, it is answered with ``None``. It never enters the queue itself."""

    __slots__ = ()
