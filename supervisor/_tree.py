"""Supervision trees: Erlang/OTP supervisors, built on the actor runtime.

A supervisor is an actor (:class:`_Supervisor`) that owns an ordered list of children. Each child
is an actor spawned with the supervisor's hook, so that its crash becomes a message to the
supervisor (never a cancellation of its siblings), and watched, so that its stop does too. The
semantics are OTP's, exactly:

- **Start.** Children start in spec order, each fully started (its start hook returned) before the
  next. If one fails to start, those already started are stopped in reverse order and the
  supervisor's own start fails with that error (so ``run_tree`` raises it, or the parent sees a
  failed child).
- **Stop.** Children stop in reverse start order, each given its ``shutdown`` grace period, then
  cancelled.
- **Crash.** ``temporary`` children are never restarted (they are stopped and forgotten);
  ``transient`` ones are restarted only after an abnormal exit (a crash, or a stop with an
  error); ``permanent`` always. A restart waits for the backoff delay of :class:`RestartBackoff`
  (restart ``n`` within the intensity window waits the ``n``-th delay), then, per ``strategy``:
  ``one_for_one`` restarts the child alone; ``one_for_all`` stops every other running child in
  reverse start order (mailboxes kept) and restarts them all in start order; ``rest_for_one`` does
  the same for the crashed child and those started after it. A restarted child keeps its mailbox,
  so queued requests are served by the new instance.
- **Intensity.** Restarts are counted per supervisor. The restart that would make more than
  ``max_restarts`` within ``within`` seconds is not done: the supervisor publishes
  :class:`IntensityExceeded`, stops all its children in reverse order and fails with
  :class:`SupervisorGaveUp`; its parent handles that like any child crash. When the root gives
  up, the whole tree fails: ``run_tree`` cancels its body and raises :class:`SupervisorGaveUp`.
- **Breaker and tree agree.** A crashed *service* child whose breaker is open is not restarted
  (no restart loop, no intensity spent): it is *parked* (:class:`ChildParked`) and restarted on
  probation when the breaker turns half-open, so trial requests decide whether it stays.
- ``trio.Cancelled`` and ``KeyboardInterrupt`` are never swallowed. Leaving ``run_tree`` with an
  exception (Ctrl-C included) still stops the tree in order, shielded, before the exception goes on.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import math
import random
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import trio

import actors
from actors._groups import leaves

from ._breaker import CircuitState, CircuitStateChange
from ._bus import EventBus
from ._errors import ConfigError, ResilienceError
from ._events import (
    ChildCrashed,
    ChildParked,
    ChildRestarted,
    ChildStarted,
    ChildStopped,
    IntensityExceeded,
)
from ._intensity import RestartIntensity
from ._metrics import Metrics
from ._retry import RetrySchedule
from ._service import GuardedService, ServiceRef
from ._snapshot import NodeSnapshot, SystemSnapshot
from ._specs import ChildSpec, Restart, ServiceSpec, Strategy, SupervisorSpec

__all__ = ["ChildInfo", "ChildState", "SupervisorGaveUp", "Tree", "run_tree"]

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


class _RootHook:
    """The root supervisor's parent: its failure fails the tree."""

    __slots__ = ("_tree",)

    def __init__(self, tree: Tree) -> None:
        self._tree = tree

    def child_failed(self, ref: actors.ActorRef[Any], error: Exception) -> None:
        self._tree._root_failed(error)


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


