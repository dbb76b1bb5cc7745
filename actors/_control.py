"""Control requests (stop, restart, suspend) and crashes: what the actor's task does next.

Control requests are not queued: they are a field of the cell (``cell._control``, a
:class:`Control`) that the run loops read before every message, so they overtake every user
message and every ``Down``. A control request to a busy actor sets the deadline of the serving
scope (``cell._scope``, the cancel scope around the handlers) to ``now + grace``: the messages in
hand may finish until then, and are cancelled after. That same deadline
(``cell._grace_deadline``) then bounds ``on_stop`` (one deadline for the whole termination of
the instance, as OTP's ``shutdown``); the ``on_restart`` of a restart runs without it (only a
stop that overtakes it bounds it). The actor's task carries the request out (``_lifecycle.py``).

Restart and suspend return when the operation is done: each caller parks on a
:class:`ControlWaiter`, answered once by :func:`release_control_waiters` (with ``ActorStopped``
when a stop overtakes the operation). Concurrent calls of the same kind share one operation.

A crash (an ``Exception`` out of ``receive``) discards the instance at once (its ``on_stop`` is
not called); then the actor restarts in place, or, with a supervisor hook, is ``SUSPENDED`` and
the hook is told (:func:`after_crash`). A crash while a control request is pending only
discards the instance: the request decides.

These functions take the cell (its state stays on the cell, where the run loops read it) and
run on the cold paths only.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import trio

from ._messages import ActorState

if TYPE_CHECKING:
    from ._cell import Cell

__all__ = [
    "Control",
    "ControlWaiter",
    "after_crash",
    "crash",
    "release_control_waiters",
    "request_stop",
    "restart",
    "suspend",
]


class Control(enum.Enum):
    """A pending control request: what the run loop does before its next message."""

    STOP = "stop"
    RESTART = "restart"
    SUSPEND = "suspend"


class ControlWaiter:
    """A caller of restart/suspend waiting for the pending operation to finish."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: BaseException | None = None


def request_stop(cell: Cell[Any], reason: BaseException | None, grace: float | None) -> None:
    """Ask the loop to stop (idempotent; a later call may only shorten the grace)."""
    if cell.state is ActorState.STOPPED:
        return
    if cell._control is not Control.STOP:
        cell._control = Control.STOP
        cell._stop_reason = reason
    cell._closed = True
    cell.state = ActorState.STOPPING
    _apply_grace(cell, grace)
    cell._wake()


async def restart(cell: Cell[Any], grace: float | None) -> None:
    """Restart with a fresh instance; see ``ActorSystem.restart``."""
    await _request_control(cell, Control.RESTART, grace)


async def suspend(cell: Cell[Any], grace: float | None) -> None:
    """Stop the instance but keep the slot; see ``ActorSystem.suspend``."""
    await _request_control(cell, Control.SUSPEND, grace)


async def _request_control(cell: Cell[Any], kind: Control, grace: float | None) -> None:
    # Restart and suspend: concurrent calls of the same kind share one operation; a call
    # that finds the other kind pending waits for it to finish, then makes its own.
    while True:
        if cell._closed:
            raise cell.stopped_error()
        control = cell._control
        if control is None:
            if kind is Control.SUSPEND and cell.state is ActorState.SUSPENDED:
                return  # already suspended: nothing to do
            cell._control = kind
            if _in_hand(cell):
                _apply_grace(cell, grace)
            cell._wake()
            break
        if control is kind:
            break
        await _wait_control(cell)  # its outcome belongs to its own caller
    error = await _wait_control(cell)
    if error is not None:
        raise error


def _in_hand(cell: Cell[Any]) -> bool:
    # Whether messages may be in hand: a live instance, or handlers of a crashed one.
    if cell._instance is not None:
        return True
    pool = cell._pool
    return pool is not None and pool.in_flight > 0


def _apply_grace(cell: Cell[Any], grace: float | None) -> None:
    if grace is None:
        return
    deadline = trio.current_time() + grace
    cell._grace_deadline = min(cell._grace_deadline, deadline)
    scope = cell._scope
    if scope is not None:
        if grace <= 0:
            scope.cancel()
        else:
            scope.deadline = min(scope.deadline, deadline)


async def _wait_control(cell: Cell[Any]) -> BaseException | None:
    waiter = ControlWaiter()
    if cell._control_waiters is None:
        cell._control_waiters = []
    cell._control_waiters.append(waiter)
    await waiter.done.wait()
    return waiter.error


def release_control_waiters(cell: Cell[Any], error: BaseException | None) -> None:
    """The pending restart or suspension is over: answer every caller waiting for it with
    ``error`` (how it failed, ``ActorStopped`` if a stop ended it, or None)."""
    waiters = cell._control_waiters
    if waiters:
        cell._control_waiters = None
        for waiter in waiters:
            waiter.error = error
            waiter.done.set()


def crash(cell: Cell[Any], error: Exception) -> None:
    """The single-handler loop's instance raised ``error``: discard it, count, and go on as
    :func:`after_crash` says."""
    cell._instance = None
    cell.failures += 1
    cell._last_error = error
    after_crash(cell, error)


def after_crash(cell: Cell[Any], error: Exception) -> None:
    """The instance is gone (discarded and counted): restart in place, or suspend and tell
    the hook; nothing if a control request is already pending (it decides)."""
    if cell._control is not None:
        return  # a stop, restart or suspension is already on its way
    hook = cell._hook
    if hook is None:
        cell._control = Control.RESTART
        return
    cell.state = ActorState.SUSPENDED
    try:
        hook.child_failed(cell.ref, error)
    except Exception as exc:
        request_stop(cell, exc, None)
