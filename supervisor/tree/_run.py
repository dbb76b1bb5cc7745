"""Running a supervision tree: :func:`run_tree` starts the :class:`~supervisor.Tree` of a spec,
yields it, and stops it in order when the block ends, whatever ends it (the body, a cancelled
scope around it, the root giving up or shutting itself down, ``KeyboardInterrupt``).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio

import actors

from .._errors import ConfigError, shown
from .._groups import leaves, raise_sole_leaf
from ..observe._bus import EventBus
from ..observe._metrics import Metrics
from ..store._base import Store
from ._specs import SupervisorSpec
from ._tree import Tree


@asynccontextmanager
async def run_tree(
    spec: SupervisorSpec,
    *,
    system: actors.ActorSystem | None = None,
    events: EventBus[Any] | None = None,
    rng: random.Random | None = None,
    metrics: bool | Metrics = True,
    store: Store | None = None,
) -> AsyncIterator[Tree]:
    """Start the tree of ``spec`` and yield it; stop it in order when the block ends.

    Args:
        spec: the root supervisor.
        system: the actor system to run in (default: a new one, shut down on exit).
        events: the bus to publish on (default: a new one, ``tree.events``).
        rng: randomness for backoff jitter (inject a seeded one for repeatable runs).
        metrics: ``True`` (default): a :class:`~supervisor.observe._metrics.Metrics` with default
            options listens to the tree (``tree.metrics``, ``tree.snapshot()``) and runs the
            services' health checks; a ``Metrics`` object: that one; ``False``: none.
        store: where every service's breaker and throttle keep their state, keyed by the
            service's path (default: each its own). With a :class:`~supervisor.RedisStore`,
            every process running a tree with the same service paths shares one breaker and one
            rate limit per service (``docs/scale-out.md``); bulkheads stay local. The store's
            own events go to its listeners (``store.add_listener(tree.events.publish)`` puts
            them on the tree's bus).

    Raises:
        Exception: what a child's start raised, if the tree could not start.
        SupervisorGaveUp: the root supervisor exceeded its restart intensity; the block was
            cancelled.

    When the root shuts itself down (``auto_shutdown``), the block is cancelled and ``run_tree``
    ends normally, with ``tree.shut_down`` true.

    Cancellation and ``KeyboardInterrupt``: whether the body is cancelled, a scope around
    ``run_tree`` is (``with trio.move_on_after(30): async with run_tree(spec): ...``), or
    ``KeyboardInterrupt`` is raised, the tree is first stopped in order (shielded: children
    before parents, in reverse start order, each child within its ``shutdown``), then the actor
    system (if ``run_tree`` made it) stops what is left, and only then the exception goes on:
    the cancelled scope still catches its cancellation, ``KeyboardInterrupt`` still propagates.
    A ``KeyboardInterrupt`` or ``SystemExit`` raised by a child's handler leaves as itself too,
    not grouped with the errors its callers got because of it.
    """
    if not isinstance(spec, SupervisorSpec):
        raise ConfigError(f"`spec` must be a SupervisorSpec (got {shown(spec)})")
    if store is not None and not isinstance(store, Store):
        raise ConfigError(f"`store` must be a MemoryStore or a RedisStore (got {shown(store)})")
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
                store=store,
            )
            if metrics is not False:
                watcher = Metrics() if metrics is True else metrics
                watcher.attach(tree)
                tree.metrics = watcher
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
        # The timers' nursery wraps whatever leaves the block; one source leaves as itself, and
        # KeyboardInterrupt or SystemExit leave as themselves whatever came with them (a handler's
        # Ctrl-C also stops the callers' asks, whose ActorStopped is only its consequence).
        fatal = [leaf for leaf in leaves(group) if isinstance(leaf, KeyboardInterrupt | SystemExit)]
        if fatal:
            raise fatal[0] from group
        raise_sole_leaf(group)
