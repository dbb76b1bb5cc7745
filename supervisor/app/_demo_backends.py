"""The demo's simulated backends, its tree of guarded services, and its chaos schedule: faults
injected into the services (``ServiceSpec.faults``), each incident a window of them."""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from typing import Final

import attrs
import trio

import actors

from ..rules._faults import Fault, FaultPoint
from ..rules._rate_breaker import RateWindow
from ..rules._retry_budget import RetryBudgetConfig
from ..tree._fault_specs import FaultSpec
from ..tree._rule_specs import BreakerSpec, BulkheadSpec, FallbackSpec, RetrySpec
from ..tree._specs import RestartBackoff, ServiceSpec, Strategy, SupervisorSpec

_KEYS: Final = 8
"""Distinct request keys per service (so cached answers can serve as fallbacks)."""
_BASE_ERROR_RATE: Final = 0.002
"""How often a backend fails when nothing is wrong (an injected error: it crashes the service
actor, as a real client's error would)."""


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
    its caller's sequence; the fault injector decides each request from it too (see
    :func:`_query_rng`), so latencies and injected errors do not depend on the order in which
    trio happens to run tasks woken at the same moment: the run is repeatable by seed.
    """

    key: str
    rng: random.Random = attrs.field(eq=False, repr=False)


def _query_rng(request: Query) -> random.Random:
    """The random source the fault injector decides ``request`` with: its own."""
    return request.rng


@attrs.define(eq=False)
class _Backend:
    """An in-process fake dependency: it answers after a simulated latency. Everything that goes
    wrong with it is injected by the services' faults (see :data:`_INCIDENTS`)."""

    name: str
    latency: float
    """Median latency, in seconds."""

    async def handle(self, request: Query) -> str:
        """Answer ``request`` after a simulated latency (one draw from its random source)."""
        spread = request.rng.random()
        await trio.sleep(self.latency * (0.5 + spread * spread * 2.5))
        return f"{self.name}:{request.key}"


class _ServiceActor(actors.Actor[Query]):
    """The service actor of one backend: its ``receive`` is the backend's answer (an error of the
    backend is a crash of the actor, as with any client)."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

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


def _service_spec(plan: _Plan, backend: _Backend, duration: float) -> ServiceSpec:
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
        faults=FaultSpec(inject=_faults(plan.name, duration), rng=_query_rng),
    )


def _tree_spec(backends: dict[str, _Backend], duration: float) -> SupervisorSpec:
    def children(supervisor: str) -> list[ServiceSpec]:
        return [
            _service_spec(plan, backends[plan.name], duration)
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
class _Incident:
    """One incident of the chaos schedule: faults injected into one service from ``start`` to
    ``end`` (fractions of the duration; ``end`` None: its faults end by their ``limit``), and
    what the narration says when it begins and ends."""

    service: str
    start: float
    end: float | None
    begins: _Chaos
    note: str
    ends: _Chaos | None = None
    end_note: str = ""
    faults: Callable[[str, float, float | None], tuple[Fault, ...]]
    """``faults(service, start, end)`` with ``start`` and ``end`` in seconds."""


def _burst(name: str, start: float, end: float | None) -> tuple[Fault, ...]:
    message = f"{name}: internal error"
    return (Fault(error=BackendError, message=message, rate=0.8, start=start, end=end),)


def _spike(_name: str, start: float, end: float | None) -> tuple[Fault, ...]:
    return (Fault(latency=1.0, start=start, end=end),)  # twice the 0.5 s request timeout


def _outage(name: str, start: float, end: float | None) -> tuple[Fault, ...]:
    message = f"{name}: connection refused"
    return (Fault(error=BackendUnavailable, message=message, start=start, end=end),)


def _crash_loop(name: str, start: float, _end: float | None) -> tuple[Fault, ...]:
    return (
        Fault(error=RuntimeError, message=f"{name}: corrupted state (a bug)", start=start, limit=1),
        Fault(
            error=StartFailed,
            message=f"{name}: cannot load its configuration",
            point=FaultPoint.START,
            start=start,
            limit=2,
        ),
    )


_INCIDENTS: Final = (
    _Incident(
        service="db",
        start=0.10,
        end=0.22,
        begins=_Chaos.FAILURE_BURST,
        note="80% of queries fail",
        ends=_Chaos.FAILURES_END,
        end_note="queries succeed again",
        faults=_burst,
    ),
    _Incident(
        service="search",
        start=0.28,
        end=0.40,
        begins=_Chaos.LATENCY_SPIKE,
        note="answers take 1 s more",
        ends=_Chaos.LATENCY_ENDS,
        end_note="answers quick again",
        faults=_spike,
    ),
    _Incident(
        service="payments",
        start=0.45,
        end=0.62,
        begins=_Chaos.OUTAGE,
        note="connection refused",
        ends=_Chaos.OUTAGE_ENDS,
        end_note="the backend is back",
        faults=_outage,
    ),
    _Incident(
        service="auth",
        start=0.52,
        end=None,
        begins=_Chaos.CRASH_LOOP,
        note="a bug crashes the actor; its next 2 starts fail",
        faults=_crash_loop,
    ),
)


def _faults(name: str, duration: float) -> tuple[Fault, ...]:
    """The faults of service ``name`` in a run of ``duration`` seconds: the rare errors of a
    healthy backend, and the incidents of the schedule."""
    faults = [Fault(error=BackendError, message=f"{name}: internal error", rate=_BASE_ERROR_RATE)]
    for incident in _INCIDENTS:
        if incident.service == name:
            end = None if incident.end is None else incident.end * duration
            faults.extend(incident.faults(name, incident.start * duration, end))
    return tuple(faults)


@attrs.frozen(kw_only=True)
class _Step:
    at: float
    """When, as a fraction of the duration."""
    chaos: _Chaos
    service: str
    note: str


def _schedule() -> tuple[_Step, ...]:
    """What the narration says when (the incidents' beginnings and ends), the surge on
    ``api-gateway`` (traffic, not a fault), and the calm."""
    steps = [
        _Step(
            at=0.72,
            chaos=_Chaos.SURGE,
            service="api-gateway",
            note="40 requests at the same moment",
        ),
        _Step(
            at=0.80, chaos=_Chaos.CALM, service="", note="no more chaos: watch the breakers close"
        ),
    ]
    for incident in _INCIDENTS:
        steps.append(
            _Step(
                at=incident.start,
                chaos=incident.begins,
                service=incident.service,
                note=incident.note,
            )
        )
        if incident.end is not None and incident.ends is not None:
            steps.append(
                _Step(
                    at=incident.end,
                    chaos=incident.ends,
                    service=incident.service,
                    note=incident.end_note,
                )
            )
    return tuple(sorted(steps, key=lambda step: step.at))


_SCHEDULE: Final = _schedule()
_SURGE: Final = 40
