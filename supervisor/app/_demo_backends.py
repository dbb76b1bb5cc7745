"""The demo's simulated backends, its tree of guarded services and its chaos schedule."""

from __future__ import annotations

import enum
import random
from typing import Final

import attrs
import trio

import actors

from ..rules._rate_breaker import RateWindow
from ..rules._retry_budget import RetryBudgetConfig
from ..tree._specs import (
    BreakerSpec,
    BulkheadSpec,
    FallbackSpec,
    RestartBackoff,
    RetrySpec,
    ServiceSpec,
    Strategy,
    SupervisorSpec,
)

_KEYS: Final = 8
"""Distinct request keys per service (so cached answers can serve as fallbacks)."""
_BASE_ERROR_RATE: Final = 0.002
"""How often a backend fails when nothing is wrong (each failure crashes its service actor)."""


# -- the simulated backends ------------------------------------------------------------------------


class BackendError(Exception):
    """A simulated backend answered with an error."""


class BackendUnavailable(BackendError):
    """A simulated backend refused the connection (an outage)."""


class StartFailed(Exception):
    """A service actor could not start (the crash loop of the chaos schedule)."""


@attrs.frozen
class Query:
    """A request to a simulated backend: its ``key`` (what equal requests share, so the cache
    fallback can answer it) and the random source of its outcome.

    Every request carries its own source, seeded from the run's seed and the request's place in
    its caller's sequence, so its latencies and errors do not depend on the order in which trio
    happens to run tasks woken at the same moment: the run is repeatable by seed.
    """

    key: str
    rng: random.Random = attrs.field(eq=False, repr=False)


@attrs.define(eq=False)
class _Backend:
    """An in-process fake dependency; the chaos schedule changes its settings."""

    name: str
    latency: float
    """Median latency, in seconds."""
    error_rate: float = _BASE_ERROR_RATE
    slowdown: float = 1.0
    down: bool = False
    poisoned: bool = False
    """The next request crashes the actor (a bug), and its next ``failing_starts`` starts fail."""
    failing_starts: int = 0
    pending_failing_starts: int = 0

    def start(self) -> None:
        """Called by the service actor's ``on_start``; raises :class:`StartFailed` while the crash
        loop lasts."""
        if self.failing_starts > 0:
            self.failing_starts -= 1
            raise StartFailed(f"{self.name}: cannot load its configuration")

    async def handle(self, request: Query) -> str:
        """Answer ``request`` after a simulated latency, or raise :class:`BackendError`."""
        if self.poisoned:
            self.poisoned = False
            self.failing_starts = self.pending_failing_starts
            raise RuntimeError(f"{self.name}: corrupted state (a bug)")
        # Drawn together, so each attempt takes exactly two draws whatever happens.
        spread = request.rng.random()
        failing = request.rng.random() < self.error_rate
        if self.down:
            await trio.sleep(0.0005 + spread * 0.001)
            raise BackendUnavailable(f"{self.name}: connection refused")
        await trio.sleep(self.latency * self.slowdown * (0.5 + spread * spread * 2.5))
        if failing:
            raise BackendError(f"{self.name}: internal error")
        return f"{self.name}:{request.key}"


class _ServiceActor(actors.Actor[Query]):
    """The service actor of one backend: its ``receive`` is the backend's answer (an error of the
    backend is a crash of the actor, as with any client)."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    async def on_start(self) -> None:
        self._backend.start()

    async def receive(self, message: Query) -> str:
        return await self._backend.handle(message)


# -- the tree and the schedule ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Plan:
    """One service of the demo: where it sits, how its backend behaves, how often it is called."""

    supervisor: str
    name: str
    latency: float
    interval: float
    """Seconds between two calls of its caller."""
    fallback: FallbackSpec | None
    failure_threshold: int = 3
    max_concurrent: int = 4
    max_queued: int = 8
    window: RateWindow | None = None
    """Open the breaker on the failure rate of this window instead of ``failure_threshold``
    failures in a row."""
    retry_budget: RetryBudgetConfig | None = None
    """Keep the service's retries under this share of its recent first attempts."""


def _degraded_payment(request: Query) -> str:
    """Degraded answer of ``payments``: accept now, charge later."""
    return f"payments:{request.key}:queued-for-later"