class _Supervisor(actors.Actor[Any]):
    """One supervisor of the tree (private; reached through :class:`Tree`)."""

    def __init__(self, tree: Tree, spec: SupervisorSpec, path: str) -> None:
        self._tree = tree
        self._spec = spec
        self._path = path
        self._children: list[_Child] = []
        self._intensity = RestartIntensity(max_restarts=spec.max_restarts, within=spec.within)
        self._backoff = RetrySchedule.build(
            max_attempts=1,
            initial_delay=spec.backoff.initial_delay,
            max_delay=spec.backoff.max_delay,
            backoff_factor=spec.backoff.factor,
            jitter=spec.backoff.jitter,
        )
        self._hook: _Hook | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def on_start(self) -> None:
        self._hook = _Hook(self.context.self_ref)
        self._tree._supervisors[self._path] = self
        self._children = [
            _Child(spec=spec, path=f"{self._path}/{spec.name}") for spec in self._spec.children
        ]
        started: list[_Child] = []
        try:
            for child in self._children:
                await self._spawn(child)
                started.append(child)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._stop_children(reversed(started))
            raise

    async def on_restart(self, error: Exception | None) -> None:
        # OTP: a restarted supervisor starts from its spec again. Its old children were stopped
        # if it gave up; if it crashed (a bug), its dead instance still owns them: stop them now.
        previous = self._tree._supervisors.get(self._path)
        if previous is not None and previous is not self:
            await previous._stop_children(reversed(previous._children))
        self._intensity.reset()
        await self.on_start()

    async def on_stop(self, reason: BaseException | None) -> None:
        await self._stop_children(reversed(self._children))
        if self._tree._supervisors.get(self._path) is self:
            del self._tree._supervisors[self._path]

    def snapshot(self, now: float) -> NodeSnapshot:
        """This supervisor and its subtree, as plain data (synchronous: safe between awaits)."""
        children = []
        for child in self._children:
            nested = self._tree._supervisors.get(child.path)
            if isinstance(child.spec, SupervisorSpec) and nested is not None:
                node = nested.snapshot(now)
                node = attrs.evolve(node, state=child.state.value, restarts=child.restarts)
            else:
                service = self._tree._services.get(child.path)
                breaker = service.handle.breaker if service is not None else None
                node = NodeSnapshot(
                    path=child.path,
                    name=child.spec.name,
                    kind=child.kind,
                    state=child.state.value,
                    restarts=child.restarts,
                    breaker=breaker.state.value if breaker is not None else None,
                )
            children.append(node)
        return NodeSnapshot(
            path=self._path,
            name=self._spec.name,
            kind="supervisor",
            state="running",
            restart_budget=max(0, self._spec.max_restarts - self._intensity.recent(now)),
            children=tuple(children),
        )

    async def receive(self, message: Any) -> Any:
        if isinstance(message, _ChildFailed):
            return await self._child_failed(message.ref, message.error)
        if isinstance(message, actors.Down):
            return await self._child_exited(message.ref, message.reason)
        if isinstance(message, _ProbationDue):
            return await self._probation(message)
        if isinstance(message, _WhichChildren):
            return tuple(child.info() for child in self._children)
        if isinstance(message, _StartChild | _TerminateChild | _RestartChild | _DeleteChild):
            # A caller's mistake or a dynamic child's failed start is the caller's error, not a
            # crash of this supervisor: it goes back as a value and is raised in the caller.
            try:
                return await self._operate(message)
            except Exception as exc:
                return _Refused(exc)
        raise TypeError(f"supervisor {self._path!r} got an unknown message {message!r}")

    async def _operate(
        self, message: _StartChild | _TerminateChild | _RestartChild | _DeleteChild
    ) -> Any:
        if isinstance(message, _StartChild):
            return await self._start_child(message.spec)
        if isinstance(message, _TerminateChild):
            return await self._terminate_child(message.name)
        if isinstance(message, _RestartChild):
            return await self._restart_child(message.name)
        return self._delete_child(message.name)

    # -- starting and stopping children -------------------------------------------------------

    async def _spawn(self, child: _Child) -> actors.ActorRef[Any]:
        """Spawn ``child``'s actor (a new slot) and watch it."""
        system = self.context.system
        spec = child.spec
        if isinstance(spec, SupervisorSpec):
            ref = await system.spawn(
                _Supervisor,
                self._tree,
                spec,
                child.path,
                name=child.path,
                supervisor=self._hook,
                mailbox_size=_SUPERVISOR_MAILBOX,
            )
        else:
            factory = functools.partial(spec.factory, *spec.args, **spec.kwargs)
            if isinstance(spec, ServiceSpec):
                service = self._tree._service(spec, child.path)
                ref = await system.spawn(
                    factory, name=child.path, supervisor=self._hook, **service.spawn_options()
                )
                service.attach(ref)
            else:
                ref = await system.spawn(
                    factory,
                    name=child.path,
                    supervisor=self._hook,
                    mailbox_size=spec.mailbox_size,
                    overflow=spec.overflow,
                )
        self.context.watch(ref)
        child.ref = ref
        child.state = ChildState.RUNNING
        self._tree._paths.add(child.path)
        self._tree.events.publish(ChildStarted(path=child.path, at=_now(), restarts=child.restarts))
        return ref

    async def _stop_child(self, child: _Child) -> None:
        ref, child.ref = child.ref, None
        child.state = ChildState.TERMINATED
        if ref is None:
            return
        self.context.unwatch(ref)
        await self.context.system.stop(ref, grace=child.grace)
        reason = ref.statistics().stop_reason
        self._tree.events.publish(ChildStopped(path=child.path, at=_now(), reason=reason))

    async def _stop_children(self, children: Iterable[_Child]) -> None:
        """Stop ``children`` in the given order, each with its grace. If this is cut short (this
        supervisor's own shutdown grace ran out), the rest are stopped at once, as OTP kills the
        children of a supervisor that is killed: none outlives its supervisor."""
        pending = list(children)
        try:
            while pending:
                await self._stop_child(pending[0])
                pending.pop(0)
        finally:
            if pending:
                with trio.CancelScope(shield=True):
                    for child in pending:
                        if child.ref is not None:
                            ref, child.ref = child.ref, None
                            child.state = ChildState.TERMINATED
                            await self.context.system.stop(ref, grace=0)

    def _find(self, ref: actors.ActorRef[Any]) -> _Child | None:
        for child in self._children:
            if child.ref is ref:
                return child
        return None

    def _named(self, name: str) -> _Child:
        for child in self._children:
            if child.spec.name == name:
                return child
        raise actors.ActorNotFound(f"{self._path}/{name}")

    # -- failures -----------------------------------------------------------------------------

    async def _child_failed(self, ref: actors.ActorRef[Any], error: Exception) -> None:
        child = self._find(ref)
        if child is None:
            return  # a stale report from a child already stopped or replaced
        self._tree.events.publish(ChildCrashed(path=child.path, at=_now(), error=error))
        if child.spec.restart is Restart.TEMPORARY:
            await self._stop_child(child)
            self._children.remove(child)
            return
        child.state = ChildState.RESTARTING
        if child.path in self._tree._services:
            # The caller whose request crashed the service records that failure in its breaker
            # when it resumes, in the same scheduling batch as this message: let it run first.
            await trio.lowlevel.checkpoint()
            if self._park(child):
                return
        await self._restart_group(child, error)

    async def _child_exited(self, ref: actors.ActorRef[Any], reason: BaseException | None) -> None:
        child = self._find(ref)
        if child is None:
            return  # stopped by this supervisor, or stale
        child.ref = None
        child.state = ChildState.TERMINATED
        self._tree.events.publish(ChildStopped(path=child.path, at=_now(), reason=reason))
        restart = child.spec.restart
        if restart is Restart.TEMPORARY:
            self._children.remove(child)
            return
        if restart is Restart.TRANSIENT and reason is None:
            return
        child.state = ChildState.RESTARTING
        await self._restart_group(child, reason)

    def _park(self, child: _Child) -> bool:
        """Park a crashed service whose breaker is open; return whether it was parked."""
        service = self._tree._services.get(child.path)
        if service is None:
            return False
        until = service.park_until(_now())
        if until is None:
            return False
        child.state = ChildState.PARKED
        child.generation += 1
        self._tree.events.publish(ChildParked(path=child.path, at=_now(), until=until))
        due = _ProbationDue(child.spec.name, child.generation)
        self._tree._schedule(self.context.self_ref, until, due, service)
        return True

    async def _probation(self, due: _ProbationDue) -> None:
        try:
            child = self._named(due.name)
        except actors.ActorNotFound:
            return
        if child.state is not ChildState.PARKED or child.generation != due.generation:
            return
        if self.context.stopping:
            return
        child.state = ChildState.RESTARTING
        try:
            await self._revive(child, delay=0.0, probation=True)
        except Exception as exc:  # its start hook failed on probation: one more crash
            self._tree.events.publish(ChildCrashed(path=child.path, at=_now(), error=exc))
            if not self._park(child):
                await self._restart_group(child, exc)

    async def _restart_group(self, crashed: _Child, error: BaseException | None) -> None:
        """Restart ``crashed`` (and its group, per the strategy), within the intensity."""
        strategy = self._spec.strategy
        if strategy is Strategy.ONE_FOR_ONE:
            group = [crashed]
        else:
            start = 0 if strategy is Strategy.ONE_FOR_ALL else self._children.index(crashed)
            group = [
                child
                for child in self._children[start:]
                if child is crashed or child.state is ChildState.RUNNING
            ]
        while True:
            if self.context.stopping:
                return  # this supervisor is shutting down: its children stop, none restarts
            now = _now()
            if not self._intensity.record(now):
                await self._give_up(error)
            delay = self._backoff.base_delay(self._intensity.recent(now), self._tree._rng)
            # The others stop in reverse start order, keeping their mailboxes.
            for child in reversed(group):
                if child is not crashed and child.ref is not None:
                    child.state = ChildState.RESTARTING
                    await self.context.system.suspend(child.ref, grace=child.grace)
            if delay > 0:
                await trio.sleep(delay)
                if self.context.stopping:
                    return
            try:
                for child in group:
                    await self._revive(child, delay=delay)
            except Exception as exc:  # a start hook failed: that is one more crash
                failed = next(c for c in group if c.state is ChildState.RESTARTING)
                self._tree.events.publish(ChildCrashed(path=failed.path, at=_now(), error=exc))
                error = exc
                crashed = failed
                continue
            return

    async def _revive(self, child: _Child, *, delay: float, probation: bool = False) -> None:
        """Bring ``child`` back: a fresh instance in its slot, or a new slot if it has none."""
        if child.ref is not None and child.ref.is_alive:
            await self.context.system.restart(child.ref, grace=child.grace)
            child.restarts += 1
            child.state = ChildState.RUNNING
        else:
            child.restarts += 1  # before the spawn, so its ChildStarted tells the restart count
            await self._spawn(child)
        self._tree.events.publish(
            ChildRestarted(
                path=child.path,
                at=_now(),
                restarts=child.restarts,
                delay=delay,
                probation=probation,
            )
        )

    async def _give_up(self, error: BaseException | None) -> None:
        spec = self._spec
        self._tree.events.publish(
            IntensityExceeded(
                path=self._path, at=_now(), max_restarts=spec.max_restarts, within=spec.within
            )
        )
        failure = SupervisorGaveUp(self._path, spec.max_restarts, spec.within)
        failure.__cause__ = error
        if self._path == self._tree.spec.name:
            # The root fails the tree now: if a shutdown overtook this give-up, the runtime
            # will not report the root's crash (a stopping actor's crash is its stop).
            self._tree._root_failed(failure)
        await self._stop_children(reversed(self._children))
        self._tree._supervisors.pop(self._path, None)
        raise failure

    # -- dynamic children -----------------------------------------------------------------------

    async def _start_child(self, spec: AnySpec) -> actors.ActorRef[Any]:
        if not isinstance(spec, ChildSpec | ServiceSpec | SupervisorSpec):
            raise ConfigError(
                f"`spec` must be a ChildSpec, ServiceSpec or SupervisorSpec (got {spec!r})"
            )
        if any(child.spec.name == spec.name for child in self._children):
            raise ConfigError(f"`name` {spec.name!r} is already a child of {self._path!r}")
        child = _Child(spec=spec, path=f"{self._path}/{spec.name}")
        ref = await self._spawn(child)  # a start error reaches the caller; nothing is kept
        self._children.append(child)
        return ref

    async def _terminate_child(self, name: str) -> None:
        child = self._named(name)
        await self._stop_child(child)
        if child.spec.restart is Restart.TEMPORARY:
            self._children.remove(child)

    async def _restart_child(self, name: str) -> actors.ActorRef[Any]:
        child = self._named(name)
        if child.state is not ChildState.TERMINATED:
            raise ConfigError(f"child {child.path!r} is {child.state.value}, not terminated")
        return await self._spawn(child)

    def _delete_child(self, name: str) -> None:
        child = self._named(name)
        if child.state is not ChildState.TERMINATED:
            raise ConfigError(f"child {child.path!r} is {child.state.value}; terminate it first")
        self._children.remove(child)


