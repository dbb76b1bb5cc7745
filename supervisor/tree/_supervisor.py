"""A supervisor: an actor that starts, watches and restarts its children with OTP semantics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._children import (
    _SUPERVISOR_MAILBOX,
    AnySpec,
    ChildState,
    SupervisorGaveUp,
    _Child,
    _ChildFailed,
    _DeleteChild,
    _Hook,
    _now,
    _ProbationDue,
    _Refused,
    _RestartChild,
    _StartChild,
    _TerminateChild,
    _WhichChildren,
)

if TYPE_CHECKING:
    from ._tree import Tree

import functools
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio

import actors

from .._errors import ConfigError, shown
from ..observe._events import (
    ChildCrashed,
    ChildParked,
    ChildRestarted,
    ChildStarted,
    ChildStopped,
    IntensityExceeded,
)
from ..observe._snapshot import NodeSnapshot
from ..rules._intensity import RestartIntensity
from ..rules._retry import RetrySchedule
from ._faulty import service_factory
from ._specs import ChildSpec, Restart, ServiceSpec, Strategy, SupervisorSpec


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
        raise TypeError(f"supervisor {shown(self._path)} got an unknown message {shown(message)}")

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
            factory: Callable[..., Any] = functools.partial(spec.factory, *spec.args, **spec.kwargs)
            if isinstance(spec, ServiceSpec):
                service = self._tree._service(spec, child.path)
                factory = service_factory(factory, service, origin=self._tree.started_at)
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
                f"`spec` must be a ChildSpec, ServiceSpec or SupervisorSpec (got {shown(spec)})"
            )
        if any(child.spec.name == spec.name for child in self._children):
            raise ConfigError(
                f"`name` {shown(spec.name)} is already a child of {shown(self._path)}"
            )
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
            raise ConfigError(f"child {shown(child.path)} is {child.state.value}, not terminated")
        return await self._spawn(child)

    def _delete_child(self, name: str) -> None:
        child = self._named(name)
        if child.state is not ChildState.TERMINATED:
            raise ConfigError(
                f"child {shown(child.path)} is {child.state.value}; terminate it first"
            )
        self._children.remove(child)