# Intervals are irregular on purpose: no two events of the simulation fall on the same instant, so
# the order of tasks woken together never decides an outcome (the run is repeatable by seed).
_PLANS: Final = (
    _Plan(
        supervisor="frontend",
        name="api-gateway",
        latency=0.02,
        interval=0.0473,
        fallback=FallbackSpec(default="gateway:static-page"),
        failure_threshold=5,
        max_concurrent=4,
        max_queued=4,
    ),
    _Plan(
        supervisor="frontend",
        name="auth",
        latency=0.015,
        interval=0.0977,
        fallback=FallbackSpec(cache_ttl=30.0),
        failure_threshold=5,
    ),
    _Plan(
        supervisor="backend",
        name="db",
        latency=0.03,
        interval=0.0791,
        fallback=FallbackSpec(cache_ttl=60.0),
        # Half of the last 6 queries failing opens the breaker; and its retries stay under 10%
        # of recent queries (+0.2/s), so the burst is no retry storm.
        window=RateWindow(size=6, failure_rate=0.5),
        retry_budget=RetryBudgetConfig(ratio=0.1, min_per_second=0.2, window=5.0),
    ),
    _Plan(supervisor="backend", name="cache", latency=0.005, interval=0.0619, fallback=None),
    _Plan(
        supervisor="backend",
        name="payments",
        latency=0.06,
        interval=0.1931,
        fallback=FallbackSpec(degraded=_degraded_payment),
    ),
    _Plan(
        supervisor="backend",
        name="search",
        latency=0.04,
        interval=0.1163,
        fallback=FallbackSpec(cache_ttl=10.0),
    ),
)

_RETRY: Final = RetrySpec(max_attempts=3, initial_delay=0.05, max_delay=0.4, jitter=False)
_TIMEOUT: Final = 0.5
_BACKOFF: Final = RestartBackoff(initial_delay=0.05, max_delay=0.4, jitter=False)


def _service_spec(plan: _Plan, backend: _Backend) -> ServiceSpec:
    return ServiceSpec(
        name=plan.name,
        factory=_ServiceActor,
        args=(backend,),
        timeout=_TIMEOUT,
        breaker=BreakerSpec(
            failure_threshold=plan.failure_threshold, timeout=2.0, window=plan.window
        ),
        retry=_RETRY
        if plan.retry_budget is None
        else attrs.evolve(_RETRY, budget=plan.retry_budget),
        bulkhead=BulkheadSpec(max_concurrent=plan.max_concurrent, max_queued=plan.max_queued),
        fallback=plan.fallback,
        shutdown=0.5,
    )


def _tree_spec(backends: dict[str, _Backend]) -> SupervisorSpec:
    def children(supervisor: str) -> list[ServiceSpec]:
        return [
            _service_spec(plan, backends[plan.name])
            for plan in _PLANS
            if plan.supervisor == supervisor
        ]

    frontend = SupervisorSpec(
        name="frontend",
        children=children("frontend"),
        strategy=Strategy.ONE_FOR_ONE,
        max_restarts=6,
        within=10.0,
        backoff=_BACKOFF,
    )
    backend = SupervisorSpec(
        name="backend",
        children=children("backend"),
        strategy=Strategy.REST_FOR_ONE,
        max_restarts=12,
        within=10.0,
        backoff=_BACKOFF,
    )
    return SupervisorSpec(
        name="app", children=[frontend, backend], max_restarts=10, within=30.0, backoff=_BACKOFF
    )


class _Chaos(enum.Enum):
    """What the chaos schedule does."""

    FAILURE_BURST = "failure burst"
    FAILURES_END = "failures end"
    LATENCY_SPIKE = "latency spike"
    LATENCY_ENDS = "latency back to normal"
    OUTAGE = "outage"
    OUTAGE_ENDS = "outage ends"
    CRASH_LOOP = "crash loop"
    SURGE = "traffic surge"
    CALM = "calm"


@attrs.frozen(kw_only=True)
class _Step:
    at: float
    """When, as a fraction of the duration."""
    chaos: _Chaos
    service: str
    note: str


_SCHEDULE: Final = (
    _Step(at=0.10, chaos=_Chaos.FAILURE_BURST, service="db", note="80% of queries fail"),
    _Step(at=0.22, chaos=_Chaos.FAILURES_END, service="db", note="queries succeed again"),
    _Step(at=0.28, chaos=_Chaos.LATENCY_SPIKE, service="search", note="answers 25x slower"),
    _Step(at=0.40, chaos=_Chaos.LATENCY_ENDS, service="search", note="answers quick again"),
    _Step(at=0.45, chaos=_Chaos.OUTAGE, service="payments", note="connection refused"),
    _Step(
        at=0.52,
        chaos=_Chaos.CRASH_LOOP,
        service="auth",
        note="a bug crashes the actor; its next 2 starts fail",
    ),
    _Step(at=0.62, chaos=_Chaos.OUTAGE_ENDS, service="payments", note="the backend is back"),
    _Step(
        at=0.72, chaos=_Chaos.SURGE, service="api-gateway", note="40 requests at the same moment"
    ),
    _Step(at=0.80, chaos=_Chaos.CALM, service="", note="no more chaos: watch the breakers close"),
)
_SURGE: Final = 40
