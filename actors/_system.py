"""The :class:`ActorSystem` (root nursery, registry, spawn/stop/restart) and :func:`run`."""

from __future__ import annotations

import collections
import types
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, TypeVarTuple

import trio

from ._actor import Actor
from ._cell import Cell
from ._errors import ActorNotFound, NameTaken
from ._groups import leaves
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

    Use it as ``async with ActorSystem() as system:``. Leaving the block normally (or with an
    ``Exception``) stops every live actor in reverse start order, each with
    ``shutdown_grace`` (see :meth:`stop`), then cancels whatever is still starting; leaving it
    with a ``BaseException`` that is not an ``Exception`` (``Cancelled``, ``KeyboardInterrupt``)
    cancels every actor at once (``on_stop`` is not awaited then). Either way every pending
    request is answered with an error: nothing hangs. An exception of a single source leaves
    the block as itself, not wrapped in an exception group (``KeyboardInterrupt`` raised in a
    handler leaves as ``KeyboardInterrupt``).
    """

    def __init__(self, *, shutdown_grace: float | None = 5.0) -> None:
        _check_grace(shutdown_grace)
        self._shutdown_grace = shutdown_grace
        self._root: trio.Nursery | None = None
        self._manager: Any = None
        self._names: dict[str, Cell[Any]] = {}
        self._started: dict[Cell[Any], None] = {}
        self._counters: collections.Counter[str] = collections.Counter()
        self._spawned = 0
        self._closed = False

    def __repr__(self) -> str:
        status = "closed" if self._closed else "open" if self._root else "not entered"
        return f"<ActorSystem {status}, {len(self._started)} actors>"

    async def __aenter__(self) -> ActorSystem:
        if self._manager is not None or self._closed:
            raise RuntimeError("an ActorSystem can be entered only once")
        self._manager = trio.open_nursery()
        self._root = await self._manager.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool:
        self._closed = True
        nursery = self._root
        if nursery is None:
            raise RuntimeError("ActorSystem.__aexit__ called without __aenter__")
        try:
            if exc is None or isinstance(exc, Exception):
                for cell in reversed(list(self._started)):
                    await self.stop(cell.ref, grace=self._shutdown_grace)
        finally:
            nursery.cancel_scope.cancel()  # whatever is still starting
            suppressed = await self._exit_root(exc_type, exc, tb)
        return suppressed

    async def _exit_root(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool:
        # Leave the root nursery; an exception of a single source leaves unwrapped.
        try:
            return bool(await self._manager.__aexit__(exc_type, exc, tb))
        except BaseExceptionGroup as group:
            found = leaves(group)
            if len(found) != 1:
                raise
            leaf = found[0]
            raise leaf from (leaf.__cause__ if leaf.__cause__ is not None else group)

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
        error = await nursery.start(cell.run)
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

        The messages in hand (one, or up to ``max_concurrency``) may finish for up to ``grace``
        seconds (None: as long as they take, 0: cancelled at once), then they are cancelled;
        their asks get :class:`ActorStopped`.
        Then ``on_stop(None)`` runs (on a live instance; a suspended actor has none), every
        queued request gets :class:`ActorStopped`, watchers get ``Down(ref, None)`` (or the
        error ``on_stop`` raised, as reason), and the name is freed. From the call on, the ref
        refuses new messages. Idempotent: a second call waits for the same stop (and may
        shorten the grace).

        Raises:
            TypeError, ValueError: ``grace`` is not a number >= 0 or None.

        Cancellation: the stop goes on without the caller.
        """
        _check_grace(grace)
        cell = ref._cell
        cell.request_stop(None, grace)
        await cell.wait_stopped()

    async def restart(self, ref: ActorRef[Any], *, grace: float | None = 5.0) -> None:
        """Give the actor of ``ref`` a fresh instance from its factory, keeping its mailbox.

        On a ``SUSPENDED`` actor: makes the instance and runs ``on_restart(error)`` with the
        crash error (``None`` if it was suspended by :meth:`suspend` and did not crash). On a
        running actor: first stops the running instance as :meth:`stop` does (``grace`` for the
        messages in hand, whose asks get :class:`ActorStopped` if it runs out;
        ``on_stop(None)``, not bounded by ``grace``), then ``on_restart(None)``. Returns once
        ``on_restart`` finished; queued messages are then served by the new instance.
        Concurrent calls share one restart; a call made while a :meth:`suspend` is pending
        waits for the suspension to finish, then restarts.

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
        await ref._cell.restart(grace)

    async def suspend(self, ref: ActorRef[Any], *, grace: float | None = 5.0) -> None:
        """Stop the current instance of ``ref``'s actor but keep its slot, ``SUSPENDED``.

        The instance is stopped as :meth:`restart` stops it: the messages in hand may finish
        for ``grace`` seconds (None: as long as they take, 0: cancelled at once), then are
        cancelled and their asks get :class:`ActorStopped`; then ``on_stop(None)`` runs (not
        bounded by ``grace``). Returns once the actor is ``SUSPENDED``: no instance, the
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
        await ref._cell.suspend(grace)

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
