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


class SupervisorShutdown(ResilienceError):
    """A supervisor shut itself down because a significant child exited (``auto_shutdown``).

    To its parent this is a normal exit (OTP's reason ``shutdown``): a transient or temporary
    supervisor is not restarted (and, if significant, may shut its own parent down in turn); a
    permanent one is restarted. When the root shuts down, ``run_tree`` cancels its body and ends
    normally.

    Attributes:
        path: the supervisor's path.
        significant: the path of the child whose exit triggered it.
    """

    def __init__(self, path: str, significant: str) -> None:
        self.path = path
        self.significant = significant
        super().__init__(f"supervisor {path!r} shut down: significant child {significant!r} exited")


class ChildState(enum.Enum):
    """Where a child of a supervisor stands."""

    RUNNING = "running"
    """Started and serving."""
    RESTARTING = "restarting"
    """Crashed or stopped for a group restart; its restart is under way or waits for its
    backoff (OTP's ``restarting``): ``terminate_child`` cancels it."""
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
    significant: bool = False
    """Whether its exit may shut its supervisor down (see ``SupervisorSpec.auto_shutdown``)."""
    args: tuple[Any, ...] = ()
    """The extra arguments of an instance of a dynamic supervisor (``()`` otherwise)."""


@attrs.frozen(kw_only=True)
class ChildCount:
    """How many children a supervisor has (OTP's ``count_children``)."""

    specs: int
    """Child specs, alive or not (``1`` for a dynamic supervisor: its template)."""
    active: int
    """Children running now."""
    supervisors: int
    """Children that are supervisors, alive or not (for a dynamic supervisor: its instances, if
    the template is a supervisor)."""
    workers: int
    """Children that are workers or services, alive or not (for a dynamic supervisor: its
    instances, if the template is not a supervisor)."""


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
class _CountChildren:
    pass


@attrs.frozen
class _StartInstance:
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@attrs.frozen
class _TerminateInstance:
    ref: actors.ActorRef[Any]


@attrs.define(eq=False)
class _Pending:
    """A restart waiting for its backoff (or its retry after a failed start): the children whose
    ``pending`` is this object restart together when it falls due (OTP's ``try_again``)."""

    error: BaseException | None
    delay: float
    timer: trio.CancelScope | None = None


@attrs.frozen(eq=False)
class _TryAgain:
    """A pending restart fell due (sent by its timer), or a failed start asks to be retried."""

    pending: _Pending
    failed: _Child | None = None


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
    name: str = ""  # the spec's name, or a dynamic instance's own
    state: ChildState = ChildState.TERMINATED
    ref: actors.ActorRef[Any] | None = None
    restarts: int = 0
    generation: int = 0  # bumped at each park, so a stale probation timer is ignored
    pending: _Pending | None = None  # the restart this child waits for, while RESTARTING
    args: tuple[Any, ...] = ()  # a dynamic instance's extra arguments
    kwargs: dict[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not self.name:
            self.name = self.spec.name

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
            name=self.name,
            path=self.path,
            kind=self.kind,
            state=self.state,
            restart=self.spec.restart,
            restarts=self.restarts,
            ref=self.ref,
            significant=self.spec.significant,
            args=self.args,
        )


def _now() -> float:
    return trio.current_time()
