"""The :class:`ActorSystem` (root nursery, registry, spawn/stop/restart) and :func:`run`."""

from __future__ import annotations

import collections
import contextlib
import sys
import types
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, TypeVarTuple

import trio

from . import _control, _lifecycle
from ._actor import Actor
from ._cell import Cell
from ._deadlines import DeadlineKeeper
from ._errors import ActorNotFound, NameTaken
from ._groups import raise_sole_leaf
from ._hook import SupervisorHook
from ._messages import ActorState, Overflow, SystemStatistics
from ._ref import ActorRef

__all__ = ["ActorSystem", "run"]

M = TypeVar("M")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def _check_grace(grace: float | None) -> None:
    if grace is None:
        return
    if isinstance(grace, bool) or not isinstance(grace, int | float):
        raise TypeError(f"`grace` must be a number of seconds or None (got {grace!r})")
    if not grace >= 0:
        raise ValueError(f"`grace` must be >= 0 (got {grace!r})")


class ActorSystem:
    """Owns the root nursery of a set of actors and the registry of their names.

    Use it as ``async with ActorSystem() as system:``. However the block is left (normally,
    with an ``Exception``, with ``KeyboardInterrupt``, or cancelled from outside: a deadline
    or a cancelled scope around the block) every live actor is stopped in reverse start order,
    each as by :meth:`stop` with ``shutdown_grace`` (its messages in hand and its ``on_stop``
    together get that many seconds, then are cancelled; None: as long as they take), then
    whatever is still starting is cancelled. Only then does the exception go on: a
    cancellation of an enclosing scope still reaches that scope (``move_on_after`` sees
    ``cancelled_caught``, ``fail_after`` raises ``TooSlowError``), ``KeyboardInterrupt`` still
    propagates; nothing is swallowed. The only exception to the ordered stop: when an actor
    raised a ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt`` in a
    handler), every actor is cancelled at once (``on_stop`` is not awaited) and that exception
    leaves the block. Either way every pending request is answered with an error: nothing
    hangs. An exception of a single source leaves the block as itself, not wrapped in an
    exception group.

    Cancellation: the actors run shielded from the caller's cancel scopes; the body is not
    shielded. A cancellation of an enclosing scope cancels the body at once (through a small
    watcher task outside the shield), then the ordered stop above runs, bounded by
    ``shutdown_grace`` per actor, and the cancellation goes on. With ``shutdown_grace=None``
    the stop waits for each actor however long it takes, even under a deadline. A second
    ``KeyboardInterrupt`` during that stop cancels every actor at once.
    """

    def __init__(self, *, shutdown_grace: float | None = 5.0) -> None:
        _check_grace(shutdown_grace)
        self._shutdown_grace = shutdown_grace
        self._root: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._body: trio.CancelScope | None = None
        self._names: dict[str, Cell[Any]] = {}
        self._started: dict[Cell[Any], None] = {}
        self._counters: collections.Counter[str] = collections.Counter()
        self._spawned = 0
        self._closed = False
        self._deadlines = DeadlineKeeper()

    def __repr__(self) -> str:
        status = "closed" if self._closed else "open" if self._root else "not entered"
        return f"<ActorSystem {status}, {len(self._started)} actors>"

    async def __aenter__(self) -> ActorSystem:
        # From the outside in: a nursery for the watcher (it sees the caller's cancellations),
        # a shield, the actors' nursery (the shield keeps the caller's cancellations from its
        # tasks), then the body's own scope (not shielded: the watcher cancels it). The exits
        # run in reverse: body scope, ordered shutdown, actors' nursery, shield, watcher.
        if self._stack is not None or self._closed:
            raise RuntimeError("an ActorSystem can be entered only once")
        stack = self._stack = contextlib.AsyncExitStack()
        try:
            outside = await stack.enter_async_context(trio.open_nursery())
            stack.callback(outside.cancel_scope.cancel)  # ends the watcher, last of all
            stack.enter_context(trio.CancelScope(shield=True))
            self._root = await stack.enter_async_context(trio.open_nursery())
            self._deadlines.open(self._root)
            stack.push_async_exit(self._shutdown)
            self._body = stack.enter_context(trio.CancelScope())
            outside.start_soon(self._watch)
        except BaseException:  # pragma: no cover - entering scopes and nurseries does not fail
            self._closed = True
            await stack.__aexit__(*sys.exc_info())
            raise
        return self

    async def _watch(self) -> None:
        # The only task outside the shield: a cancellation of an enclosing scope reaches it
        # (and not the actors); it cancels the body, whose exit stops the actors in order. Its
        # own Cancelled then leaves the system after the shutdown: the enclosing scope gets it.
        try:
            await trio.sleep_forever()
        finally:
            body = self._body
            if body is not None:
                body.cancel()

    async def _shutdown(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool:
        # Runs shielded, after the body's scope closed: the ordered stop, then cancel the rest.
        self._body = None
        nursery = self._root
        if nursery is None:  # pragma: no cover - set by __aenter__ before this is pushed
            return False
        try:
            if not nursery.cancel_scope.cancel_called:  # else an actor raised a BaseException
                for cell in reversed(list(self._started)):
                    await self.stop(cell.ref, grace=self._shutdown_grace)
        finally:
            nursery.cancel_scope.cancel()  # whatever is still starting
        return False

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool:
        self._closed = True
        stack = self._stack
        if stack is None or self._root is None:
            raise RuntimeError("ActorSystem.__aexit__ called without __aenter__")
        # If the watcher cancelled the body, the body's scope swallows that Cancelled, and the
        # watcher's own Cancelled (a cancellation of an enclosing scope never goes away) leaves
        # the watcher's nursery after the shutdown: it is raised here, never swallowed.
        try:
            return bool(await stack.__aexit__(exc_type, exc, tb))
        except BaseExceptionGroup as group:
            # An exception of a single source leaves unwrapped.
            raise_sole_leaf(group)

    @property
    def _nursery(self) -> trio.Nursery:
        if self._root is None or self._closed:
            raise RuntimeError("the ActorSystem is not open (use `async with ActorSystem()`)")
        return self._root

    async def spawn(
        self,
        factory: Callable[..., Actor[M]],
        *args: Any,
        name: str | None = None,
        mailbox_size: int = 1000,
        overflow: Overflow | str = Overflow.WAIT,
        supervisor: SupervisorHook | None = None,
        max_concurrency: int = 1,
        **kwargs: Any,
    ) -> ActorRef[M]:
        """Start an actor made by ``factory(*args, **kwargs)`` and return its ref.

        Returns once the instance's ``on_start`` finished. ``name`` defaults to a generated
        unique name. ``mailbox_size`` (an int >= 1) bounds the mailbox; ``overflow`` is an
        :class:`Overflow` or ``"wait"``/``"reject"``/``"drop_oldest"``. ``supervisor`` is a
        :class:`SupervisorHook` (see the package docstring); None restarts in place after a
        crash. ``max_concurrency`` (an int >= 1) is how many messages one instance may handle
        at the same time: 1 (the default) is the classic actor, one message at a time, run
        inline by the actor's task; N > 1 runs up to N handlers concurrently, each in its own
        task (see the package docstring for the exact semantics).

        Raises:
            TypeError: ``factory`` is not callable or does not return an ``Actor``;
                ``mailbox_size`` or ``max_concurrency`` is not an int; ``name`` is not a str.
            ValueError: ``mailbox_size`` < 1, ``max_concurrency`` < 1, an unknown
                ``overflow``, an empty ``name``.
            NameTaken: a live actor already has ``name``.
            RuntimeError: the system is not open.
            Exception: whatever ``on_start`` (or the factory) raised; nothing stays registered.

        Cancellation: cancelling the caller cancels ``on_start``; nothing stays registered.
        """
        if not callable(factory):
            raise TypeError(f"`factory` must be callable (got {factory!r})")
        if isinstance(mailbox_size, bool) or not isinstance(mailbox_size, int):
            raise TypeError(f"`mailbox_size` must be an int (got {mailbox_size!r})")
        if mailbox_size < 1:
            raise ValueError(f"`mailbox_size` must be >= 1 (got {mailbox_size!r})")
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
            raise TypeError(f"`max_concurrency` must be an int (got {max_concurrency!r})")
        if max_concurrency < 1:
            raise ValueError(f"`max_concurrency` must be >= 1 (got {max_concurrency!r})")
        policy = Overflow.convert(overflow)
        if supervisor is not None and not callable(getattr(supervisor, "child_failed", None)):
            raise TypeError(
                f"`supervisor` must have a child_failed(ref, error) method (got {supervisor!r})"
            )
        nursery = self._nursery
        if name is None:
            name = self._generate_name(factory)
        elif not isinstance(name, str):
            raise TypeError(f"`name` must be a str or None (got {name!r})")
        elif not name:
            raise ValueError(f"`name` must not be empty (got {name!r})")
        if name in self._names:
            raise NameTaken(name)
        cell: Cell[M] = Cell(
            self,
            name,
            factory,
            args,
            kwargs,
            mailbox_size=mailbox_size,
            overflow=policy,
            hook=supervisor,
            max_concurrency=max_concurrency,
        )
        self._names[name] = cell
        # Not nursery.start (a nursery and a scope per spawn, and a task moved between
        # nurseries): the new task answers this one, parked here, once on_start is done.
        # The spawner is known to the cell before its task runs: a cancellation that reaches this
        # task first must find it waiting (abort_start), so that the cell answers it, once.
        cell.expect_spawner(trio.lowlevel.current_task())
        nursery.start_soon(_lifecycle.run, cell, name=name)
        error = await trio.lowlevel.wait_task_rescheduled(cell.abort_start)
        if error is not None:
            raise error
        self._started[cell] = None
        self._spawned += 1
        return cell.ref

    def _generate_name(self, factory: Callable[..., Any]) -> str:
        base = getattr(factory, "__name__", type(factory).__name__).lower()
        while True:
            self._counters[base] += 1
            name = f"{base}-{self._counters[base]}"
            if name not in self._names:
                return name

    def _forget(self, cell: Cell[Any]) -> None:
        # Called by a cell as it stops.
        if self._names.get(cell.name) is cell:
            del self._names[cell.name]
        self._started.pop(cell, None)

    def lookup(self, name: str) -> ActorRef[Any]:
        """The ref of the live actor registered as ``name``.

        Raises:
            ActorNotFound: no live actor has that name (the message names it).
        """
        cell = self._names.get(name)
        if cell is None or cell.state is ActorState.STOPPED:
            raise ActorNotFound(name)
        return cell.ref

    async def stop(self, ref: ActorRef[Any], *, grace: float | None = 5.0) -> None:
        """Stop the actor of ``ref`` and return once it is ``STOPPED``.

        ``grace`` (seconds; None: as long as they take, 0: cancelled at once) is one deadline,
        ``grace`` seconds from this call, for the whole termination of the instance: the
        messages in hand (one, or up to ``max_concurrency``) may finish until then, and then
        ``on_stop(None)`` runs (on a live instance; a suspended actor has none) with whatever
        is left of it. What is still running at the deadline is cancelled: the messages' asks
        get :class:`ActorStopped`; an ``on_stop`` cut off this way (with ``grace=0``, at its
        first checkpoint: it may still do non-blocking cleanup) leaves the stop reason as it
        was and is counted in ``statistics().stop_hooks_cut_off``. Then every queued request
        gets :class:`ActorStopped`, watchers get ``Down(ref, None)`` (or the error ``on_stop``
        raised, as reason), and the name is freed. From the call on, the ref refuses new
        messages. Idempotent: a second call waits for the same stop (and may shorten the
        deadline).

        Raises:
            TypeError, ValueError: ``grace`` is not a number >= 0 or None.

        Cancellation: the stop goes on without the caller.
        """
        _check_grace(grace)
        cell = ref._cell
        _control.request_stop(cell, None, grace)
        await cell.wait_stopped()

    async def restart(self, ref: ActorRef[Any], *, grace: float | None = 5.0) -> None:
        """Give the actor of ``ref`` a fresh instance from its factory, keeping its mailbox.

        On a ``SUSPENDED`` actor: makes the instance and runs ``on_restart(error)`` with the
        crash error (``None`` if it was suspended by :meth:`suspend` and did not crash). On a
        running actor: first stops the running instance as :meth:`stop` does (one deadline,
        ``grace`` from the call, for the messages in hand and ``on_stop(None)`` together: what
        still runs then is cancelled, the asks in hand get :class:`ActorStopped`), then
        ``on_restart(None)``, not bounded by ``grace``. Returns once ``on_restart`` finished;
        queued messages are then served by the new instance. Concurrent calls share one
        restart; a call made while a :meth:`suspend` is pending waits for the suspension to
        finish, then restarts.

        Raises:
            ActorStopped: the actor is stopped or stopping (also if a stop overtakes the
                restart).
            Exception: what the factory, ``on_restart`` or the old instance's ``on_stop``
                raised. The actor is then left ``SUSPENDED`` if it has a supervisor hook (the
                hook is not called again; restart or stop it), else it is ``STOPPED`` with
                that error as reason.

        Cancellation: the restart goes on without the caller.
        """
        _check_grace(grace)
        await _control.restart(ref._cell, grace)

    async def suspend(self, ref: ActorRef[Any], *, grace: float | None = 5.0) -> None:
        """Stop the current instance of ``ref``'s actor but keep its slot, ``SUSPENDED``.

        The instance is stopped as :meth:`stop` stops it: one deadline, ``grace`` seconds from
        the call (None: as long as they take, 0: cancelled at once), for the messages in hand
        and ``on_stop(None)`` together; what still runs then is cancelled and the asks in hand
        get :class:`ActorStopped`. Returns once the actor is ``SUSPENDED``: no instance, the
        mailbox and its queued messages kept but not served, the ref valid; ``tell``/``send``/
        ``ask`` keep queueing and asks keep their deadlines, exactly as for a crashed actor
        waiting for its supervisor. A later :meth:`restart` makes a fresh instance and runs
        ``on_restart(None)`` on it (or ``on_restart(error)`` if the instance crashed during the
        grace). A crash during the grace does not call the supervisor hook: the suspension
        already decides the actor's fate. Suspending a ``SUSPENDED`` actor does nothing; a call
        made while a :meth:`restart` is pending waits for that restart, then suspends;
        concurrent calls share one suspension.

        This is what OTP's ``one_for_all``/``rest_for_one`` need: suspend the other children
        in reverse start order (keeping their mailboxes), then restart them in start order.

        Raises:
            TypeError, ValueError: ``grace`` is not a number >= 0 or None.
            ActorStopped: the actor is stopped or stopping (also if a stop overtakes the
                suspension).
            Exception: what the instance's ``on_stop`` raised; the actor is ``SUSPENDED`` all
                the same (and a later :meth:`restart` passes that error to ``on_restart``).

        Cancellation: the suspension goes on without the caller.
        """
        _check_grace(grace)
        await _control.suspend(ref._cell, grace)

    def statistics(self) -> SystemStatistics:
        """A snapshot of the system."""
        counts = collections.Counter(cell.state for cell in self._started)
        return SystemStatistics(
            live=len(self._started),
            by_state=dict(counts),
            spawned=self._spawned,
            closed=self._closed,
        )


def run(main: Callable[[ActorSystem, *Ts], Awaitable[T]], *args: *Ts) -> T:
    """``trio.run`` of ``main(system, *args)`` inside a fresh :class:`ActorSystem`.

    Returns what ``main`` returns; the system is shut down (see :class:`ActorSystem`) before.
    """

    async def _main() -> T:
        async with ActorSystem() as system:
            result = await main(system, *args)
        return result  # noqa: RET504 - the system's __aexit__ may suppress, so mypy needs it here

    return trio.run(_main)
