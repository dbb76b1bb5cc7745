"""Fault injection inside a service actor: the tree's shell around :class:`FaultInjector`.

:func:`service_injector` builds a service's injector once (it outlives restarts: its counts, its
random source and its origin, the tree's start, are the service's); :func:`with_faults` wraps the
factory the tree spawns so that each instance it makes runs its ``receive`` (and its start hooks,
for start faults) through the injector. A service without faults gets its factory back unchanged:
nothing is added to its request path.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..guards._faults import NO_RESULT, FaultInjector
from ..observe._fault_events import FaultInjected
from ..rules._faults import NO_FAULT, Fault, FaultPoint

if TYPE_CHECKING:
    from ..observe._bus import EventBus
    from ._fault_specs import FaultSpec
    from ._service import GuardedService

__all__ = ["service_factory", "service_injector", "with_faults"]


def service_injector(
    spec: FaultSpec | None, *, path: str, bus: EventBus[Any], rng: random.Random
) -> FaultInjector | None:
    """The injector of the service at ``path`` (``None`` without faults). Every fault that fires
    is published on ``bus`` as :class:`FaultInjected`. Without a ``seed``, one number is drawn
    from ``rng`` (the tree's source) to seed it."""
    if spec is None or not spec.inject:
        return None
    seed = spec.seed if spec.seed is not None else rng.getrandbits(64)

    def published(fault: Fault, at: float) -> None:
        bus.publish(FaultInjected(path=path, at=at, fault=fault, point=fault.point))

    return FaultInjector(spec.inject, seed=seed, listener=published)


def service_factory(
    factory: Callable[..., Any], service: GuardedService, *, origin: float
) -> Callable[..., Any]:
    """The factory the tree spawns for ``service``: ``factory`` itself without faults, else
    :func:`with_faults` of it, with the spec's ``rng`` and windows measured from ``origin``."""
    injector = service.faults
    if injector is None:
        return factory
    spec = service.spec.faults
    return with_faults(factory, injector, origin=origin, rng_of=None if spec is None else spec.rng)


def with_faults(
    factory: Callable[..., Any],
    injector: FaultInjector | None,
    *,
    origin: float,
    rng_of: Callable[[Any], random.Random] | None = None,
) -> Callable[..., Any]:
    """``factory``, or (with an injector) a factory whose instances run through it.

    Request faults wrap the instance's ``receive``: latency is slept inside the actor (under the
    request's deadline, holding its concurrency slot), an error is raised by ``receive`` (a
    crash), a result is returned instead of calling the real ``receive``. Start faults wrap
    ``on_start`` and ``on_restart`` (one decision per start, whichever hook runs). The injector's
    origin is set to ``origin`` (the tree's start) if it has none.

    Raises:
        TypeError: (when an instance is made) it does not let its hooks be replaced.
    """
    if injector is None:
        return factory
    if injector.origin is None:
        injector.set_origin(origin)
    core = injector.core
    requests, starts = core.has(FaultPoint.REQUEST), core.has(FaultPoint.START)

    def make(*args: Any, **kwargs: Any) -> Any:
        instance = factory(*args, **kwargs)
        try:
            if requests:
                instance.receive = _faulty_receive(instance.receive, injector, rng_of)
            if starts:
                _wrap_starts(instance, injector)
        except AttributeError as exc:
            raise TypeError(
                f"fault injection needs an actor whose hooks can be replaced (got {instance!r})"
            ) from exc
        return instance

    return functools.update_wrapper(make, factory) if hasattr(factory, "__name__") else make


def _faulty_receive(
    receive: Callable[[Any], Any],
    injector: FaultInjector,
    rng_of: Callable[[Any], random.Random] | None,
) -> Callable[[Any], Any]:
    async def faulty(message: Any) -> Any:
        decision = injector.decide(rng=None if rng_of is None else rng_of(message))
        if decision is not NO_FAULT:
            result = await injector.apply(decision)
            if result is not NO_RESULT:
                return result
        return await receive(message)

    return faulty


def _wrap_starts(instance: Any, injector: FaultInjector) -> None:
    on_start, on_restart = instance.on_start, instance.on_restart
    deciding = False  # on_restart may call on_start: one decision per start

    async def start_fault() -> None:
        decision = injector.decide(point=FaultPoint.START)
        if decision is not NO_FAULT:
            await injector.apply(decision)

    async def faulty_start() -> None:
        nonlocal deciding
        if not deciding:
            deciding = True
            try:
                await start_fault()
            finally:
                deciding = False
        await on_start()

    async def faulty_restart(error: Exception | None) -> None:
        nonlocal deciding
        deciding = True
        try:
            await start_fault()
            await on_restart(error)
        finally:
            deciding = False

    instance.on_start = faulty_start
    instance.on_restart = faulty_restart