class Tree:
    """A running supervision tree (made by :func:`run_tree`).

    Attributes:
        spec: the root supervisor's spec.
        events: the :class:`EventBus` every transition of the tree is published on.
        system: the actor system the tree lives in.
        metrics: the tree's :class:`~supervisor._metrics.Metrics` (``None`` with
            ``run_tree(..., metrics=False)``).
    """

    def __init__(
        self,
        system: actors.ActorSystem,
        spec: SupervisorSpec,
        *,
        events: EventBus[Any],
        rng: random.Random,
        nursery: trio.Nursery,
    ) -> None:
        self.system = system
        self.spec = spec
        self.events = events
        self._rng = rng
        self._nursery = nursery
        self._services: dict[str, GuardedService] = {}
        self._paths: set[str] = set()  # every child path ever started, for lookup by bare name
        self._supervisors: dict[str, _Supervisor] = {}  # live supervisor instances, by path
        self._root: actors.ActorRef[Any] | None = None
        self._body: trio.CancelScope | None = None
        self.failure: BaseException | None = None
        """Why the tree failed (the root gave up), or ``None``."""
        self.started_at = 0.0
        """Trio time the tree started."""
        self.metrics: Metrics | None = None

    def __repr__(self) -> str:
        state = "failed" if self.failure else "running" if self._root else "not started"
        return f"<Tree {self.spec.name!r} {state}, {len(self._services)} services>"

    # -- internals used by the supervisors --------------------------------------------------

    def _service(self, spec: ServiceSpec, path: str) -> GuardedService:
        # One per path for the life of the tree: breaker state and metrics outlive restarts.
        service = self._services.get(path)
        if service is None or service.spec != spec:
            service = GuardedService(spec, path=path, bus=self.events, rng=self._rng)
            self._services[path] = service
        return service

    def _schedule(
        self,
        supervisor: actors.ActorRef[Any],
        at: float,
        message: _ProbationDue,
        service: GuardedService,
    ) -> None:
        async def deliver() -> None:
            if math.isinf(at):
                # Held open by force_open(): wait for the breaker to leave OPEN.
                left_open = trio.Event()
                breaker = service.handle.breaker
                if breaker is None:
                    return

                def listener(change: CircuitStateChange) -> None:
                    if change.new_state is not CircuitState.OPEN:
                        left_open.set()

                breaker.add_listener(listener)
                try:
                    await left_open.wait()
                finally:
                    breaker.remove_listener(listener)
            else:
                await trio.sleep_until(at)
            # A stopping supervisor refuses it: its children stop too, none is restarted.
            with contextlib.suppress(actors.ActorStopped):
                supervisor.tell(message)

        self._nursery.start_soon(deliver)

    def _root_failed(self, error: Exception) -> None:
        self.failure = error
        if self._body is not None:
            self._body.cancel()

    async def _start(self) -> None:
        self.started_at = trio.current_time()
        self._root = await self.system.spawn(
            _Supervisor,
            self,
            self.spec,
            self.spec.name,
            name=self.spec.name,
            supervisor=_RootHook(self),
            mailbox_size=_SUPERVISOR_MAILBOX,
        )

    # -- public ----------------------------------------------------------------------------

    @property
    def root(self) -> actors.ActorRef[Any]:
        """The root supervisor's actor."""
        if self._root is None:
            raise RuntimeError("the tree is not started")
        return self._root

    def _resolve(self, name_or_path: str) -> str:
        if "/" in name_or_path or name_or_path == self.spec.name:
            return name_or_path
        suffix = f"/{name_or_path}"
        matches = [path for path in self._paths if path.endswith(suffix)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise actors.ActorNotFound(name_or_path)
        raise LookupError(
            f"{name_or_path!r} is ambiguous: {', '.join(sorted(matches))}; give the full path"
        )

    def lookup(self, name_or_path: str) -> actors.ActorRef[Any]:
        """The actor of the child at ``name_or_path`` (``"app/db/users"``), or of the only child
        named ``name_or_path`` anywhere in the tree.

        Raises:
            actors.ActorNotFound: no running child there.
            LookupError: a bare name matches several children (the message lists their paths).
        """
        return self.system.lookup(self._resolve(name_or_path))

    def service(self, name_or_path: str) -> ServiceRef:
        """The handle of the guarded service at ``name_or_path`` (see :meth:`lookup`); it stays
        valid across restarts of the service and of its supervisors.

        Raises:
            KeyError: no service there.
        """
        path = name_or_path
        if path not in self._services:
            matches = [p for p in self._services if p.endswith(f"/{name_or_path}")]
            if len(matches) != 1:
                raise KeyError(f"no single service named {name_or_path!r} in {self.spec.name!r}")
            path = matches[0]
        return self._services[path].handle

    def services(self) -> dict[str, ServiceRef]:
        """Every guarded service of the tree, by path."""
        return {path: service.handle for path, service in self._services.items()}

    def _parent_of(self, path: str) -> tuple[actors.ActorRef[Any], str]:
        parent, sep, name = path.rpartition("/")
        if not sep:
            raise ValueError(f"{path!r} is the root; give the path of a child")
        return self.system.lookup(parent), name

    async def which_children(self, path: str | None = None) -> tuple[ChildInfo, ...]:
        """The children of the supervisor at ``path`` (default: the root), in start order."""
        supervisor = self.system.lookup(path or self.spec.name)
        result: tuple[ChildInfo, ...] = await supervisor.ask(_WhichChildren())
        return result

    async def _operate(self, supervisor: actors.ActorRef[Any], message: Any) -> Any:
        # Ask a supervisor to change its children; raise here what it refused with.
        result = await supervisor.ask(message)
        if isinstance(result, _Refused):
            raise result.error
        return result

    async def start_child(self, parent: str, spec: AnySpec) -> actors.ActorRef[Any]:
        """Add ``spec`` as the last child of the supervisor at ``parent`` and start it.

        Returns:
            The new child's actor (for a nested supervisor, the supervisor's actor).

        Raises:
            ConfigError: ``spec`` is not a spec, or its name is taken among its siblings.
            Exception: what the child's start raised (nothing is kept then).
        """
        ref: actors.ActorRef[Any] = await self._operate(
            self.system.lookup(parent), _StartChild(spec)
        )
        return ref

    async def terminate_child(self, path: str) -> None:
        """Stop the child at ``path`` (its grace period applies). Its spec is kept, so
        :meth:`restart_child` can start it again, except for a temporary child, which is
        forgotten."""
        supervisor, name = self._parent_of(path)
        await self._operate(supervisor, _TerminateChild(name))

    async def restart_child(self, path: str) -> actors.ActorRef[Any]:
        """Start again the terminated child at ``path``; returns its new actor.

        Raises:
            ConfigError: the child is not terminated.
        """
        supervisor, name = self._parent_of(path)
        ref: actors.ActorRef[Any] = await self._operate(supervisor, _RestartChild(name))
        return ref

    async def delete_child(self, path: str) -> None:
        """Forget the terminated child at ``path``.

        Raises:
            ConfigError: the child is not terminated.
        """
        supervisor, name = self._parent_of(path)
        await self._operate(supervisor, _DeleteChild(name))

    def nodes(self) -> NodeSnapshot:
        """The supervision tree now, as plain data: each node's state, restarts, restart budget
        left and breaker state. Synchronous and cheap (the monitor calls it on every refresh)."""
        now = trio.current_time()
        root = self._supervisors.get(self.spec.name)
        if root is None:
            state = "failed" if self.failure is not None else "terminated"
            return NodeSnapshot(
                path=self.spec.name, name=self.spec.name, kind="supervisor", state=state
            )
        node = root.snapshot(now)
        return node if self.failure is None else attrs.evolve(node, state="failed")

    def snapshot(self) -> SystemSnapshot:
        """The whole system now (trio time): tree, services' metrics and health, latest events.
        Synchronous (see :meth:`~supervisor._metrics.Metrics.snapshot`).

        Raises:
            RuntimeError: the tree runs without metrics (``run_tree(..., metrics=False)``).
        """
        if self.metrics is None:
            raise RuntimeError(f"tree {self.spec.name!r} runs without metrics (metrics=False)")
        return self.metrics.snapshot(self, trio.current_time())

    async def stop(self) -> None:
        """Stop the whole tree in order (children before parents, in reverse start order).
        Idempotent."""
        if self._root is not None:
            grace = None if math.isinf(self.spec.shutdown) else self.spec.shutdown
            await self.system.stop(self._root, grace=grace)


@asynccontextmanager
async def run_tree(
    spec: SupervisorSpec,
    *,
    system: actors.ActorSystem | None = None,
    events: EventBus[Any] | None = None,
    rng: random.Random | None = None,
    metrics: bool | Metrics = True,
) -> AsyncIterator[Tree]:
    """Start the tree of ``spec`` and yield it; stop it in order when the block ends.

    Args:
        spec: the root supervisor.
        system: the actor system to run in (default: a new one, shut down on exit).
        events: the bus to publish on (default: a new one, ``tree.events``).
        rng: randomness for backoff jitter (inject a seeded one for repeatable runs).
        metrics: ``True`` (default): a :class:`~supervisor._metrics.Metrics` with default
            options listens to the tree (``tree.metrics``, ``tree.snapshot()``) and runs the
            services' health checks; a ``Metrics`` object: that one; ``False``: none.

    Raises:
        Exception: what a child's start raised, if the tree could not start.
        SupervisorGaveUp: the root supervisor exceeded its restart intensity; the block was
            cancelled.

    Cancellation and ``KeyboardInterrupt``: whether the body is cancelled, a scope around
    ``run_tree`` is (``with trio.move_on_after(30): async with run_tree(spec): ...``), or
    ``KeyboardInterrupt`` is raised, the tree is first stopped in order (shielded: children
    before parents, in reverse start order, each child within its ``shutdown``), then the actor
    system (if ``run_tree`` made it) stops what is left, and only then the exception goes on:
    the cancelled scope still catches its cancellation, ``KeyboardInterrupt`` still propagates.
    """
    if not isinstance(spec, SupervisorSpec):
        raise ConfigError(f"`spec` must be a SupervisorSpec (got {spec!r})")
    try:
        async with AsyncExitStack() as stack:
            if system is None:
                system = await stack.enter_async_context(actors.ActorSystem())
            nursery = await stack.enter_async_context(trio.open_nursery())
            tree = Tree(
                system,
                spec,
                events=events if events is not None else EventBus(),
                rng=rng if rng is not None else random.Random(),
                nursery=nursery,
            )
            if metrics is not False:
                (Metrics() if metrics is True else metrics).attach(tree)
            await tree._start()
            try:
                with trio.CancelScope() as tree._body:
                    yield tree
            finally:
                tree._body = None
                with trio.CancelScope(shield=True):
                    await tree.stop()
                nursery.cancel_scope.cancel()
            if tree.failure is not None:
                raise tree.failure
    except BaseExceptionGroup as group:
        # The timers' nursery wraps whatever leaves the block; one source leaves as itself.
        found = leaves(group)
        if len(found) != 1:
            raise
        raise found[0] from (found[0].__cause__ if found[0].__cause__ is not None else group)
