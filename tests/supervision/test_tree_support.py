"""Actors, specs and recorders shared by the supervision tree tests (no tests of its own).

Every worker logs its lifecycle into one :class:`Log` with the trio time of each entry, so a test
can assert the exact order (and times) of starts, stops and restarts across the whole tree.
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import trio

import actors
from supervisor.observe._bus import EventBus
from supervisor.observe._events import (
    ChildCrashed,
    ChildRestarted,
    ChildStarted,
    ChildStopped,
    IntensityExceeded,
    TreeEvent,
)
from supervisor.tree._specs import ChildSpec, Restart, RestartBackoff, Strategy, SupervisorSpec

__all__ = [
    "Boom",
    "Log",
    "Recorder",
    "Worker",
    "child",
    "sup",
]

_serials = itertools.count(1)


class Boom(Exception):
    """The crash every test worker raises on command."""


@attrs.define
class Log:
    """Lifecycle entries ``(time, what, name)`` of every worker, in the order they happened."""

    entries: list[tuple[float, str, str]] = attrs.field(factory=list)
    starts: dict[str, int] = attrs.field(factory=dict)
    """How many times each name's start (or restart) hook ran."""

    def add(self, what: str, name: str) -> None:
        """Record ``what`` happened to ``name`` now."""
        self.entries.append((trio.current_time(), what, name))

    def steps(self, *kinds: str) -> list[tuple[str, str]]:
        """``(what, name)`` of the entries (only those whose ``what`` is in ``kinds``, if given)."""
        return [(what, name) for _, what, name in self.entries if not kinds or what in kinds]

    def timed(self, *kinds: str) -> list[tuple[float, str, str]]:
        """The entries with their times (only those whose ``what`` is in ``kinds``, if given)."""
        return [entry for entry in self.entries if not kinds or entry[1] in kinds]

    def clear(self) -> None:
        """Forget every entry."""
        self.entries.clear()


class Worker(actors.Actor[Any]):
    """A test child that logs its lifecycle and obeys commands.

    Lifecycle entries: ``starting``/``started`` (around ``start_delay``), ``restarting``/
    ``restarted`` (a restart in its slot), ``stopping``/``stopped`` (around ``stop_delay``).
    ``fail_start`` makes ``on_start`` raise :class:`Boom` (after the delay), or, as an int ``n``,
    makes only the ``n``-th start of this name fail.

    Messages: ``"crash"`` raises :class:`Boom`; ``("sleep", s)`` sleeps (logging ``handling``/
    ``handled``); ``("serve", tag)`` logs ``served:tag`` and returns this instance's serial;
    ``"serial"`` returns the serial (every instance has a fresh one).
    """

    def __init__(
        self,
        log: Log,
        name: str,
        *,
        start_delay: float = 0.0,
        stop_delay: float = 0.0,
        fail_start: bool | int = False,
    ) -> None:
        self.log = log
        self.name = name
        self.start_delay = start_delay
        self.stop_delay = stop_delay
        self.fail_start = fail_start
        self.serial = next(_serials)

    async def _boot(self, before: str, after: str) -> None:
        self.log.add(before, self.name)
        if self.start_delay:
            await trio.sleep(self.start_delay)
        count = self.log.starts[self.name] = self.log.starts.get(self.name, 0) + 1
        fail = self.fail_start
        if fail is True or (not isinstance(fail, bool) and fail == count):
            self.log.add("failed", self.name)
            raise Boom(f"{self.name} failed to start")
        self.log.add(after, self.name)

    async def on_start(self) -> None:
        await self._boot("starting", "started")

    async def on_restart(self, error: Exception | None) -> None:
        await self._boot("restarting", "restarted")

    async def on_stop(self, reason: BaseException | None) -> None:
        self.log.add("stopping", self.name)
        if self.stop_delay:
            await trio.sleep(self.stop_delay)
        self.log.add("stopped", self.name)

    async def receive(self, message: Any) -> Any:
        if message == "crash":
            self.log.add("crash", self.name)
            raise Boom(f"{self.name} crashed")
        if message == "serial":
            return self.serial
        kind, arg = message
        if kind == "sleep":
            self.log.add("handling", self.name)
            await trio.sleep(arg)
            self.log.add("handled", self.name)
            return arg
        if kind == "serve":
            self.log.add(f"served:{arg}", self.name)
            return self.serial
        raise TypeError(f"unknown message {message!r}")


def child(
    log: Log,
    name: str,
    *,
    restart: Restart | str = Restart.PERMANENT,
    shutdown: float | str = 5.0,
    **options: Any,
) -> ChildSpec:
    """A :class:`ChildSpec` of a :class:`Worker` named ``name`` logging into ``log``."""
    return ChildSpec(
        name=name,
        factory=Worker,
        args=(log, name),
        kwargs=options,
        restart=restart,
        shutdown=shutdown,
    )


def sup(
    name: str,
    *children: Any,
    strategy: Strategy | str = Strategy.ONE_FOR_ONE,
    max_restarts: int = 3,
    within: float = 5.0,
    backoff: RestartBackoff | None = None,
    **options: Any,
) -> SupervisorSpec:
    """A :class:`SupervisorSpec` with no restart backoff unless one is given."""
    return SupervisorSpec(
        name=name,
        children=children,
        strategy=strategy,
        max_restarts=max_restarts,
        within=within,
        backoff=backoff if backoff is not None else RestartBackoff(initial_delay=0.0, jitter=False),
        **options,
    )


@attrs.define
class Recorder:
    """A bus with a listener added before the tree starts, so start events are captured too."""

    bus: EventBus[Any] = attrs.field(factory=EventBus)
    events: list[Any] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.bus.add_listener(self.events.append)

    def of(self, *kinds: type[TreeEvent]) -> list[Any]:
        """The tree events of the given types (all tree events if none given), in order."""
        wanted = kinds or (TreeEvent,)
        return [event for event in self.events if isinstance(event, wanted)]

    def trail(self, *kinds: type[TreeEvent]) -> list[tuple[str, str]]:
        """``(kind, path)`` of the supervision events, in order."""
        names = {
            ChildStarted: "started",
            ChildStopped: "stopped",
            ChildCrashed: "crashed",
            ChildRestarted: "restarted",
            IntensityExceeded: "gave up",
        }
        wanted = kinds or tuple(names)
        return [
            (names.get(type(event), type(event).__name__), event.path)
            for event in self.events
            if isinstance(event, wanted)
        ]

    def timed(self, *kinds: type[TreeEvent]) -> list[tuple[str, str, float]]:
        """``(kind, path, at)`` of the supervision events, in order."""
        return [
            (kind, path, event.at)
            for (kind, path), event in zip(
                self.trail(*kinds), self.of(*(kinds or _SUPERVISION)), strict=True
            )
        ]

    def clear(self) -> None:
        """Forget every event recorded so far."""
        self.events.clear()


_SUPERVISION = (ChildStarted, ChildStopped, ChildCrashed, ChildRestarted, IntensityExceeded)
