"""Fault injection's trio shell: :class:`FaultInjector` and the :func:`inject_faults` decorator.

The shell reads ``trio.current_time()``, asks the pure :class:`~supervisor.cores.FaultCore` for a
decision, sleeps the decided latency with ``trio.sleep``, and raises the decided error or returns
the decided result. The supervision tree drives the same injector from inside a service actor
(``supervisor/tree/_faulty.py``), so an injected error there is a crash of the actor, as a real
dependency's error would be.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Container, Iterable
from typing import Any, ParamSpec, TypeVar

import trio

from .._errors import ConfigError
from ..rules._faults import (
    NO_FAULT,
    Fault,
    FaultCore,
    FaultDecision,
    FaultFlags,
    FaultPoint,
    fault_flags,
)
from ._decorate import decorate

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["FaultInjector", "inject_faults"]

FaultListener = Callable[[Fault, float], object]
"""Called as ``listener(fault, at)`` for every fault that fires, at the trio time it fired."""


def _check_seed(seed: object) -> int | str | None:
    if seed is None or (isinstance(seed, int | str) and not isinstance(seed, bool)):
        return seed
    raise ConfigError(f"`seed` must be an integer or a string (got {seed!r})")


class FaultInjector:
    """Injects :class:`~supervisor.Fault` s into calls: errors, latency, replaced results.

    Args:
        faults: the faults, in order (see :class:`~supervisor.cores.FaultCore` for how one
            decision is made).
        seed: seeds the random source of the rates (``None``: unseeded), so a run is repeatable.
        rng: the random source itself (instead of ``seed``).
        flags: the flags that gate faults with a ``flag`` (default: the process-wide
            :data:`~supervisor.fault_flags`).
        origin: the trio time windows are measured from (default: the time of the first decision
            that needs it; see :meth:`set_origin`).
        listener: called as ``listener(fault, at)`` for every fault that fires.

    Raises:
        ConfigError: a bad fault, seed, or both ``seed`` and ``rng``.
    """

    __slots__ = ("_listener", "_timed", "core", "flags", "origin", "rng")

    def __init__(
        self,
        faults: Iterable[Fault],
        *,
        seed: int | str | None = None,
        rng: random.Random | None = None,
        flags: FaultFlags | None = None,
        origin: float | None = None,
        listener: FaultListener | None = None,
    ) -> None:
        self.core = FaultCore(faults)
        """The pure decision."""
        if rng is not None and seed is not None:
            raise ConfigError("give `seed` or `rng`, not both")
        if flags is not None and not isinstance(flags, FaultFlags):
            raise ConfigError(f"`flags` must be a FaultFlags (got {flags!r})")
        self.rng = rng if rng is not None else random.Random(_check_seed(seed))
        """The random source of the rates."""
        self.flags: Container[str] = fault_flags if flags is None else flags
        """The flags read by each decision."""
        self.origin = origin
        """The trio time windows are measured from (``None`` until the first decision)."""
        self._listener = listener
        self._timed = self.core.timed(FaultPoint.REQUEST)

    def set_origin(self, at: float) -> None:
        """Measure windows from trio time ``at`` from now on."""
        self.origin = at

    def decide(
        self, *, point: FaultPoint = FaultPoint.REQUEST, rng: random.Random | None = None
    ) -> FaultDecision:
        """The decision for one call now (the firings are counted and reported to the listener).

        ``rng`` replaces the injector's random source for this one decision (a request that
        carries its own source gets the same decision whatever order concurrent requests are
        decided in).
        """
        core = self.core
        elapsed = self._elapsed() if core.timed(point) else 0.0
        decision = core.decide(elapsed, self.flags, self.rng if rng is None else rng, point)
        if decision is not NO_FAULT:
            self._report(decision)
        return decision

    def _elapsed(self) -> float:
        now = trio.current_time()
        origin = self.origin
        if origin is None:
            self.origin = origin = now
        return now - origin

    def _report(self, decision: FaultDecision) -> None:
        listener = self._listener
        if listener is not None:
            at = trio.current_time()
            for fault in decision.fired:
                listener(fault, at)

    async def apply(self, decision: FaultDecision) -> Any:
        """Carry out ``decision`` before the call: sleep its delay, then raise its error.

        Returns:
            the decided result, or :data:`NO_RESULT` when the call should run.

        Raises:
            Exception: the decided error (a new instance).
            trio.Cancelled: the sleep was cancelled.
        """
        if decision.delay > 0.0:
            await trio.sleep(decision.delay)
        fault = decision.fault
        if fault is None:
            return NO_RESULT
        if fault.error is not None:
            raise fault.make_error()
        return fault.result

    async def run(
        self, call: Callable[[], Awaitable[Any]], *, rng: random.Random | None = None
    ) -> Any:
        """Run ``call()`` under one request decision (:meth:`decide`): its latency first, then
        its error or result instead of the call, else the call's own outcome."""
        core = self.core
        # decide(), inlined: this is the decorated function's request path.
        elapsed = self._elapsed() if self._timed else 0.0
        decision = core.decide(elapsed, self.flags, self.rng if rng is None else rng)
        if decision is NO_FAULT:
            return await call()
        self._report(decision)
        result = await self.apply(decision)
        if result is NO_RESULT:
            return await call()
        return result

    def __repr__(self) -> str:
        return f"<FaultInjector {len(self.core.faults)} faults, fired {self.core.fired}>"


class _NoResultType:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_RESULT"


NO_RESULT: Any = _NoResultType()
"""What :meth:`FaultInjector.apply` returns when the call itself should run."""


def inject_faults(
    *faults: Fault,
    seed: int | str | None = None,
    flags: FaultFlags | None = None,
    origin: float | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: inject ``faults`` into every call of an ``async def`` function.

    Each call gets one decision (see :class:`FaultInjector`): the latency of the latency faults
    that fire is slept first (``trio.sleep``, so a caller's deadline cancels it), then an error
    fault raises ``error(message)``, a result fault returns its ``result`` without calling the
    function; otherwise the function runs. Windows are measured from ``origin`` (default: the
    first call). Each decorated function gets its own injector, exposed as
    ``fn.fault_injector`` (counts in ``fn.fault_injector.core.fired``).

    Raises:
        ConfigError: a bad fault or seed (at this call).
        TypeError: the decorated function is a plain function (faults need trio's clock and
            sleep), or a fault is at the ``start`` point (only service actors have starts).
    """
    checked = FaultCore(faults).faults
    for fault in checked:
        if fault.point is not FaultPoint.REQUEST:
            raise TypeError(
                f"@inject_faults injects at requests only (got point {fault.point.value!r})"
            )
    _check_seed(seed)

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        injector = FaultInjector(checked, seed=seed, flags=flags, origin=origin)
        return decorate(
            fn,
            rule="inject_faults",
            around_async=injector.run,
            around_sync=None,
            extra={"fault_injector": injector},
        )

    return decorator
