"""A supervisor: an actor that starts, watches and restarts its children with OTP semantics.

Every handler of this actor returns promptly: a restart that must wait (its backoff, or a retry
after a failed start) is a timer that sends this actor a message (OTP's ``try_again``), so that
``which_children``, ``terminate_child`` and a stop are served meanwhile. How restarts are decided
and carried out lives in :mod:`._restarts`; this module holds the lifecycle, the children's
starts and stops, and the operations of the tree's API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import trio

import actors

from .._errors import ConfigError, shown
from ..observe._events import ChildIgnored, ChildStarted, ChildStopped
from ..observe._snapshot import NodeSnapshot
from ..rules._intensity import RestartIntensity
from ..rules._retry import RetrySchedule
from ._children import (
    _SUPERVISOR_MAILBOX,
    AnySpec,
    ChildCount,
    ChildState,
    _Child,
    _ChildFailed,
    _CountChildren,
    _DeleteChild,
    _Hook,
    _now,
    _ProbationDue,
    _Refused,
    _RestartChild,
    _StartChild,
    _StartInstance,
    _TerminateChild,
    _TerminateInstance,
    _TryAgain,
    _WhichChildren,
)
from ._faulty import service_factory
from ._otp import AutoShutdown, Ignore
from ._restarts import _Restarts
from ._specs import ChildSpec, Restart, ServiceSpec, Strategy, SupervisorSpec
from ._starting import instance_factory

if TYPE_CHECKING:
    from ._tree import Tree

_UNSET: Any = object()


class _Supervisor(_Restarts, actors.Actor[Any]):
    """One supervisor of the tree (private; reached through :class:`Tree`)."""

    def __init__(self, tree: Tree, spec: SupervisorSpec, path: str) -> None:
        self._tree = tree
        self._spec = spec
        self._path = path
        self._dynamic = spec.strategy is Strategy.SIMPLE_ONE_FOR_ONE
        self._children: list[_Child] = []
        self._by_ref: dict[actors.ActorRef[Any], _Child] = {}
        self._serial = 0
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
        specs = () if self._dynamic else self._spec.children
        self._children = [_Child(spec=spec, path=f"{self._path}/{spec.name}") for spec in specs]
        self._by_ref = {}
        started: list[_Child] = []
        try:
            for child in list(self._children):
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
            previous._cancel_timers()
            await previous._stop_children(reversed(previous._children))
        self._intensity.reset()
        await self.on_start()

    async def on_stop(self, reason: BaseException | None) -> None:
        self._cancel_timers()
        if self._dynamic:
            await self._stop_concurrently(list(self._children))
        else:
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
                    name=child.name,
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
        if isinstance(message, _TryAgain):
            return await self._try_again(message)
        if isinstance(message, _ProbationDue):
            return await self._probation(message)
        if isinstance(message, _WhichChildren):
            return tuple(child.info() for child in self._children)
        if isinstance(message, _CountChildren):
            return self._count()
        if isinstance(
            message,
            _StartChild
            | _TerminateChild
            | _RestartChild
            | _DeleteChild
            | _StartInstance
            | _TerminateInstance,
        ):
            # A caller's mistake or a dynamic child's failed start is the caller's error, not a
            # crash of this supervisor: it goes back as a value and is raised in the caller.
            try:
                return await self._operate(message)
            except Exception as exc:
                return _Refused(exc)
        raise TypeError(f"supervisor {shown(self._path)} got an unknown message {shown(message)}")

    async def _operate(
        self,
        message: _StartChild
        | _TerminateChild
        | _RestartChild
        | _DeleteChild
        | _StartInstance
        | _TerminateInstance,
    ) -> Any:
        if isinstance(message, _StartInstance):
            return await self._start_instance(message.args, message.kwargs)
        if isinstance(message, _TerminateInstance):
            return await self._terminate_instance(message.ref)
        if isinstance(message, _StartChild):
            return await self._start_child(message.spec)
        if isinstance(message, _TerminateChild):
            return await self._terminate_child(message.name)
        if isinstance(message, _RestartChild):
            return await self._restart_child(message.name)
        return self._delete_child(message.name)

    # -- starting and stopping children -------------------------------------------------------

    async def _spawn(self, child: _Child) -> actors.ActorRef[Any] | None:
        """Spawn ``child``'s actor (a new slot) and watch it; ``None`` if its start said ignore
        (the child is then terminated, or forgotten if temporary)."""
        system = self.context.system
        spec = child.spec
        try:
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
                errors = spec.request_errors if isinstance(spec, ServiceSpec) else ()
                factory = instance_factory(
                    spec.factory,
                    (*spec.args, *child.args),
                    {**spec.kwargs, **child.kwargs},
                    request_errors=errors,
                )
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
        except Ignore:
            self._ignored(child)
            return None
        self.context.watch(ref)
        child.ref = ref
        self._by_ref[ref] = child
        child.state = ChildState.RUNNING
        self._tree._paths.add(child.path)
        self._tree.events.publish(ChildStarted(path=child.path, at=_now(), restarts=child.restarts))
        return ref

    def _ignored(self, child: _Child) -> None:
        # OTP's ``ignore``: no actor; the spec is kept (terminated) unless it is temporary.
        child.ref = None
        child.state = ChildState.TERMINATED
        child.pending = None
        self._tree.events.publish(ChildIgnored(path=child.path, at=_now()))
        if child.spec.restart is Restart.TEMPORARY:
            self._forget(child)

    def _forget(self, child: _Child) -> None:
        """Remove ``child`` from this supervisor and from the tree's indexes."""
        if child in self._children:
            self._children.remove(child)
        if child.ref is not None:
            self._by_ref.pop(child.ref, None)
        self._tree._forget(child.path)

    async def _stop_child(
        self, child: _Child, *, grace: float | None = _UNSET, reason: Any = _UNSET
    ) -> None:
        """Stop ``child`` within its grace (or ``grace``) and publish its stop. If this is cut
        short (this supervisor's own grace ran out), the child is cancelled at once, shielded:
        none outlives its supervisor, and its stop is still published."""
        ref, child.ref = child.ref, None
        child.state = ChildState.TERMINATED
        child.pending = None
        if ref is None:
            return
        self._by_ref.pop(ref, None)
        self.context.unwatch(ref)
        system = self.context.system
        try:
            await system.stop(ref, grace=child.grace if grace is _UNSET else grace)
        finally:
            if ref.is_alive:
                with trio.CancelScope(shield=True):
                    await system.stop(ref, grace=0)
            why = ref.statistics().stop_reason if reason is _UNSET else reason
            self._tree.events.publish(ChildStopped(path=child.path, at=_now(), reason=why))

    async def _stop_children(self, children: Any) -> None:
        """Stop ``children`` in the given order, each with its grace. If this is cut short (this
        supervisor's own shutdown grace ran out), the rest are stopped at once, as OTP kills the
        children of a supervisor that is killed: none outlives its supervisor."""
        pending = list(children)
        index = 0
        try:
            while index < len(pending):
                await self._stop_child(pending[index])
                index += 1
        finally:
            with trio.CancelScope(shield=True):
                for child in pending[index:]:
                    await self._stop_child(child, grace=0)

    async def _stop_concurrently(self, children: list[_Child]) -> None:
        """Stop ``children`` all at once (a dynamic supervisor's instances, as OTP stops those of
        a ``simple_one_for_one``), each within its grace; cut short, the rest are cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                for child in children:
                    nursery.start_soon(self._stop_child, child)
        finally:
            with trio.CancelScope(shield=True):
                for child in children:
                    await self._stop_child(child, grace=0)

    def _find(self, ref: actors.ActorRef[Any]) -> _Child | None:
        child = self._by_ref.get(ref)
        return child if child is not None and child.ref is ref else None

    def _named(self, name: str) -> _Child:
        for child in self._children:
            if child.name == name:
                return child
        raise actors.ActorNotFound(f"{self._path}/{name}")

    # -- the tree's API -------------------------------------------------------------------------

    def _count(self) -> ChildCount:
        active = sum(1 for child in self._children if child.state is ChildState.RUNNING)
        if self._dynamic:
            nested = isinstance(self._spec.children[0], SupervisorSpec)
            count = len(self._children)
            return ChildCount(
                specs=1,
                active=active,
                supervisors=count if nested else 0,
                workers=0 if nested else count,
            )
        supervisors = sum(1 for child in self._children if child.kind == "supervisor")
        return ChildCount(
            specs=len(self._children),
            active=active,
            supervisors=supervisors,
            workers=len(self._children) - supervisors,
        )

    def _not_dynamic(self, what: str) -> None:
        if self._dynamic:
            raise ConfigError(
                f"{self._path!r} is a simple_one_for_one supervisor: {what} does not apply "
                "(use tree.dynamic(path).start_child(*args) and terminate_child(ref))"
            )

    async def _start_child(self, spec: AnySpec) -> actors.ActorRef[Any] | None:
        self._not_dynamic("start_child(path, spec)")
        if not isinstance(spec, ChildSpec | ServiceSpec | SupervisorSpec):
            raise ConfigError(
                f"`spec` must be a ChildSpec, ServiceSpec or SupervisorSpec (got {shown(spec)})"
            )
        for child in self._children:
            if child.name == spec.name:
                raise ConfigError(
                    f"`name` {shown(spec.name)} is already a child of {shown(self._path)} "
                    f"({child.state.value})"
                )
        if spec.significant and self._spec.auto_shutdown is AutoShutdown.NEVER:
            raise ConfigError(
                f"`significant` is true but the `auto_shutdown` of {self._path!r} is never"
            )
        child = _Child(spec=spec, path=f"{self._path}/{spec.name}")
        self._children.append(child)
        try:
            return await self._spawn(child)  # a start error reaches the caller
        except BaseException:
            self._forget(child)  # nothing is kept
            raise

    async def _start_instance(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> actors.ActorRef[Any] | None:
        if not self._dynamic:
            raise ConfigError(
                f"{self._path!r} is not a simple_one_for_one supervisor: give start_child a spec"
            )
        template = self._spec.children[0]
        if isinstance(template, SupervisorSpec) and (args or kwargs):
            raise ConfigError(
                f"the template of {self._path!r} is a supervisor: it takes no extra arguments "
                f"(got {args!r}, {kwargs!r})"
            )
        self._serial += 1
        name = f"{template.name}-{self._serial}"
        child = _Child(
            spec=template, path=f"{self._path}/{name}", name=name, args=args, kwargs=kwargs
        )
        self._children.append(child)
        try:
            ref = await self._spawn(child)
        except BaseException:
            self._forget(child)
            raise
        if ref is None:
            self._forget(child)  # an ignored instance is not kept (OTP's simple_one_for_one)
        return ref

    async def _terminate_instance(self, ref: actors.ActorRef[Any]) -> None:
        child = self._find(ref)
        if child is None:
            raise actors.ActorNotFound(f"{self._path}: no instance {ref!r}")
        await self._stop_child(child)
        self._forget(child)

    async def _terminate_child(self, name: str) -> None:
        child = self._named(name)
        await self._stop_child(child)  # a pending restart of it is cancelled
        if self._dynamic or child.spec.restart is Restart.TEMPORARY:
            self._forget(child)

    async def _restart_child(self, name: str) -> actors.ActorRef[Any] | None:
        self._not_dynamic("restart_child")
        child = self._named(name)
        if child.state is not ChildState.TERMINATED:
            raise ConfigError(f"child {shown(child.path)} is {child.state.value}, not terminated")
        return await self._spawn(child)

    def _delete_child(self, name: str) -> None:
        self._not_dynamic("delete_child")
        child = self._named(name)
        if child.state is not ChildState.TERMINATED:
            raise ConfigError(
                f"child {shown(child.path)} is {child.state.value}; terminate it first"
            )
        self._forget(child)
