"""Guarded services with hedging and an adaptive concurrency limit: the attempts' accounting on
the breaker and the bulkhead, the events, and exact times (MockClock)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import actors
from supervisor import (
    AdaptiveLimitSpec,
    BreakerSpec,
    BulkheadSpec,
    CircuitState,
    ConfigError,
    HedgeSpec,
    RetrySpec,
    ServiceSpec,
)
from supervisor.cores import HedgeLaunched, HedgeSettled
from supervisor.observe._bus import EventBus
from supervisor.observe._events import RequestCompleted, RequestFailed
from supervisor.tree._service import GuardedService

PATH = "app/search"


class Boom(Exception):
    """The backend's failure."""


class Backend(actors.Actor[Any]):
    """Answers the n-th request it handles after ``script[n]`` seconds (the last entry repeats);
    a negative entry fails after that many seconds with Boom. Counts requests being handled."""

    def __init__(self, script: list[float], seen: dict[str, int]) -> None:
        self.script = script
        self.seen = seen

    async def receive(self, message: Any) -> Any:
        n = self.seen.get("n", 0)
        self.seen["n"] = n + 1
        self.seen["active"] = self.seen.get("active", 0) + 1
        self.seen["peak"] = max(self.seen.get("peak", 0), self.seen["active"])
        step = self.script[min(n, len(self.script) - 1)]
        try:
            await trio.sleep(abs(step))
        finally:
            self.seen["active"] -= 1
        if step < 0:
            raise Boom(n)
        return (message, n)


@attrs.define
class Harness:
    service: GuardedService
    events: list[Any]
    seen: dict[str, int]

    def of(self, *kinds: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kinds)]


@contextlib.asynccontextmanager
async def running(spec: ServiceSpec, script: list[float]) -> AsyncIterator[Harness]:
    bus: EventBus[Any] = EventBus()
    events: list[Any] = []
    bus.add_listener(events.append)
    service = GuardedService(spec, path=PATH, bus=bus)
    seen: dict[str, int] = {}

    class Hook:
        def __init__(self, nursery: trio.Nursery, system: actors.ActorSystem) -> None:
            self.nursery, self.system = nursery, system

        def child_failed(self, ref: actors.ActorRef[Any], error: Exception) -> None:
            self.nursery.start_soon(self.system.restart, ref)

    async with actors.ActorSystem(shutdown_grace=0) as system, trio.open_nursery() as nursery:
        ref = await system.spawn(
            Backend,
            script,
            seen,
            name="search",
            supervisor=Hook(nursery, system),
            **service.spawn_options(),
        )
        service.attach(ref)
        yield Harness(service, events, seen)
        nursery.cancel_scope.cancel()


def spec_of(**rules: Any) -> ServiceSpec:
    return ServiceSpec(name="search", factory=Backend, **rules)


# -- hedging ------------------------------------------------------------------------------------


async def test_a_slow_attempt_is_hedged_and_the_hedge_answers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The hedge is sent exactly 0.2 s after the first attempt and answers at 0.3; the breaker
    counts one success; one RequestCompleted with the whole latency."""
    spec = spec_of(
        bulkhead=BulkheadSpec(max_concurrent=2), breaker=BreakerSpec(), hedge=HedgeSpec(delay=0.2)
    )
    async with running(spec, [5.0, 0.1]) as h:
        t0 = trio.current_time()
        assert await h.service.handle.call("q") == ("q", 1)
        assert trio.current_time() - t0 == pytest.approx(0.3)
        launched, settled, completed = h.events
        assert isinstance(launched, HedgeLaunched)
        assert (launched.name, launched.hedge, launched.reason) == (PATH, 1, "delay")
        assert launched.after == pytest.approx(0.2)
        assert settled == HedgeSettled(
            name=PATH, at=pytest.approx(t0 + 0.3), hedges=1, winner=1, cancelled=1, failed=0
        )
        assert isinstance(completed, RequestCompleted)
        assert completed.latency == pytest.approx(0.3)
        stats = h.service.statistics()
        assert (stats.in_flight, stats.queued, stats.completed) == (0, 0, 1)
        breaker = h.service.breaker
        assert breaker is not None
        assert breaker.statistics().successes == 1  # the cancelled loser counted nothing


async def test_a_hedge_needs_a_free_slot(autojump_clock: trio.testing.MockClock) -> None:
    """With every slot taken, the due hedge is skipped: no event, the first attempt answers."""
    spec = spec_of(bulkhead=BulkheadSpec(max_concurrent=1), hedge=HedgeSpec(delay=0.2))
    async with running(spec, [1.0]) as h:
        assert await h.service.handle.call("q") == ("q", 0)
        assert h.of(HedgeLaunched, HedgeSettled) == []
        assert h.service._hedge is not None
        assert h.service._hedge.statistics().skipped == 1


async def test_a_failed_attempt_is_replaced_at_once_and_counted_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The first attempt fails at 0.05: the hedge goes out then and answers; the breaker counts
    one failure and one success, and no RequestFailed is published for the answered call."""
    spec = spec_of(
        bulkhead=BulkheadSpec(max_concurrent=2),
        breaker=BreakerSpec(failure_threshold=5),
        hedge=HedgeSpec(delay=1.0),
    )
    async with running(spec, [-0.05, 0.1]) as h:
        assert await h.service.handle.call("q") == ("q", 1)
        assert trio.current_time() == pytest.approx(0.15)
        assert [e.reason for e in h.of(HedgeLaunched)] == ["failure"]
        assert h.of(RequestFailed) == []
        assert h.of(HedgeSettled)[0].failed == 1
        breaker = h.service.breaker
        assert breaker is not None
        stats = breaker.statistics()
        assert (stats.failures, stats.successes) == (1, 1)


