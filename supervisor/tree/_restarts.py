"""How a supervisor handles its children's exits: restart (per strategy, within the intensity,
after the backoff), park, give up, or shut down (``auto_shutdown``).

A restart never waits inside a handler. The supervisor records the restart against its intensity
and takes the group down (per the strategy) at once; then, with a backoff delay, the children are
``restarting`` and a timer sends the supervisor a ``_TryAgain`` when the delay is over (OTP's
``try_again``); without one they restart at once. A start that fails during a restart is one more
crash: the supervisor sends itself a ``_TryAgain`` for it and goes back to its mailbox, so calls
and a stop are served between the attempts; that retry counts against the intensity again and
restarts per the strategy from the child that failed (under ``rest_for_one``, that child and those
after it, never the ones before that already came back).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import trio

import actors

from ..observe._events import (
    AutoShutdownTriggered,
    ChildCrashed,
    ChildParked,
    ChildRestarted,
    ChildStopped,
    IntensityExceeded,
    RestartScheduled,
)
from ._children import (
    ChildState,
    SupervisorGaveUp,
    SupervisorShutdown,
    _Child,
    _now,
    _Pending,
    _ProbationDue,
    _TryAgain,
)
from ._otp import Ignore, auto_shutdown_due
from ._specs import Restart, Strategy, SupervisorSpec

if TYPE_CHECKING:
    from ..rules._intensity import RestartIntensity
    from ..rules._retry import RetrySchedule
    from ._tree import Tree


class _Restarts:
    """The exit handling of :class:`~._supervisor._Supervisor` (a mixin: it uses the
    supervisor's children, tree and context)."""

    _tree: Tree
    _spec: SupervisorSpec
    _path: str
    _dynamic: bool
    _children: list[_Child]
    _by_ref: dict[actors.ActorRef[Any], _Child]
    _intensity: RestartIntensity
    _backoff: RetrySchedule

    if TYPE_CHECKING:

        @property
        def context(self) -> actors.ActorContext: ...

        async def _stop_child(
            self, child: _Child, *, grace: float | None = ..., reason: Any = ...
        ) -> None: ...

        async def _stop_children(self, children: Any) -> None: ...

        async def _spawn(self, child: _Child) -> actors.ActorRef[Any] | None: ...

        def _forget(self, child: _Child) -> None: ...

        def _find(self, ref: actors.ActorRef[Any]) -> _Child | None: ...

        def _ignored(self, child: _Child) -> None: ...

        def _named(self, name: str) -> _Child: ...

    # -- exits ------------------------------------------------------------------------------------

    async def _child_failed(self, ref: actors.ActorRef[Any], error: Exception) -> None:
        child = self._find(ref)
        if child is None:
            return  # a stale report from a child already stopped or replaced
        if isinstance(child.spec, SupervisorSpec) and isinstance(
            error, SupervisorGaveUp | SupervisorShutdown
        ):
            await self._supervisor_exited(child, error)
            return
        self._tree.events.publish(ChildCrashed(path=child.path, at=_now(), error=error))
        if child.spec.restart is Restart.TEMPORARY:
            await self._stop_child(child, reason=error)
            self._forget(child)
            await self._exited_by_itself(child)
            return
        child.state = ChildState.RESTARTING
        if child.path in self._tree._services:
            # The caller whose request crashed the service records that failure in its breaker
            # when it resumes, in the same scheduling batch as this message: let it run first.
            await trio.lowlevel.checkpoint()
            if self._park(child):
                return
        await self._restart(child, error)

    async def _supervisor_exited(
        self, child: _Child, error: SupervisorGaveUp | SupervisorShutdown
    ) -> None:
        # A child supervisor that gave up or shut down exits with OTP's reason ``shutdown``: a
        # normal exit for a transient or temporary child (not restarted), not for a permanent one.
        if child.spec.restart is Restart.PERMANENT:
            self._tree.events.publish(ChildCrashed(path=child.path, at=_now(), error=error))
            child.state = ChildState.RESTARTING
            await self._restart(child, error)
            return
        await self._stop_child(child, reason=error)
        if child.spec.restart is Restart.TEMPORARY:
            self._forget(child)
        await self._exited_by_itself(child)

    async def _child_exited(self, ref: actors.ActorRef[Any], reason: BaseException | None) -> None:
        child = self._find(ref)
        if child is None:
            return  # stopped by this supervisor, or stale
        self._by_ref.pop(ref, None)
        child.ref = None
        self._tree.events.publish(ChildStopped(path=child.path, at=_now(), reason=reason))
        if child.pending is not None:
            return  # waiting for its restart: it comes back in a new slot when that falls due
        child.state = ChildState.TERMINATED
        restart = child.spec.restart
        if restart is Restart.TEMPORARY:
            self._forget(child)
            await self._exited_by_itself(child)
            return
        if restart is Restart.TRANSIENT and reason is None:
            await self._exited_by_itself(child)
            return
        child.state = ChildState.RESTARTING
        await self._restart(child, reason)

    async def _exited_by_itself(self, child: _Child) -> None:
        """A child ended by itself and is not restarted: shut down if it was significant and
        ``auto_shutdown`` says so (never for a terminate_child or a group restart's stops)."""
        others = (
            other.state is not ChildState.TERMINATED
            for other in self._children
            if other is not child and other.spec.significant
        )
        if not auto_shutdown_due(
            self._spec.auto_shutdown, significant=child.spec.significant, others_alive=others
        ):
            return
        self._tree.events.publish(
            AutoShutdownTriggered(path=self._path, at=_now(), significant=child.path)
        )
        shutdown = SupervisorShutdown(self._path, child.path)
        if self._path == self._tree.spec.name:
            self._tree._root_shut_down()
        self._cancel_timers()
        await self._stop_children(reversed(self._children))
        self._tree._supervisors.pop(self._path, None)
        raise shutdown

    # -- parking (the breaker is open) ----------------------------------------------------------

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
        due = _ProbationDue(child.name, child.generation)
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
                await self._restart(child, exc)

    # -- restarting -------------------------------------------------------------------------------

    async def _restart(self, crashed: _Child, error: BaseException | None) -> None:
        """Restart ``crashed`` (and its group, per the strategy), within the intensity, after the
        backoff: at once, or when its timer sends ``_TryAgain``."""
        if self.context.stopping:
            return  # this supervisor is shutting down: its children stop, none restarts
        now = _now()
        if not self._intensity.record(now):
            await self._give_up(error)
        delay = self._backoff.base_delay(self._intensity.recent(now), self._tree._rng)
        pending = _Pending(error=error, delay=delay)
        group = await self._take_down(crashed)
        for child in group:
            child.pending = pending
            child.state = ChildState.RESTARTING
        self._tree.events.publish(
            RestartScheduled(
                path=crashed.path,
                at=now,
                delay=delay,
                group=tuple(child.path for child in group),
            )
        )
        if delay > 0:
            pending.timer = self._tree._after(
                self.context.self_ref, now + delay, _TryAgain(pending)
            )
            return
        await self._try_again(_TryAgain(pending))

    async def _take_down(self, crashed: _Child) -> list[_Child]:
        """The group that restarts with ``crashed``, in start order, its running members
        suspended (in reverse start order, mailboxes kept). Every non-temporary child in the
        strategy's range belongs to it (also one stopped by ``terminate_child``: OTP restarts
        every non-temporary spec of the group); temporary bystanders are stopped and forgotten,
        never restarted (OTP's ``temporary_bystander``)."""
        strategy = self._spec.strategy
        if strategy is Strategy.ONE_FOR_ONE or strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            return [crashed]
        start = 0 if strategy is Strategy.ONE_FOR_ALL else self._children.index(crashed)
        span = self._children[start:]
        system = self.context.system
        for child in reversed(span):
            if child is crashed:
                continue
            if child.spec.restart is Restart.TEMPORARY:
                await self._stop_child(child)
                self._forget(child)
            elif child.ref is not None and child.state is ChildState.RUNNING:
                child.state = ChildState.RESTARTING
                with contextlib.suppress(Exception):  # its on_stop failed: suspended anyway
                    await system.suspend(child.ref, grace=child.grace)
        return [child for child in span if child is crashed or child in self._children]

    async def _try_again(self, message: _TryAgain) -> None:
        """A pending restart fell due: restart its children that still wait for it, in start
        order. ``message.failed``: a start failed, so restart again from that child (counted)."""
        pending = message.pending
        members = [child for child in self._children if child.pending is pending]
        if not members or self.context.stopping:
            return
        failed = message.failed
        if failed is not None and failed in members:
            await self._restart(failed, pending.error)
            return
        for index, child in enumerate(members):
            try:
                await self._revive(child, delay=pending.delay)
            except Exception as exc:  # a failed start: one more crash, tried again as a message
                self._tree.events.publish(ChildCrashed(path=child.path, at=_now(), error=exc))
                retry = _Pending(error=exc, delay=0.0)
                for waiting in members[index:]:
                    waiting.pending = retry
                with contextlib.suppress(actors.ActorStopped):
                    self.context.self_ref.tell(_TryAgain(retry, failed=child))
                return
            child.pending = None

    async def _revive(self, child: _Child, *, delay: float, probation: bool = False) -> None:
        """Bring ``child`` back: a fresh instance in its slot, or a new slot if it has none."""
        ref = child.ref
        if ref is not None and ref.is_alive:
            try:
                await self.context.system.restart(ref, grace=child.grace)
            except Ignore:
                await self._stop_child(child, grace=0)
                self._ignored(child)
                return
            child.restarts += 1
            child.state = ChildState.RUNNING
        else:
            child.restarts += 1  # before the spawn, so its ChildStarted tells the restart count
            if await self._spawn(child) is None:
                child.restarts -= 1
                return
        child.pending = None
        self._tree.events.publish(
            ChildRestarted(
                path=child.path,
                at=_now(),
                restarts=child.restarts,
                delay=delay,
                probation=probation,
            )
        )

    def _cancel_timers(self) -> None:
        for child in self._children:
            pending = child.pending
            if pending is not None and pending.timer is not None:
                pending.timer.cancel()

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
        self._cancel_timers()
        await self._stop_children(reversed(self._children))
        self._tree._supervisors.pop(self._path, None)
        raise failure
