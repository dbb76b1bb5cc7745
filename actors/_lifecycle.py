"""The actor's task from start to finish: ``on_start``, the serving scopes, the control
requests carried out, the final stop.

:func:`run` is the body of the actor's task (``ActorSystem.spawn`` starts it with ``start_soon``
and parks until ``on_start`` is done: the spawn handshake, whose other half is
``Cell.expect_spawner`` and ``Cell.abort_start``). Until the first message or control request it
parks in :func:`run` itself with no cancel scope, so an idle actor is this frame and its task.
Then :func:`_serve_until_stop` alternates: serve under a serving scope (``Cell._serve`` inline,
or ``_pool.serve_many`` with ``max_concurrency > 1``) until a control request is pending or the
scope carries a passed deadline; carry out a pending restart or suspension (``on_stop`` within
the grace, then a fresh instance and ``on_restart``); until a stop, which ends with ``on_stop``
and :func:`_finish` (every pending request answered, the watchers told, the name freed).

What a control request or a crash decides is in ``_control.py``. These functions take the cell:
its state stays on the cell.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeVar

import outcome
import trio

from ._actor import Actor
from ._control import Control, release_control_waiters, request_stop
from ._envelope import Request
from ._errors import ActorStopped, AskTimeout
from ._messages import ActorState
from ._pool import serve_many
from ._watching import end_watches

if TYPE_CHECKING:
    from ._cell import Cell

__all__ = ["run"]

M = TypeVar("M")

_INF = math.inf


async def run(cell: Cell[Any]) -> None:
    """The actor's task: start, serve until stopped, finish. The spawner (see
    ``Cell.expect_spawner``) is answered with None once ``on_start`` finished, with the
    exception that made the start fail, or with its own cancellation (exactly once)."""
    cell._task = trio.lowlevel.current_task()
    reason: BaseException | None = None
    try:
        if cell._start_cancel is None:
            try:
                instance = _make_instance(cell)
                with trio.CancelScope() as scope:  # abort_start cancels it
                    cell._scope = scope
                    await instance.on_start()
                cell._scope = None
            except Exception as exc:
                reason = exc
                _started(cell, outcome.Value(exc))
                return
            except BaseException as exc:
                if isinstance(exc, trio.Cancelled):
                    raise  # the system's own cancellation: the spawner is cancelled too
                # KeyboardInterrupt and the like go to the spawner, as from nursery.start.
                reason = exc
                _started(cell, outcome.Error(exc))
                return
        cancelled = cell._start_cancel
        if cancelled is not None:
            reason = ActorStopped(cell.name, None)
            _started(cell, outcome.capture(cancelled))
            return
        cell._instance = instance
        if cell._control is None:
            cell.state = ActorState.RUNNING
        _started(cell, outcome.Value(None))
        # Idle until there is something to do, with no cancel scope: an actor that never
        # gets a message costs only this frame and its task.
        mailbox = cell.mailbox
        while cell._control is None and not mailbox.queue and not cell._system_lane:
            cell._parked = True
            await trio.lowlevel.wait_task_rescheduled(cell._abort_park)
        reason = await _serve_until_stop(cell)
    except BaseException as exc:
        reason = exc
        raise
    finally:
        _finish(cell, reason)


def _started(cell: Cell[Any], result: outcome.Outcome[Exception | None]) -> None:
    # Answer the task waiting in spawn (once).
    task = cell._spawner
    if task is not None:
        cell._spawner = None
        trio.lowlevel.reschedule(task, result)


async def _serve_until_stop(cell: Cell[Any]) -> BaseException | None:
    # Serve in a fresh serving scope, or carry out a pending restart or suspension, until a
    # stop is pending; then stop the instance. Returns the stop's reason, or what on_stop raised.
    while True:
        control = cell._control
        if control is Control.RESTART or control is Control.SUSPEND:
            await _stop_then(cell, control)
        elif control is None:
            cell._deadline_set = _INF
            with trio.CancelScope(deadline=cell._grace_deadline) as scope:
                cell._scope = scope
                if cell._pool is None:
                    await cell._serve()
                else:
                    await serve_many(cell, cell._pool)
            cell._scope = None
            cell._deadline_set = _INF
            if cell._busy:  # cancelled with a message in hand
                cell._busy = False
                request, cell._current = cell._current, None
                if request is not None:
                    deadline = request.deadline
                    if deadline <= cell._grace_deadline and deadline <= trio.current_time():
                        # Its own deadline (carried by the serving scope): not a crash.
                        cell.processed += 1
                        timeout: float = request.timeout  # type: ignore[assignment]
                        request.answer(outcome.Error(AskTimeout(cell.name, timeout)))
                    else:  # the grace of a stop, restart or suspension ran out
                        request.answer(outcome.Error(cell.stopped_error()))
        if cell._control is Control.STOP:
            break
    reason = cell._stop_reason
    error = await _stop_instance(cell, reason)
    return reason if error is None else error


def _make_instance(cell: Cell[M]) -> Actor[M]:
    """A fresh instance from the cell's factory, bound to the cell's context.

    Raises:
        TypeError: the factory returned something that is not an :class:`Actor`.
        Exception: what the factory raised.
    """
    instance = cell._factory(*cell._factory_args, **cell._factory_kwargs)
    if not isinstance(instance, Actor):
        raise TypeError(f"`factory` must return an Actor instance (got {type(instance).__name__})")
    instance._actor_context = cell.context
    return instance


async def _stop_instance(cell: Cell[Any], reason: BaseException | None) -> Exception | None:
    """Run ``on_stop(reason)`` of the current instance, if any, under the grace deadline of
    the pending control request (one deadline for the messages in hand and ``on_stop``
    together; a later stop may shorten it through ``cell._scope``), and drop the instance.

    Returns what ``on_stop`` raised (an ``Exception``), else None. A hook still running at the
    deadline is cancelled, and counted in ``stop_hooks_cut_off``."""
    instance, cell._instance = cell._instance, None
    if instance is None:
        return None
    deadline = cell._grace_deadline
    error: Exception | None = None
    with trio.CancelScope(deadline=deadline) as scope:
        cell._scope = scope
        if deadline != _INF and deadline <= trio.current_time():
            scope.cancel()  # grace 0, or spent by the messages in hand: cancelled at once
        try:
            await instance.on_stop(reason)
        except Exception as exc:
            error = exc
    cell._scope = None
    if scope.cancelled_caught:
        cell.stop_hooks_cut_off += 1
    return error


async def _stop_then(cell: Cell[Any], control: Control) -> None:
    """Carry out a pending restart or suspension: stop the running instance (if any) within
    the grace, then (restart) make the next instance without it: only a stop that overtakes it
    sets a new one. Its callers are answered through :func:`release_control_waiters`."""
    if control is Control.RESTART:
        cell.state = ActorState.STARTING
    error = await _stop_instance(cell, None)
    if cell._control is Control.STOP:
        return  # a stop overtook it: _finish answers the waiters with ActorStopped
    cell._grace_deadline = _INF
    if control is Control.SUSPEND:
        if error is not None:
            cell._last_error = error
        cell._control = None
        cell.state = ActorState.SUSPENDED
        release_control_waiters(cell, error)
        return
    with trio.CancelScope() as scope:
        cell._scope = scope
        await _replace_instance(cell, error)
    cell._scope = None


async def _replace_instance(cell: Cell[Any], error: Exception | None) -> None:
    # Restart, the old instance stopped (``error``: what its on_stop raised): make a fresh
    # instance and run on_restart on it.
    if error is None:
        try:
            fresh = _make_instance(cell)
            await fresh.on_restart(cell._last_error)
        except Exception as exc:
            error = exc
    if error is not None:
        cell._last_error = error
        if cell._control is Control.STOP:
            pass
        elif cell._hook is not None:
            cell._control = None
            cell.state = ActorState.SUSPENDED
        else:
            cell._control = None
            request_stop(cell, error, None)
        release_control_waiters(cell, error)
        return
    cell._instance = fresh
    cell._last_error = None
    cell.restarts += 1
    if cell._control is Control.RESTART:
        cell._control = None
        cell.state = ActorState.RUNNING
    release_control_waiters(cell, None)


def _finish(cell: Cell[Any], reason: BaseException | None) -> None:
    # Final: answer everything still pending, tell the watchers, leave the registry, then a
    # spawner still waiting. (That last answer is here rather than in run's finally: a call
    # made there deepens the value stack of run's frame, which every idle actor parks in.)
    cell.state = ActorState.STOPPED
    cell._closed = True
    cell._stop_reason = reason
    cell._instance = None
    cell._scope = None
    if cell._busy:
        cell._busy = False
        request, cell._current = cell._current, None
        if request is not None:
            request.answer(outcome.Error(cell.stopped_error()))
    items, waiters = cell.mailbox.drain()
    for item in items:
        if type(item) is Request:
            item.answer(outcome.Error(cell.stopped_error()))
    for waiter in waiters:
        waiter.answer(outcome.Error(cell.stopped_error()))
    release_control_waiters(cell, cell.stopped_error())
    cell._system_lane = None
    cell.system._forget(cell)
    end_watches(cell, reason)
    if cell._stopped is not None:
        cell._stopped.set()
    cancelled = cell._start_cancel
    if cell._spawner is not None and cancelled is not None:
        # Its cancellation was asked for (abort_start) and the start ended otherwise: it
        # still gets exactly one answer.
        _started(cell, outcome.capture(cancelled))
