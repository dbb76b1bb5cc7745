"""Where rule state lives: the store interface, and the in-memory store (the default).

A rule shell (``CircuitBreaker``, ``Throttle``) asks its store for the pure core it drives, by
name. Two shells that ask the same store for the same name get one rule: with a
:class:`MemoryStore` that is one core object in this process; with a
:class:`~supervisor.store.RedisStore` it is one rule across every process that uses the same
server and prefix. A rule given no store has a core of its own, as if it had a
``MemoryStore`` to itself: today's behaviour.

.. note:: Bulkheads have no store, on purpose: a bulkhead protects *this process's* resources
   (its connections, its memory, its event loop), so its slots are always local.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Protocol

import attrs

from .._errors import ConfigError, shown
from ..rules._breaker import BreakerCore, ExceptionTypes
from ..rules._window import SlidingWindowCore

__all__ = ["BreakerSettings", "FleetThrottleLink", "MemoryStore", "Store", "ThrottleBinding"]


@attrs.frozen(kw_only=True)
class BreakerSettings:
    """The settings of one breaker, as a store compares them (one rule, one set of settings)."""

    failure_threshold: int
    """Counted failures in a row that open the breaker."""
    success_threshold: int
    """Successful trial calls that close it."""
    timeout: float
    """Seconds from opening to half-open."""
    half_open_max_calls: int
    """Trial calls at once while half-open."""
    expected_exception: tuple[type[BaseException], ...]
    """The exception classes that count as failures."""

    @classmethod
    def of(cls, core: BreakerCore) -> BreakerSettings:
        """The settings ``core`` was made with."""
        return cls(
            failure_threshold=core.failure_threshold,
            success_threshold=core.success_threshold,
            timeout=core.timeout,
            half_open_max_calls=core.half_open_max_calls,
            expected_exception=core.expected_exception,
        )


class FleetThrottleLink(Protocol):
    """How a throttle shell asks a shared store for an admission (one round trip)."""

    async def admit(self, *, wait: bool) -> float | None:
        """Ask the fleet to admit one call now.

        Returns:
            ``None`` when the fleet cannot decide (its server is unreachable): the shell decides
            with its local core. ``0.0`` when the call is admitted (with ``wait``, after sleeping
            until its booked slot). Else (without ``wait``) the ``retry_after``, in seconds,
            after which the fleet would admit it.
        """
        ...  # pragma: no cover - a protocol


@attrs.frozen(kw_only=True)
class ThrottleBinding:
    """What a store gives a throttle shell: the local window, and the fleet's link if shared."""

    core: SlidingWindowCore
    """The local sliding window (used alone without a fleet, and as the fallback with one)."""
    fleet: FleetThrottleLink | None
    """The fleet's admission, or ``None`` for a store kept in this process."""


class Store(abc.ABC):
    """Where the state of breakers and throttles lives; see the module docstring."""

    @abc.abstractmethod
    def breaker_core(
        self,
        *,
        name: str,
        failure_threshold: int,
        success_threshold: int,
        timeout: float,
        half_open_max_calls: int,
        expected_exception: ExceptionTypes,
        on_change: Callable[[], object] | None = None,
    ) -> BreakerCore:
        """The core of the breaker ``name``: made on the first request, the same one after.

        ``on_change`` is called (with no argument) after the store changed the core from
        outside a call (a fleet decision), so that the owner publishes the core's changes.

        Raises:
            ConfigError: a bad setting, or ``name`` is already a breaker of this store with
                other settings.
        """

    @abc.abstractmethod
    def throttle_binding(self, *, name: str, max_calls: int, period: float) -> ThrottleBinding:
        """The state of the throttle ``name``: made on the first request, the same one after.

        Raises:
            ConfigError: a bad setting, or ``name`` is already a throttle of this store with
                other settings.
        """


def check_name(kind: str, name: object) -> str:
    """``name`` if it is a non-empty string, else :class:`ConfigError` naming it."""
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"`name` of a stored {kind} must be a non-empty string (got {shown(name)})"
        )
    return name


def check_same(kind: str, name: str, had: object, asked: object) -> None:
    """:class:`ConfigError` if one rule is asked for with settings other than it has."""
    if had != asked:
        raise ConfigError(
            f"{kind} {name!r} is already in this store with other settings "
            f"(has {had!r}, asked for {asked!r})"
        )


class MemoryStore(Store):
    """Rule state kept in this process: the default, and today's behaviour.

    Breakers (or throttles) given the same ``MemoryStore`` and the same name share one core;
    rules given no store keep a core of their own. Nothing here does I/O or reads a clock.
    """

    def __init__(self) -> None:
        self._breakers: dict[str, BreakerCore] = {}
        self._throttles: dict[str, SlidingWindowCore] = {}

    def breaker_core(
        self,
        *,
        name: str,
        failure_threshold: int,
        success_threshold: int,
        timeout: float,
        half_open_max_calls: int,
        expected_exception: ExceptionTypes,
        on_change: Callable[[], object] | None = None,
    ) -> BreakerCore:
        """See :meth:`Store.breaker_core` (nothing outside a call ever changes a memory core,
        so ``on_change`` is never called)."""
        check_name("breaker", name)
        core = BreakerCore(
            name=name,
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            timeout=timeout,
            half_open_max_calls=half_open_max_calls,
            expected_exception=expected_exception,
        )
        existing = self._breakers.get(name)
        if existing is None:
            self._breakers[name] = core
            return core
        check_same("breaker", name, BreakerSettings.of(existing), BreakerSettings.of(core))
        return existing

    def throttle_binding(self, *, name: str, max_calls: int, period: float) -> ThrottleBinding:
        """See :meth:`Store.throttle_binding`; the binding has no fleet link."""
        check_name("throttle", name)
        core = SlidingWindowCore(max_calls, period)
        existing = self._throttles.get(name)
        if existing is None:
            self._throttles[name] = core
            return ThrottleBinding(core=core, fleet=None)
        check_same(
            "throttle",
            name,
            (existing.max_calls, existing.period),
            (core.max_calls, core.period),
        )
        return ThrottleBinding(core=existing, fleet=None)

    def __repr__(self) -> str:
        return f"<MemoryStore {len(self._breakers)} breakers, {len(self._throttles)} throttles>"
