"""The :class:`Actor` base class and the :class:`ActorContext` an actor sees itself through."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import _watching
from ._messages import ActorState

if TYPE_CHECKING:
    from ._cell import Cell
    from ._ref import ActorRef
    from ._system import ActorSystem

__all__ = ["Actor", "ActorContext"]

M = TypeVar("M")


class ActorContext:
    """An actor's view of its slot: its ref, name and system, and ``watch``/``unwatch``.

    One context belongs to the actor's slot: it is the same object across restarts.
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: Cell[Any]) -> None:
        self._cell = cell

    def __repr__(self) -> str:
        return f"<ActorContext of {self._cell.name!r}>"

    @property
    def self_ref(self) -> ActorRef[Any]:
        """The ref of this actor (the same object ``spawn`` returned)."""
        return self._cell.ref

    @property
    def name(self) -> str:
        """This actor's registered name."""
        return self._cell.name

    @property
    def system(self) -> ActorSystem:
        """The system this actor lives in."""
        return self._cell.system

    @property
    def stopping(self) -> bool:
        """Whether this actor has been asked to stop (it is ``STOPPING``): a handler still
        running may use it to wind down instead of starting new work."""
        return self._cell.state in (ActorState.STOPPING, ActorState.STOPPED)

    def watch(self, ref: ActorRef[Any]) -> None:
        """Ask for a :class:`Down` message when ``ref``'s actor stops.

        The ``Down`` arrives through the system lane (served before user messages) into this
        actor's ``receive``; at once if ``ref`` is already stopped. Watching is idempotent and
        belongs to the slot: it survives a restart of the watcher. Downs that arrive while the
        watcher is suspended wait for its next instance.
        """
        _watching.watch(self._cell, ref._cell)

    def unwatch(self, ref: ActorRef[Any]) -> None:
        """Stop watching ``ref``; a ``Down`` of ``ref`` not yet received is discarded."""
        _watching.unwatch(self._cell, ref._cell)


class Actor(Generic[M]):
    """Base class of actors, generic in the type of the messages they receive.

    Subclass it and override :meth:`receive`. The runtime calls ``receive`` with one message at
    a time (up to ``max_concurrency`` at a time, concurrently, where ``spawn`` was given more
    than 1); its return value answers an ``ask``. State lives on the instance: a restart makes a
    fresh instance from the same factory and arguments, so nothing of a crashed instance leaks.

    ``self.context`` (an :class:`ActorContext`) is available from ``on_start`` on (not inside
    ``__init__``).
    """

    _actor_context: ActorContext | None = None

    @property
    def context(self) -> ActorContext:
        """This actor's context.

        Raises:
            RuntimeError: the instance is not (yet) running in a system, e.g. in ``__init__``.
        """
        context = self._actor_context
        if context is None:
            raise RuntimeError(
                f"{type(self).__name__}.context is set once the runtime has made the instance; "
                "use it from on_start on, not in __init__"
            )
        return context

    async def receive(self, message: M) -> Any:
        """Handle one message; the return value answers an ``ask`` (ignored for ``tell``).

        An ``Exception`` raised here is a crash: an ``ask`` being handled gets that exception,
        the instance is discarded, and the actor is restarted (or suspended, under a supervisor
        hook). ``Down`` messages of watched actors arrive here too. Cancellation: the call is
        cancelled at the ask's deadline (the ask gets :class:`AskTimeout`, not a crash) or
        when a stop, restart or suspension's ``grace`` runs out (the ask gets
        :class:`ActorStopped`).
        """
        raise NotImplementedError(f"{type(self).__name__} must override receive()")

    async def on_start(self) -> None:
        """Called once before the first message; if it raises, ``spawn`` raises that error."""

    async def on_stop(self, reason: BaseException | None) -> None:
        """Called when the actor is stopped (``reason`` None), or before a restart or a
        suspension of a running instance, after its messages in hand are done. Not called for
        a crashed instance. If it raises, that error becomes the stop reason (or is raised by
        ``restart``/``suspend``)."""

    async def on_restart(self, error: Exception | None) -> None:
        """Called on the fresh instance made by a restart, with the crash error (None for a
        restart of a healthy instance). The default calls :meth:`on_start`."""
        await self.on_start()