async def test_an_opened_breaker_stops_the_hedges(autojump_clock: trio.testing.MockClock) -> None:
    """A first failure that opens the breaker leaves no hedge to send: the call fails with it,
    retried by the retry schedule as any failed attempt (here: refused, as the breaker is open)."""
    spec = spec_of(
        bulkhead=BulkheadSpec(max_concurrent=2),
        breaker=BreakerSpec(failure_threshold=1),
        hedge=HedgeSpec(delay=1.0),
    )
    async with running(spec, [-0.05, 0.1]) as h:
        with pytest.raises(Boom):
            await h.service.handle.call("q")
        assert h.of(HedgeLaunched) == []
        assert len(h.of(RequestFailed)) == 1
        assert h.service.breaker is not None
        assert h.service.breaker.state is CircuitState.OPEN


async def test_every_attempt_failing_fails_the_call_with_the_last_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two hedges of a failing service: three attempts fail, one RequestFailed carries the
    last; a retry then hedges anew."""
    spec = spec_of(
        bulkhead=BulkheadSpec(max_concurrent=3),
        hedge=HedgeSpec(delay=1.0, max_hedges=2),
        retry=RetrySpec(max_attempts=2, initial_delay=0.5, jitter=False),
    )
    async with running(spec, [-0.1, -0.1, -0.1, -0.1, 0.1]) as h:
        assert await h.service.handle.call("q") == ("q", 4)
        failed = h.of(RequestFailed)
        assert len(failed) == 1
        assert str(failed[0].error) == "2"
        assert [e.hedges for e in h.of(HedgeSettled)] == [2, 1]
        assert h.service.statistics().in_flight == 0


async def test_many_concurrent_callers_each_get_one_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A hundred callers through a hedged service with a breaker: one outcome each, every slot
    and permit given back, and the breaker saw exactly one outcome per attempt that ended."""
    spec = spec_of(
        bulkhead=BulkheadSpec(max_concurrent=150, max_queued=50),
        breaker=BreakerSpec(failure_threshold=1000),
        hedge=HedgeSpec(delay=0.05, max_hedges=2),
    )
    script = [0.5 if n % 4 == 0 else (-0.02 if n % 9 == 0 else 0.01) for n in range(400)]
    async with running(spec, script) as h:
        outcomes: dict[int, list[object]] = {i: [] for i in range(100)}

        async def caller(i: int) -> None:
            try:
                outcomes[i].append(await h.service.handle.call(i))
            except Boom as exc:
                outcomes[i].append(exc)

        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(caller, i)
        assert all(len(got) == 1 for got in outcomes.values())
        assert all(got[0][0] == i for i, got in outcomes.items() if isinstance(got[0], tuple))
        stats = h.service.statistics()
        assert (stats.in_flight, stats.queued) == (0, 0)
        assert h.service.breaker is not None
        counted = h.service.breaker.statistics()
        settled = h.of(HedgeSettled)
        cancelled = sum(e.cancelled for e in settled)
        attempts = 100 + len(h.of(HedgeLaunched))
        assert cancelled > 0
        assert attempts > 120
        assert counted.successes + counted.failures == attempts - cancelled
        assert counted.successes == sum(1 for got in outcomes.values() if isinstance(got[0], tuple))


async def test_a_cancelled_caller_gives_every_attempt_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelling a caller with a hedge out cancels both attempts; nothing is counted."""
    spec = spec_of(
        bulkhead=BulkheadSpec(max_concurrent=2), breaker=BreakerSpec(), hedge=HedgeSpec(delay=0.1)
    )
    async with running(spec, [5.0, 5.0]) as h:
        with trio.move_on_after(0.5):
            await h.service.handle.call("q")
        assert h.service.statistics().in_flight == 0
        assert h.service.breaker is not None
        stats = h.service.breaker.statistics()
        assert (stats.successes, stats.failures) == (0, 0)
        assert len(h.of(HedgeLaunched)) == 1
        assert h.of(HedgeSettled) == []


# -- the adaptive limit -------------------------------------------------------------------------


async def test_the_limit_holds_requests_on_the_callers_side(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With an adaptive limit of 2 (of 10 the actor could run), 6 one-second requests run two at
    a time: the actor never handles more than the limit, the rest wait on the callers' side."""
    spec = spec_of(
        bulkhead=BulkheadSpec(
            max_concurrent=10,
            max_queued=10,
            adaptive=AdaptiveLimitSpec(initial_limit=2, min_limit=2, smoothing=1e-9),
        )
    )
    async with running(spec, [1.0]) as h:
        assert h.service.spawn_options()["max_concurrency"] == 10
        done: list[float] = []

        async def one(i: int) -> None:
            await h.service.handle.call(i)
            done.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(one, i)
            await trio.testing.wait_all_tasks_blocked()
            stats = h.service.statistics()
            assert (stats.in_flight, stats.queued, stats.concurrency_limit) == (2, 4, 2)
        assert done == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
        assert h.seen["peak"] == 2


