"""Guarded services: the rules of one service of a supervision tree, built from its spec.

A :class:`GuardedService` is made by the supervision tree for each
:class:`~supervisor.ServiceSpec` child. It owns the service's rule objects (one throttle,
one :class:`~supervisor.CircuitBreaker` named after the service's path, one bulkhead count, one
retry schedule, one fallback cache, the fault injector) and drives their pure cores on the
caller's side of every request, through the steps of its base,
:class:`~supervisor.tree._request_path.RequestPath` (``_request_path.py`` states the path). Users
reach it through its public handle, :class:`ServiceRef`; the tree through
:meth:`GuardedService.spawn_options`, :meth:`~GuardedService.attach` and
:meth:`~GuardedService.park_until`.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..guards._breaker import CircuitBreaker
from ..guards._throttle import Throttle
from ..rules._breaker import CircuitState
from ..rules._bulkhead import BulkheadCore
from ..rules._cache import TtlLruCache
from ..rules._rate_breaker import RateBreakerCore
from ..store._base import Store
from ._faulty import service_injector
from ._limits import adaptive_bulkhead_for
from ._refusals import RefusalStreak
from ._request_path import RequestPath
from ._service_ref import ServiceRef
from ._service_rules import RetryStep, breaker_options
from ._specs import ServiceSpec

if TYPE_CHECKING:
    from actors import ActorRef

    from ..observe._bus import EventBus
    from ..observe._completions import CompletionLog

__all__ = ["GuardedService", "ServiceStatistics"]


@attrs.frozen(kw_only=True)
class ServiceStatistics:
    """A snapshot of one guarded service (see :meth:`ServiceRef.statistics`)."""

    path: str
    """The service's path in the tree."""
    state: CircuitState | None
    """The breaker's state now, or ``None`` for a service without a breaker."""
    in_flight: int
    """Requests admitted by the bulkhead and counted as running (at most ``max_concurrent``)."""
    queued: int
    """Requests admitted by the bulkhead and counted as waiting in the mailbox (at most
    ``max_queued``)."""
    completed: int
    """Calls answered by the service actor (on any attempt)."""
    failed: int
    """Calls whose last attempt failed (whether or not the fallback then answered)."""
    refused: int
    """Calls refused by the throttle, the breaker or the bulkhead (whether or not the fallback
    then answered)."""
    fallbacks: int
    """Calls answered by the fallback."""
    retries: int
    """Retries scheduled, over all calls."""
    retries_refused: int = 0
    """Retries the service's retry budget refused (each such call failed at once)."""
    concurrency_limit: int | None = None
    """The adaptive limit of the bulkhead now (``None``: the bulkhead is fixed)."""


