"""Serving an actor with ``max_concurrency > 1``: its :class:`Pool` and its dispatcher.

With ``max_concurrency == 1`` (the default) the actor's task runs every handler itself, inline
(``Cell._serve`` in ``_cell.py``); none of this exists for it, so it costs nothing there. With
``max_concurrency > 1`` the actor's task becomes a dispatcher (:func:`serve_many`): it opens a
nursery inside the same serving scope and starts one task per message, at most ``limit`` at a
time, serving the system lane before the mailbox. Each handler task keeps the instance it
started on and runs a timed request under its own cancel scope with the request's deadline.

A crash of one handler discards the instance at once (no new message starts on it) but lets the
other handlers of that instance finish; then the dispatcher hands the first error to the usual
crash handling (``_control.after_crash``: restart in place, or suspend and tell the hook).

These functions take the cell: its state stays on the cell, as for the single-handler loop.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeVar

import outcome
import trio

from ._control import after_crash
from ._envelope import Phase, Request
from ._errors import AskTimeout
from ._groups import raise_sole_leaf
from ._mailbox import SERVE_BATCH

if TYPE_CHECKING:
    from ._actor import Actor
    from ._cell import Cell

__all__ = ["Pool", "serve_many"]

M = TypeVar("M")

_INF = math.inf


class Pool:
    """The state of an actor that may handle up to ``limit`` (> 1) messages at once.

    ``in_flight`` counts the handler tasks started and not yet finished (whatever instance they
    run on); ``crashed`` holds the error of a crash of the current instance while the other
    handlers of that discarded instance finish, until the dispatcher hands it to the usual crash
    handling (hook or restart).
    """

    __slots__ = ("crashed", "in_flight", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.crashed: Exception | None = None


async def serve_many(cell: Cell[Any], pool: Pool) -> None:
    """Dispatch the system lane, then the mailbox, each message to its own task in a nursery,
    at most ``pool.limit`` at a time, until a control request is pending; then wait for the
    handlers in flight (the serving scope's grace bounds them).

    Raises what a handler raised that is not an ``Exception`` (``KeyboardInterrupt``, ...) as
    itself, not in a group."""
    try:
        async with trio.open_nursery() as nursery:
            await _dispatch(cell, pool, nursery)
    except BaseExceptionGroup as group:
        # A BaseException (KeyboardInterrupt, ...) out of one handler leaves as itself.
        raise_sole_leaf(group)
    finally:
        pool.crashed = None  # a crash during a control request's grace is superseded by it


async def _dispatch(cell: Cell[Any], pool: Pool, nursery: trio.Nursery) -> None:
    mailbox = cell.mailbox
    queue = mailbox.ensure_queue()
    limit = pool.limit
    batch = SERVE_BATCH
    while cell._control is None:
        instance = cell._instance
        if instance is None:
            crashed = pool.crashed
            if crashed is not None and not pool.in_flight:
                # The other handlers of the crashed instance are done: handle the crash.
                pool.crashed = None
                after_crash(cell, crashed)
                continue
            cell._parked = True  # suspended, or handlers of a crashed instance finishing
            await trio.lowlevel.wait_task_rescheduled(cell._abort_park)
            continue
        if pool.in_flight >= limit:
            cell._parked = True  # woken by a handler as it finishes
            await trio.lowlevel.wait_task_rescheduled(cell._abort_park)
            continue
        lane = cell._system_lane
        if lane:
            item: Any = lane.popleft()
        elif queue:
            item = mailbox.take()
            if mailbox.waiting:
                cell._admit()
            if type(item) is Request:
                item.phase = Phase.STARTED
                deadline = item.deadline
                if deadline != _INF and trio.current_time() >= deadline:
                    # Load shedding: it expired while queued; no handler sees it.
                    item.answer(outcome.Error(AskTimeout(cell.name, item.timeout)))  # type: ignore[arg-type]
                    continue
        else:
            batch = SERVE_BATCH
            cell._parked = True
            await trio.lowlevel.wait_task_rescheduled(cell._abort_park)
            continue
        pool.in_flight += 1
        nursery.start_soon(_handle_one, cell, pool, instance, item)
        batch -= 1
        if not batch:
            batch = SERVE_BATCH
            await trio.lowlevel.checkpoint()


async def _handle_one(cell: Cell[M], pool: Pool, instance: Actor[M], item: Any) -> None:
    # One handler task of a max_concurrency > 1 actor; it keeps its own instance.
    request: Request | None = item if type(item) is Request else None
    try:
        if request is None:
            deadline = _INF
            message = item
        elif request.task is None:
            return  # abandoned between the dispatch and the start of this task: skipped
        else:
            deadline = request.deadline
            message = request.message
        try:
            if deadline == _INF:
                result = await instance.receive(message)
            else:
                with trio.CancelScope(deadline=deadline) as scope:
                    result = await instance.receive(message)
                if scope.cancelled_caught and request is not None:  # not a crash
                    cell.processed += 1
                    timeout: float = request.timeout  # type: ignore[assignment]
                    request.answer(outcome.Error(AskTimeout(cell.name, timeout)))
                    return
        except Exception as exc:
            cell.processed += 1
            if request is not None and request.task is not None:
                exc.add_note(f"raised by actor {cell.name!r} while handling an ask")
                request.answer(outcome.Error(exc))
            if cell._instance is instance:
                # The first crash of this instance: no new message starts on it; the
                # dispatcher handles the crash once the other handlers are done. A later
                # error of the same (discarded) instance only answers its own ask.
                cell._instance = None
                cell.failures += 1
                cell._last_error = exc
                pool.crashed = exc
            return
        cell.processed += 1
        if request is not None:
            request.answer(outcome.Value(result))
    finally:
        pool.in_flight -= 1
        if request is not None and request.task is not None:
            # Cancelled in hand (a stop, restart or suspension whose grace ran out).
            request.answer(outcome.Error(cell.stopped_error()))
        cell._wake()
