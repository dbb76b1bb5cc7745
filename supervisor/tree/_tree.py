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
  (restart ``n`` within the intensity window waits the ``n``-th delay) as a timer that messages
  the supervisor (OTP's ``try_again``: it keeps serving calls and stops promptly meanwhile; the
  child is ``restarting``), then, per ``strategy``:
  ``one_for_one`` restarts the child alone; ``one_for_all`` stops every other running child in
  reverse start order (mailboxes kept) and restarts them all in start order; ``rest_for_one`` does
  the same for the crashed child and those started after it (every non-temporary spec in that
  range restarts, also one stopped by ``terminate_child``; a temporary bystander is stopped and
  forgotten). A restarted child keeps its mailbox, so queued requests are served by the new
  instance. ``simple_one_for_one`` supervisors start instances of one template at run time
  (:meth:`Tree.dynamic`).
- **Significant children.** With ``auto_shutdown``, the exit of a significant child on its own
  shuts its supervisor down (a normal exit, OTP's ``shutdown``); when the root does, ``run_tree``
  cancels its body and ends normally.
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
import math
import random
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

import actors

from .._errors import ConfigError, shown
from ..observe._bus import EventBus
from ..observe._metrics import Metrics
from ..observe._snapshot import NodeSnapshot, SystemSnapshot
from ..observe._watched import ServiceFacts
from ..rules._breaker import CircuitState, CircuitStateChange
from ..store._base import Store
from ._children import (
    _SUPERVISOR_MAILBOX,
    AnySpec,
    ChildCount,
    ChildInfo,
    SupervisorShutdown,
    _CountChildren,
    _DeleteChild,
    _ProbationDue,
    _Refused,
    _RestartChild,
    _StartChild,
    _TerminateChild,
    _WhichChildren,
)
from ._dynamic import DynamicSupervisorRef
from ._service import GuardedService, ServiceStatistics
from ._service_ref import ServiceRef
from ._specs import ServiceSpec, SupervisorSpec
from ._supervisor import _Supervisor


class _RootHook:
    """The root supervisor's parent: its failure fails the tree."""

    __slots__ = ("_tree",)

    def __init__(self, tree: Tree) -> None:
        self._tree = tree

    def child_failed(self, ref: actors.ActorRef[Any], error: Exception) -> None:
        if isinstance(error, SupervisorShutdown):
            self._tree._root_shut_down()  # a normal exit: the tree ends, it does not fail
        else:
            self._tree._root_failed(error)


class Tree:
    """A running supervision tree (made by :func:`run_tree`).

    Attributes:
        spec: the root supervisor's spec.
        events: the :class:`EventBus` every transition of the tree is published on.
        system: the actor system the tree lives in.
        metrics: the tree's :class:`~supervisor.observe._metrics.Metrics` (``None`` with
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
        store: Store | None = None,
    ) -> None:
        self.system = system
        self.spec = spec
        self.events = events
        self._rng = rng
        self._nursery = nursery
        self._store = store
        self._services: dict[str, GuardedService] = {}
        self._paths: set[str] = set()  # every child path ever started, for lookup by bare name
        self._supervisors: dict[str, _Supervisor] = {}  # live supervisor instances, by path
        # The handle of every service path still referenced: a service deleted and added again
        # under the same path is reached through the handles taken before.
        self._handles: weakref.WeakValueDictionary[str, ServiceRef] = weakref.WeakValueDictionary()
        self._root: actors.ActorRef[Any] | None = None
        self._body: trio.CancelScope | None = None
        self.failure: BaseException | None = None
        """Why the tree failed (the root gave up), or ``None``."""
        self.shut_down = False
        """Whether the root shut itself down (``auto_shutdown``): the body was cancelled and
        ``run_tree`` ended normally."""
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
            metrics = self.metrics
            service = GuardedService(
                spec,
                path=path,
                bus=self.events,
                rng=self._rng,
                store=self._store,
                refusal_span=1.0 if metrics is None else metrics.bucket_width,
                completions=None if metrics is None else metrics.completion_log(path),
            )
            handle = self._handles.get(path)
            if handle is not None:
                handle._service = service
                service.handle = handle
            self._handles[path] = service.handle
            self._services[path] = service
        return service

    def _forget(self, path: str) -> None:
        # A child was removed from its supervisor: it is no longer a service or a path here, and
        # the metrics keep nothing of it.
        self._services.pop(path, None)
        self._paths.discard(path)
        if self.metrics is not None:
            self.metrics.forget(path)

    def _after(self, supervisor: actors.ActorRef[Any], at: float, message: Any) -> trio.CancelScope:
        """Tell ``message`` to ``supervisor`` at trio time ``at`` (not if it stopped meanwhile);
        cancel the returned scope to call it off."""
        scope = trio.CancelScope()

        async def deliver() -> None:
            with scope:
                await trio.sleep_until(at)
                with contextlib.suppress(actors.ActorStopped):
                    supervisor.tell(message)

        self._nursery.start_soon(deliver)
        return scope

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

    def _root_shut_down(self) -> None:
        self.shut_down = True
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

    # -- what the metrics of the tree read (supervisor.observe's WatchedTree) ---------------

    @property
    def name(self) -> str:
        """The root supervisor's name."""
        return self.spec.name

    def service_facts(self, path: str) -> ServiceFacts | None:
        """What metrics need of the service at ``path`` (``None``: no such service)."""
        service = self._services.get(path)
        if service is None:
            return None
        spec = service.spec
        return ServiceFacts(
            has_breaker=spec.breaker is not None,
            max_queued=spec.bulkhead.max_queued,
            health_check=spec.health_check,
            health_interval=spec.health_interval,
        )

    def service_load(self, path: str) -> ServiceStatistics | None:
        """The live statistics of the service at ``path`` (``None``: no such service); reading
        them applies a due half-open change of its breaker first."""
        service = self._services.get(path)
        return None if service is None else service.handle.statistics()

    def start_background(self, fn: Callable[[], Awaitable[None]], *, name: str) -> None:
        """Run ``fn`` in the tree's nursery; it is cancelled when the tree stops."""
        self._nursery.start_soon(fn, name=name)

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
            f"{shown(name_or_path)} is ambiguous: {', '.join(sorted(matches))}; give the full path"
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
                raise KeyError(
                    f"no single service named {shown(name_or_path)} in {shown(self.spec.name)}"
                )
            path = matches[0]
        return self._services[path].handle

    def services(self) -> dict[str, ServiceRef]:
        """Every guarded service of the tree, by path."""
        return {path: service.handle for path, service in self._services.items()}

    def _parent_of(self, path: str) -> tuple[actors.ActorRef[Any], str]:
        parent, sep, name = path.rpartition("/")
        if not sep:
            raise ValueError(f"{shown(path)} is the root; give the path of a child")
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

    async def start_child(self, parent: str, spec: AnySpec) -> actors.ActorRef[Any] | None:
        """Add ``spec`` as the last child of the supervisor at ``parent`` and start it.

        Returns:
            The new child's actor (for a nested supervisor, the supervisor's actor), or ``None``
            if its start said ignore (:class:`~supervisor.Ignore`): the child is then kept,
            terminated (forgotten if temporary).

        Raises:
            ConfigError: ``spec`` is not a spec; its name is taken among its siblings (the
                message says the sibling's state, e.g. ``restarting``); it is significant under
                a supervisor whose ``auto_shutdown`` is never; ``parent`` is a dynamic
                supervisor (use :meth:`dynamic`).
            Exception: what the child's start raised (nothing is kept then).
        """
        ref: actors.ActorRef[Any] | None = await self._operate(
            self.system.lookup(parent), _StartChild(spec)
        )
        return ref

    async def count_children(self, path: str | None = None) -> ChildCount:
        """How many children the supervisor at ``path`` (default: the root) has (OTP's
        ``count_children``)."""
        supervisor = self.system.lookup(path or self.spec.name)
        result: ChildCount = await supervisor.ask(_CountChildren())
        return result

    def dynamic(self, path: str) -> DynamicSupervisorRef:
        """The handle of the dynamic (``simple_one_for_one``) supervisor at ``path``.

        Raises:
            ConfigError: no supervisor at ``path`` is dynamic.
        """
        supervisor = self._supervisors.get(path)
        if supervisor is None or not supervisor._dynamic:
            raise ConfigError(f"no simple_one_for_one supervisor at {path!r}")
        return DynamicSupervisorRef(self, path)

    async def terminate_child(self, path: str) -> None:
        """Stop the child at ``path`` (its grace period applies). Its spec is kept, so
        :meth:`restart_child` can start it again, except for a temporary child, which is
        forgotten. A child waiting for its restart (``restarting``) has that restart cancelled.
        It never triggers ``auto_shutdown``."""
        supervisor, name = self._parent_of(path)
        await self._operate(supervisor, _TerminateChild(name))

    async def restart_child(self, path: str) -> actors.ActorRef[Any] | None:
        """Start again the terminated child at ``path``; returns its new actor (``None`` if its
        start said ignore).

        Raises:
            ConfigError: the child is not terminated (e.g. ``restarting``).
        """
        supervisor, name = self._parent_of(path)
        ref: actors.ActorRef[Any] | None = await self._operate(supervisor, _RestartChild(name))
        return ref

    async def delete_child(self, path: str) -> None:
        """Forget the terminated child at ``path`` (a service leaves :meth:`services`; one added
        again under the same path is reached through the handles taken before).

        Raises:
            ConfigError: the child is not terminated (e.g. ``restarting``).
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
        Synchronous (see :meth:`~supervisor.observe._metrics.Metrics.snapshot`).

        Raises:
            RuntimeError: the tree runs without metrics (``run_tree(..., metrics=False)``).
        """
        if self.metrics is None:
            raise RuntimeError(f"tree {shown(self.spec.name)} runs without metrics (metrics=False)")
        return self.metrics.snapshot(self, trio.current_time())

    async def stop(self) -> None:
        """Stop the whole tree in order (children before parents, in reverse start order).
        Idempotent."""
        if self._root is not None:
            grace = None if math.isinf(self.spec.shutdown) else self.spec.shutdown
            await self.system.stop(self._root, grace=grace)