class GuardedService(RequestPath):
    """The rules of one service and the request path through them (used by the tree).

    Args:
        spec: the service's spec (its rules; ``spec.name`` is the last part of ``path``).
        path: the service's path in the tree, e.g. ``"app/backend/payments"``; also the name of
            its breaker, of the errors its rules raise, and the ``path`` of its events.
        bus: where :class:`~supervisor.observe._events.RequestCompleted`, ``RequestFailed``,
            ``RequestRefused``, ``RetryScheduled``, ``FallbackUsed`` and the breaker's
            :class:`~supervisor.CircuitStateChange` events go.
        rng: the random source of the retry jitter (default: a fresh :class:`random.Random`).
        store: where the breaker's and the throttle's state lives, keyed by ``path`` (default:
            a state of their own); with a :class:`~supervisor.RedisStore`, the same service
            path in every process of the fleet is one breaker and one rate limit.
        refusal_span: seconds per rate bucket of the tree's metrics, so that no refusal streak
            spans two (default 1.0; see ``_refusals.py``).
        completions: the log the tree's metrics count answered requests from (default
            ``None``: each is published as a ``RequestCompleted``; see ``observe/_completions.py``).

    Raises:
        TypeError: ``spec`` is not a :class:`~supervisor.ServiceSpec`.

    The breaker's listeners, the bus among them, see every state change of the breaker: those the
    request path causes, the lazy OPEN -> HALF_OPEN change (noticed by a request, by
    :meth:`park_until`, or by reading the breaker's ``state``), ``reset()`` and ``force_open()``.
    A listener that raises makes the request that caused the change raise that error (as the
    breaker's own guard does).
    """

    __slots__ = ("_rng", "faults", "handle", "spec")

    def __init__(
        self,
        spec: ServiceSpec,
        *,
        path: str,
        bus: EventBus[Any],
        rng: random.Random | None = None,
        store: Store | None = None,
        refusal_span: float = 1.0,
        completions: CompletionLog | None = None,
    ) -> None:
        if not isinstance(spec, ServiceSpec):
            raise TypeError(f"`spec` must be a ServiceSpec (got {spec!r})")
        self.spec = spec
        self.path = path
        self.timeout = spec.timeout
        """The default timeout of a call, in seconds (``None``: no limit)."""
        self._bus = bus
        self._rng = random.Random() if rng is None else rng
        self._ref = None

        throttle = spec.throttle
        self._throttle = (
            None
            if throttle is None
            else Throttle(
                path, throttle.max_calls, throttle.period, on_limit=throttle.on_limit, store=store
            )
        )
        breaker = spec.breaker
        self._breaker = None
        self._core = None
        if breaker is not None:
            self._breaker = CircuitBreaker(
                path,
                breaker.failure_threshold,
                breaker.success_threshold,
                breaker.timeout,
                breaker.expected_exception,
                half_open_max_calls=breaker.half_open_max_calls,
                store=store,
                **breaker_options(breaker),
            )
            self._breaker.add_listener(bus.publish)
            self._core = self._breaker.core
        self._measured = isinstance(self._core, RateBreakerCore)
        self._refuses_first = None if spec.throttle is not None else self._core
        self._bulkhead: BulkheadCore[trio.lowlevel.Task] = BulkheadCore(
            spec.bulkhead.max_concurrent, spec.bulkhead.max_queued
        )
        self._adaptive = adaptive_bulkhead_for(spec.bulkhead, path)
        if self._adaptive is not None:
            self._bulkhead = self._adaptive.core  # the same slots, moved by the limit
        self._hedge = None if spec.hedge is None else spec.hedge.core()
        self._retry = (
            None if spec.retry is None else RetryStep(spec.retry, bus=bus, path=path, rng=self._rng)
        )
        fallback = spec.fallback
        self._fallback = fallback
        self._cache = (
            None
            if fallback is None or fallback.cache_ttl is None
            else TtlLruCache(fallback.cache_ttl, fallback.cache_maxsize)
        )
        self.completed = 0
        self.completions = completions
        self.failed = 0
        self.fallbacks = 0
        self.retries = 0
        self._refusals = RefusalStreak(bus, path, span=refusal_span)
        self.faults = service_injector(spec.faults, path=path, bus=bus, rng=self._rng)
        """The injector of the spec's faults (``None`` without faults)."""
        self.handle = ServiceRef(self)
        """The public handle users call."""

    # -- the tree's side ------------------------------------------------------------------------

    def spawn_options(self) -> dict[str, Any]:
        """The options the tree passes to ``ActorSystem.spawn`` for this service's actor.

        ``mailbox_size = max_concurrent + max_queued`` (the requests the bulkhead can admit, so a
        mailbox filled only by this service's callers never overflows), ``overflow="reject"``,
        and ``max_concurrency = max_concurrent``.
        """
        bulkhead = self.spec.bulkhead
        return {
            "mailbox_size": max(1, bulkhead.max_concurrent + bulkhead.max_queued),
            "overflow": "reject",
            "max_concurrency": bulkhead.max_concurrent,
        }

    def attach(self, ref: ActorRef[Any]) -> None:
        """Send requests to ``ref`` from now on (called after every spawn of the service actor).

        Until a ref is attached, every attempt fails with :class:`~actors.ActorStopped`.
        """
        self._ref = ref

    @property
    def ref(self) -> ActorRef[Any] | None:
        """The attached service actor, if any."""
        return self._ref

    def park_until(self, now: float) -> float | None:
        """Where the service actor crashed at ``now``: when to restart it.

        Returns:
            ``None`` when there is no breaker or it is not OPEN at ``now`` (restart as usual);
            else the trio time the breaker turns half-open (``math.inf`` while it is forced
            open), at which the tree restarts the parked child on probation.

        A due OPEN -> HALF_OPEN change is applied (and published) first. Only failures already
        recorded count: a crash is recorded by the caller whose request crashed the actor, when
        that caller's task resumes (in the scheduling batch after the crash), so the tree should
        let one batch pass (any checkpoint) between ``child_failed`` and this call.
        """
        core = self._core
        if core is None:
            return None
        state = core.state_at(now)
        self._flush()
        if state is not CircuitState.OPEN:
            return None
        return core.half_open_at  # inf while forced open

    # -- inspection -----------------------------------------------------------------------------

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The service's breaker (named after its path), or ``None``."""
        return self._breaker

    def statistics(self) -> ServiceStatistics:
        """A snapshot of the service (reading it may apply and publish a due half-open, and ends
        a refusal streak, publishing its count)."""
        self._refusals.end()
        bulkhead = self._bulkhead
        plan = self._retry
        return ServiceStatistics(
            path=self.path,
            state=None if self._breaker is None else self._breaker.state,
            in_flight=bulkhead.running,
            queued=bulkhead.queued,
            completed=self.completed,
            failed=self.failed,
            refused=self._refusals.total,
            fallbacks=self.fallbacks,
            retries=self.retries,
            retries_refused=0 if plan is None else plan.refused,
            concurrency_limit=None if self._adaptive is None else self._adaptive.limit,
        )

    def __repr__(self) -> str:
        return f"<GuardedService {self._describe()}>"

    def _describe(self) -> str:
        bulkhead = self._bulkhead
        breaker = self._breaker
        state = "" if breaker is None else f" {breaker.state.value}"
        return (
            f"{self.path!r}{state}, {bulkhead.running}/{bulkhead.max_concurrent} in flight, "
            f"{bulkhead.queued}/{bulkhead.max_queued} queued"
        )
