"""An event recorder: every event of a bus, kept in order, with a wait for the ones a test
expects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import trio

from ..observe._bus import EventBus
from ._errors import WaitTimeout, check_timeout

__all__ = ["EventRecorder"]

E = TypeVar("E")


def _where(event: object) -> str:
    where = getattr(event, "path", None)
    if not isinstance(where, str):
        where = getattr(event, "name", "")
    return where if isinstance(where, str) else ""


def _matches_place(event: object, path: str | None) -> bool:
    if path is None:
        return True
    where = _where(event)
    return where == path or ("/" not in path and where.rpartition("/")[2] == path)


class EventRecorder:
    """Records every event published on ``bus`` (default: a new :class:`~supervisor.EventBus`,
    :attr:`bus`), in order, from the moment it is made until :meth:`close`.

    Hand :attr:`bus` to ``run_tree(spec, events=recorder.bus)`` before the tree starts to see its
    whole story, starts included. Recording is a synchronous listener: it costs one list append
    per event and never blocks the publisher.
    """

    def __init__(self, bus: EventBus[Any] | None = None) -> None:
        if bus is not None and not isinstance(bus, EventBus):
            raise TypeError(f"`bus` must be an EventBus (got {bus!r})")
        self.bus: EventBus[Any] = EventBus() if bus is None else bus
        """The bus recorded."""
        self.events: list[Any] = []
        """Every event recorded, oldest first."""
        self._wakeup: trio.Event | None = None
        self._closed = False
        self.bus.add_listener(self._record)

    def _record(self, event: object) -> None:
        self.events.append(event)
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

    def close(self) -> None:
        """Stop recording (idempotent); what was recorded stays."""
        if not self._closed:
            self._closed = True
            self.bus.remove_listener(self._record)

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.events.clear()

    @overload
    def of(
        self,
        kind: type[E],
        *,
        path: str | None = None,
        where: Callable[[E], object] | None = None,
    ) -> list[E]: ...

    @overload
    def of(
        self,
        kind: tuple[type[Any], ...],
        *,
        path: str | None = None,
        where: Callable[[Any], object] | None = None,
    ) -> list[Any]: ...

    def of(
        self,
        kind: type[Any] | tuple[type[Any], ...],
        *,
        path: str | None = None,
        where: Callable[[Any], object] | None = None,
    ) -> list[Any]:
        """The recorded events that are instances of ``kind``, oldest first; only those at
        ``path`` (their ``path``, or ``name`` for breaker changes; a bare name matches the last
        part of a path) and those for which ``where(event)`` is true, where given."""
        return [
            event
            for event in self.events
            if isinstance(event, kind)
            and _matches_place(event, path)
            and (where is None or where(event))
        ]

    async def wait_for(
        self,
        kind: type[Any] | tuple[type[Any], ...],
        count: int = 1,
        *,
        path: str | None = None,
        where: Callable[[Any], object] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a test's wait must end by itself: the timeout is its point
    ) -> list[Any]:
        """Wait until at least ``count`` events as :meth:`of` selects them were recorded (those
        already recorded count), and return them all.

        ``timeout`` is in seconds of trio time (under a ``MockClock`` with autojump a stuck wait
        fails at once in real time).

        Raises:
            WaitTimeout: fewer than ``count`` arrived within ``timeout``; the message says how
                many did, and which kinds of event were recorded.
            ValueError: ``count`` < 1 or ``timeout`` is not > 0.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"`count` must be an integer >= 1 (got {count!r})")
        check_timeout(timeout)
        with trio.move_on_after(timeout):
            while True:
                found = self.of(kind, path=path, where=where)
                if len(found) >= count:
                    return found
                if self._wakeup is None:
                    self._wakeup = trio.Event()
                await self._wakeup.wait()
        found = self.of(kind, path=path, where=where)
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        place = "" if path is None else f" at {path!r}"
        seen = sorted({type(event).__name__ for event in self.events})
        raise WaitTimeout(
            f"waited {timeout:g}s for {count} {names} event(s){place}; {len(found)} arrived "
            f"(recorded so far: {len(self.events)} events of kinds {', '.join(seen) or 'none'})"
        )

    def __repr__(self) -> str:
        return f"<EventRecorder {len(self.events)} events>"