async def test_failures_shrink_the_limit_and_a_queued_deadline_times_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each failed request multiplies the limit by backoff_ratio; a request whose deadline
    passes while it waits for a slot fails with AskTimeout at exactly that time."""
    spec = spec_of(
        bulkhead=BulkheadSpec(
            max_concurrent=8,
            max_queued=4,
            adaptive=AdaptiveLimitSpec(initial_limit=4, backoff_ratio=0.5),
        )
    )
    async with running(spec, [-0.1, -0.1, 10.0]) as h:
        for _ in range(2):
            with pytest.raises(Boom):
                await h.service.handle.call("x")
        assert h.service.statistics().concurrency_limit == 1
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.service.handle.call, "slow")
            await trio.testing.wait_all_tasks_blocked()
            t0 = trio.current_time()
            with pytest.raises(actors.AskTimeout):
                await h.service.handle.call("late", timeout=0.5)
            assert trio.current_time() == t0 + 0.5
            assert h.service.statistics().queued == 0
            nursery.cancel_scope.cancel()
        assert h.service.statistics().in_flight == 0


async def test_the_limit_grows_while_latency_is_steady(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Steady 10 ms answers with the limit in use raise it from 2."""
    spec = spec_of(
        bulkhead=BulkheadSpec(
            max_concurrent=50, max_queued=100, adaptive=AdaptiveLimitSpec(initial_limit=2)
        )
    )
    async with running(spec, [0.01]) as h:

        async def loop() -> None:
            for _ in range(40):
                await h.service.handle.call("q")

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(loop)
        limit = h.service.statistics().concurrency_limit
        assert limit is not None
        assert limit > 5


def test_specs_validate_the_new_rules() -> None:
    """Bad hedge and adaptive settings raise ConfigError naming the field."""
    with pytest.raises(ConfigError, match="`delay`"):
        HedgeSpec(delay=-1.0)
    with pytest.raises(ConfigError, match="`percentile`"):
        HedgeSpec(delay=0.1, percentile=2.0)
    with pytest.raises(ConfigError, match="`tolerance`"):
        AdaptiveLimitSpec(tolerance=0.5)
    with pytest.raises(
        ConfigError, match=r"`initial_limit` must be at most the bulkhead's"
    ) as info:
        BulkheadSpec(max_concurrent=4, adaptive=AdaptiveLimitSpec(initial_limit=10))
    assert info.value.field == "adaptive.initial_limit"
    with pytest.raises(ConfigError, match="`adaptive` must be an AdaptiveLimitSpec"):
        BulkheadSpec(adaptive={"initial_limit": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="`hedge` must be a HedgeSpec"):
        spec_of(hedge={"delay": 1.0})


async def test_hedging_behind_an_adaptive_limit(autojump_clock: trio.testing.MockClock) -> None:
    """A request queued behind the adaptive limit waits for its slot in its own task, then is
    hedged as usual; one queued past its deadline fails with AskTimeout, counted once."""
    spec = spec_of(
        bulkhead=BulkheadSpec(
            max_concurrent=4,
            max_queued=4,
            adaptive=AdaptiveLimitSpec(initial_limit=1, min_limit=1, smoothing=1e-9),
        ),
        breaker=BreakerSpec(failure_threshold=100, expected_exception=actors.AskTimeout),
        hedge=HedgeSpec(delay=0.1),
    )
    async with running(spec, [1.0, 0.05]) as h:
        results: dict[str, object] = {}

        async def call(request: str, timeout: float | None = None) -> None:  # noqa: ASYNC109 - passed on as the call's own timeout
            try:
                results[request] = await h.service.handle.call(request, timeout=timeout)
            except actors.AskTimeout as exc:
                results[request] = (exc, trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, "first")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(call, "second")
            nursery.start_soon(call, "late", 0.5)
            await trio.testing.wait_all_tasks_blocked()
            assert h.service.statistics().queued == 2
        assert results["first"] == ("first", 0)  # no free slot for a hedge under a limit of 1
        error, at = results["late"]  # type: ignore[misc]
        assert isinstance(error, actors.AskTimeout)
        assert at == 0.5
        assert results["second"] == ("second", 1)
        assert trio.current_time() == pytest.approx(1.05)
        assert h.service.statistics().in_flight == 0
        assert h.service.breaker is not None
        assert h.service.breaker.statistics().failures == 1
