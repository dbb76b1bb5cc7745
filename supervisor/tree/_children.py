"""What a supervisor knows of its children, and the messages a supervisor actor receives."""

from __future__ import annotations

import enum
import math
from typing import Any

import attrs
import trio

import actors

from .._errors import ResilienceError
from ._specs import ChildSpec, Restart, ServiceSpec, SupervisorSpec

AnySpec = ChildSpec | ServiceSpec | SupervisorSpec
_SUPERVISOR_MAILBOX = 10_000  # control messages only; a crash storm must never overflow it


class SupervisorGaveUp(ResilienceError):
    """A supervisor exceeded its restart intensity: it stopped its children and failed.

    Attributes:
        path: the supervisor's path.
        max_restarts: the limit that was exceeded.
        within: the window of that limit, in seconds.

    The last child failure is its ``__cause__``.
    """

    def __init__(self, path: str, max_restarts: int, within: float) -> None:
        self.path = path
        self.max_restarts = max_restarts
        self.within = within
        super().__init__(
            f"supervisor {path!r} gave up: more than {max_restarts} restarts within {within}s"
        )


class ChildState(enum.Enum):
    """Where a child of a supervisor stands."""

    RUNNING = "running"
    """Started and serving."""
    RESTARTING = "restarting"
    """Crashed or stopped for a group restart; its restart is under way."""
    PARKED = "parked"
    """A crashed service whose breaker is open; restarted on probation when it turns half-open."""
    TERMINATED = "terminated"
    """Stopped and not coming back by itself (``restart_child`` brings it back)."""


@attrs.frozen(kw_only=True)
class ChildInfo:
    """A snapshot of one child of a supervisor (see :meth:`Tree.which_children`)."""

    name: str
    """The child's name among its siblings."""
    path: str
    """Its path in the tree."""
    kind: str
    """``"worker"``, ``"service"`` or ``"supervisor"``."""
    state: ChildState
    """Where it stands."""
    restart: Restart
    """Its restart type."""
    restarts: int
    """How many times it was restarted."""
    ref: actors.ActorRef[Any] | None
    """Its actor, while it has one."""


# -- messages a supervisor actor receives -----------------------------------------------------


@attrs.frozen
class _ChildFailed:
    ref: actors.ActorRef[Any]
    error: Exception


@attrs.frozen
class _ProbationDue:
    name: str
    generation: int


@attrs.frozen
class _StartChild:
    spec: AnySpec


@attrs.frozen
class _TerminateChild:
    name: str


@attrs.frozen
class _RestartChild:
    name: str


@attrs.frozen
class _DeleteChild:
    name: str


@attrs.frozen
class _WhichChildren:
    pass


@attrs.frozen
class _Refused:
    """A dynamic-children operation failed; :meth:`Tree._operate` raises ``error`` in the caller."""

    error: Exception


class _Hook:
    """Turns a child's crash into a message to its supervisor (never blocks)."""

    __slots__ = ("_supervisor",)

    def __init__(self, supervisor: actors.ActorRef[Any]) -> None:
        self._supervisor = supervisor

    def child_failed(self, ref: actors.ActorRef[Any], error: Exception) -> None:
        self._supervisor.tell(_ChildFailed(ref, error))


@attrs.define(eq=False)
class _Child:
    spec: AnySpec
    path: str
    state: ChildState = ChildState.TERMINATED
    ref: actors.ActorRef[Any] | None = None
    restarts: int = 0
    generation: int = 0  # bumped at each park, so a stale probation timer is ignored

    @property
    def grace(self) -> float | None:
        return None if math.isinf(self.spec.shutdown) else self.spec.shutdown

    @property
    def kind(self) -> str:
        if isinstance(self.spec, SupervisorSpec):
            return "supervisor"
        return "service" if isinstance(self.spec, ServiceSpec) else "worker"

    def info(self) -> ChildInfo:
        return ChildInfo(
            name=self.spec.name,
            path=self.path,
            kind=self.kind,
            state=self.state,
            restart=self.spec.restart,
            restarts=self.restarts,
            ref=self.ref,
        )


def _now() -> float:
    return trio.current_time()
