"""Guarded services: each step of the request path, its events and exact times."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import actors
from supervisor import (
    BulkheadFullError,
    CircuitOpenError,
    CircuitState,
    CircuitStateChange,
    ConfigError,
    OperationTimeout,
    RateLimitExceeded,
)
from supervisor.observe._bus import EventBus
from supervisor.observe._events import (
    FallbackUsed,
    Refusal,
    RequestCompleted,
    RequestFailed,
    RequestRefused,
    RetryScheduled,
)
from supervisor.tree._rule_specs import (
    BreakerSpec,
    BulkheadSpec,
    FallbackSpec,
    RetrySpec,
    ThrottleSpec,
)
from supervisor.tree._service import GuardedService, ServiceStatistics
from supervisor.tree._specs import ServiceSpec

PATH = "app/db"


class Boom(Exception):
    """What the backend raises when told to fail (its actor crashes with it)."""


class Ignored(Exception):
    """An error a breaker with ``expected_exception=Boom`` does not count."""


class Backend(actors.Actor[Any]):
    """A service actor: ``("ok", v)`` answers v, ``("slow", s)`` sleeps s then answers s,
    ``("fail", v)`` raises Boom(v), ``("ignored", v)`` raises Ignored(v), ``("flaky", v)`` fails
    while ``plan["fail"] > 0`` (counting it down), then answers v."""

    def __init__(self, plan: dict[str, int]) -> None:
        self.plan = plan

    async def receive(self, message: Any) -> Any:
        kind, value = message
        self.plan["seen"] = self.plan.get("seen", 0) + 1
        if kind == "slow":
            await trio.sleep(value)
            return value
        if kind == "fail":
            raise Boom(value)
        if kind == "ignored":
            raise Ignored(value)
        if kind == "flaky" and self.plan.get("fail", 0) > 0:
            self.plan["fail"] -= 1
            raise Boom(value)
        return value


@attrs.define
class Harness:
    service: GuardedService
    ref: actors.ActorRef[Any]
    system: actors.ActorSystem
    events: list[Any]
    plan: dict[str, int]

    def kinds(self) -> list[str]:
        """The names of the events published so far."""
        return [type(event).__name__ for event in self.events]

    def processed(self) -> int:
        """Messages the service actor has handled."""
        return self.ref.statistics().processed


class RestartingHook:
    """Stands in for the tree: a crashed actor is restarted at once (in a system task)."""

    def __init__(self, nursery: trio.Nursery, system: actors.ActorSystem) -> None:
        self.nursery = nursery
        self.system = system
        self.crashes: list[Exception] = []

    def child_failed(self, ref: actors.ActorRef[Any], error: Exception) -> None:
        self.crashes.append(error)
        self.nursery.start_soon(self.system.restart, ref)


def spec_of(**rules: Any) -> ServiceSpec:
    return ServiceSpec(name="db", factory=Backend, **rules)


@contextlib.asynccontextmanager
async def running(
    spec: ServiceSpec, *, hooked: bool = False, **kwargs: Any
) -> AsyncIterator[Harness]:
    bus: EventBus[Any] = EventBus()
    events: list[Any] = []
    bus.add_listener(events.append)
    service = GuardedService(spec, path=PATH, bus=bus, **kwargs)
    plan: dict[str, int] = {}
    async with actors.ActorSystem(shutdown_grace=0) as system, trio.open_nursery() as nursery:
        hook = RestartingHook(nursery, system) if hooked else None
        ref = await system.spawn(
            Backend, plan, name="db", supervisor=hook, **service.spawn_options()
        )
        service.attach(ref)
        yield Harness(service, ref, system, events, plan)
        nursery.cancel_scope.cancel()


# --- the plain path -----------------------------------------------------------------------------


async def test_a_reply_is_returned_and_published_with_its_latency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A reply comes back as is; RequestCompleted carries the exact latency and one attempt."""
    async with running(spec_of()) as h:
        t0 = trio.current_time()
        assert await h.service.handle.call(("ok", 42)) == 42
        assert await h.service.handle.call(("slow", 2.5)) == 2.5
        assert h.events == [
            RequestCompleted(path=PATH, at=t0, latency=0.0, attempts=1),
            RequestCompleted(path=PATH, at=t0 + 2.5, latency=2.5, attempts=1),
        ]
        assert h.service.handle.statistics() == ServiceStatistics(
            path=PATH,
            state=None,
            in_flight=0,
            queued=0,
            completed=2,
            failed=0,
            refused=0,
            fallbacks=0,
            retries=0,
        )


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, "3", True])
async def test_a_bad_timeout_is_refused_before_anything_is_admitted(bad: Any) -> None:
    """A timeout that is not a number > 0 (or None) raises ConfigError naming `timeout`."""
    async with running(spec_of(breaker=BreakerSpec())) as h:
        with pytest.raises(ConfigError, match="`timeout`"):
            await h.service.handle.call(("ok", 1), timeout=bad)
        assert h.events == []
        assert h.processed() == 0
        assert h.service.statistics().in_flight == 0


async def test_the_spec_timeout_bounds_a_call_and_the_caller_may_override_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The spec's timeout makes a slow call fail with AskTimeout at exactly that time; the
    caller's own timeout (or None) replaces it."""
    async with running(spec_of(timeout=3.0)) as h:
        t0 = trio.current_time()
        with pytest.raises(actors.AskTimeout) as caught:
            await h.service.handle.call(("slow", 10))
        assert trio.current_time() == t0 + 3.0
        assert h.events == [
            RequestFailed(path=PATH, at=t0 + 3.0, latency=3.0, error=caught.value, attempt=1)
        ]
        assert await h.service.handle.call(("slow", 10), timeout=None) == 10
        assert trio.current_time() == t0 + 13.0
        with pytest.raises(actors.AskTimeout):
            await h.service.handle.call(("slow", 10), timeout=1.5)
        assert trio.current_time() == t0 + 14.5
        assert h.service.statistics().failed == 2


async def test_a_call_before_attach_fails_with_actor_stopped() -> None:
    """Until the tree attaches a live actor, every attempt fails with ActorStopped."""
    bus: EventBus[Any] = EventBus()
    service = GuardedService(spec_of(), path=PATH, bus=bus)
    assert service.ref is None
    with pytest.raises(actors.ActorStopped):
        await service.handle.call(("ok", 1))


def test_spawn_options_make_the_mailbox_the_bulkhead_queue() -> None:
    """The mailbox holds max_concurrent + max_queued requests and rejects beyond that."""
    bus: EventBus[Any] = EventBus()
    spec = spec_of(bulkhead=BulkheadSpec(max_concurrent=3, max_queued=0))
    options = GuardedService(spec, path=PATH, bus=bus).spawn_options()
    assert options["mailbox_size"] == 3
    assert options["overflow"] == "reject"
    assert options.get("max_concurrency", 3) == 3


def test_the_handle_names_and_reprs_the_service() -> None:
    """The public handle knows its path, name and breaker, and has a readable repr."""
    bus: EventBus[Any] = EventBus()
    spec = spec_of(breaker=BreakerSpec(), bulkhead=BulkheadSpec(max_concurrent=2, max_queued=5))
    service = GuardedService(spec, path=PATH, bus=bus)
    handle = service.handle
    assert (handle.path, handle.name) == (PATH, "db")
    assert handle.breaker is service.breaker
    assert handle.breaker is not None
    assert handle.breaker.name == PATH
    assert repr(handle) == "<ServiceRef 'app/db' closed, 0/2 in flight, 0/5 queued>"
    assert repr(service) == "<GuardedService 'app/db' closed, 0/2 in flight, 0/5 queued>"
    plain = GuardedService(spec_of(), path=PATH, bus=bus)
    assert repr(plain.handle) == "<ServiceRef 'app/db', 0/1 in flight, 0/100 queued>"


# --- throttle -----------------------------------------------------------------------------------


async def test_a_raising_throttle_refuses_without_a_mailbox_hop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Over the limit, on_limit="raise" refuses with the exact retry_after; the actor never sees
    the request; the window frees up exactly `period` after the first start."""
    spec = spec_of(throttle=ThrottleSpec(max_calls=2, period=10.0, on_limit="raise"))
    async with running(spec) as h:
        t0 = trio.current_time()
        await h.service.handle.call(("ok", 1))
        await trio.sleep(4)
        await h.service.handle.call(("ok", 2))
        with pytest.raises(RateLimitExceeded) as caught:
            await h.service.handle.call(("ok", 3))
        assert caught.value.retry_after == 6.0
        assert caught.value.name == PATH
        assert h.processed() == 2
        assert h.events[-1] == RequestRefused(
            path=PATH, at=t0 + 4, refusal=Refusal.RATE_LIMITED, retry_after=6.0
        )
        await trio.sleep(6)
        assert await h.service.handle.call(("ok", 4)) == 4
        assert h.service.statistics().refused == 1


async def test_a_waiting_throttle_serves_callers_in_order_within_their_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """on_limit="wait": callers start one per period, first come first served; one whose turn
    would come after its deadline fails with OperationTimeout at the deadline, a refusal."""
    spec = spec_of(throttle=ThrottleSpec(max_calls=1, period=5.0, on_limit="wait"))
    async with running(spec) as h:
        t0 = trio.current_time()
        answered: list[tuple[int, float]] = []
        errors: list[BaseException] = []

        async def caller(i: int, seconds: float | None) -> None:
            try:
                await h.service.handle.call(("ok", i), timeout=seconds)
            except OperationTimeout as exc:
                errors.append(exc)
            else:
                answered.append((i, trio.current_time() - t0))

        async with trio.open_nursery() as nursery:
            for i, timeout in enumerate([None, None, 7.0, None]):
                nursery.start_soon(caller, i, timeout)
                await trio.testing.wait_all_tasks_blocked()
        assert answered == [(0, 0.0), (1, 5.0), (3, 10.0)]
        assert len(errors) == 1
        assert [e for e in h.events if isinstance(e, RequestRefused)] == [
            RequestRefused(path=PATH, at=t0 + 7.0, refusal=Refusal.RATE_LIMITED)
        ]
        assert h.processed() == 3


async def test_a_cancelled_throttle_waiter_takes_no_turn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A caller cancelled while waiting for its turn leaves the queue: the next one moves up."""
    spec = spec_of(throttle=ThrottleSpec(max_calls=1, period=5.0, on_limit="wait"))
    async with running(spec) as h:
        t0 = trio.current_time()
        await h.service.handle.call(("ok", 0))
        done: list[float] = []
        doomed = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_call_in, doomed, h, ("ok", 1))
            await trio.testing.wait_all_tasks_blocked()

            async def second() -> None:
                await h.service.handle.call(("ok", 2))
                done.append(trio.current_time() - t0)

            nursery.start_soon(second)
            await trio.testing.wait_all_tasks_blocked()
            doomed.cancel()
        assert done == [5.0]
        assert h.processed() == 2
        assert h.kinds() == ["RequestCompleted", "RequestCompleted"]


async def _call_in(scope: trio.CancelScope, h: Harness, request: Any) -> None:
    with scope:
        await h.service.handle.call(request)


# --- breaker ------------------------------------------------------------------------------------


async def test_failures_open_the_breaker_and_an_open_breaker_refuses_without_a_hop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Counted failures open the breaker (a CircuitStateChange named after the path is
    published); then calls are refused with the exact retry_after and never reach the actor."""
    spec = spec_of(breaker=BreakerSpec(failure_threshold=2, timeout=30.0))
    async with running(spec) as h:
        seen: list[CircuitStateChange] = []
        assert h.service.breaker is not None
        h.service.breaker.add_listener(seen.append)
        t0 = trio.current_time()
        for _ in range(2):
            with pytest.raises(Boom):
                await h.service.handle.call(("fail", 1))
        change = CircuitStateChange(
            name=PATH,
            old_state=CircuitState.CLOSED,
            new_state=CircuitState.OPEN,
            at=t0,
            reason=seen[0].reason,
        )
        assert seen == [change]
        assert h.kinds() == ["RequestFailed", "RequestFailed", "CircuitStateChange"]
        assert h.events[-1] == change
        processed = h.processed()
        await trio.sleep(10)
        with pytest.raises(CircuitOpenError) as caught:
            await h.service.handle.call(("ok", 1))
        assert caught.value.retry_after == 20.0
        assert caught.value.name == PATH
        assert h.processed() == processed
        assert h.events[-1] == RequestRefused(
            path=PATH, at=t0 + 10, refusal=Refusal.CIRCUIT_OPEN, retry_after=20.0
        )
        assert h.service.statistics().state is CircuitState.OPEN


async def test_a_half_open_breaker_lets_trials_through_and_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """From exactly `timeout` after opening, at most half_open_max_calls trials run at once (the
    others are refused with retry_after 0); enough successful trials close the breaker."""
    spec = spec_of(
        breaker=BreakerSpec(
            failure_threshold=1, success_threshold=2, timeout=5.0, half_open_max_calls=1
        ),
        bulkhead=BulkheadSpec(max_concurrent=1, max_queued=10),
    )
    async with running(spec) as h:
        t0 = trio.current_time()
        with pytest.raises(Boom):
            await h.service.handle.call(("fail", 1))
        await trio.sleep(5)
        results: list[Any] = []

        async def caller(request: Any) -> None:
            try:
                results.append(await h.service.handle.call(request))
            except CircuitOpenError as exc:
                results.append(exc.retry_after)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(caller, ("slow", 1))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(caller, ("ok", "refused"))
        assert results == [0.0, 1]
        assert await h.service.handle.call(("ok", 2)) == 2
        changes = [
            (e.old_state, e.new_state, e.at - t0)
            for e in h.events
            if isinstance(e, CircuitStateChange)
        ]
        assert changes == [
            (CircuitState.CLOSED, CircuitState.OPEN, 0.0),
            (CircuitState.OPEN, CircuitState.HALF_OPEN, 5.0),
            (CircuitState.HALF_OPEN, CircuitState.CLOSED, 6.0),
        ]


async def test_uncounted_errors_leave_the_breaker_alone() -> None:
    """An error outside expected_exception is a failure of the call but not of the breaker."""
    spec = spec_of(breaker=BreakerSpec(failure_threshold=1, expected_exception=Boom))
    async with running(spec) as h:
        with pytest.raises(Ignored):
            await h.service.handle.call(("ignored", 1))
        assert h.service.statistics().state is CircuitState.CLOSED
        assert h.service.statistics().failed == 1


async def test_reset_and_force_open_by_the_user_reach_the_bus() -> None:
    """The handle's breaker is the one the requests use: its manual changes are published."""
    async with running(spec_of(breaker=BreakerSpec())) as h:
        breaker = h.service.handle.breaker
        assert breaker is not None
        breaker.force_open()
        with pytest.raises(CircuitOpenError) as caught:
            await h.service.handle.call(("ok", 1))
        assert caught.value.retry_after == math.inf
        breaker.reset()
        assert await h.service.handle.call(("ok", 1)) == 1
        assert [(e.new_state, e.name) for e in h.events if isinstance(e, CircuitStateChange)] == [
            (CircuitState.OPEN, PATH),
            (CircuitState.CLOSED, PATH),
        ]


async def test_an_open_breaker_behind_a_fallback_is_answered_by_the_fallback() -> None:
    """With a fallback, the refusal is the fallback's to answer, and still counted."""
    spec = spec_of(breaker=BreakerSpec(failure_threshold=1), fallback=FallbackSpec(default=0))
    async with running(spec) as h:
        assert h.service.handle.breaker is not None
        h.service.handle.breaker.force_open()
        pending = h.service.handle.call(("ok", 1))
        assert await pending == 0
        assert h.service.statistics().refused == 1


async def test_a_half_open_breaker_admits_its_trial_through_the_path(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A breaker due to half-open admits one trial (with success_threshold 1 it closes on its
    success); further calls while the trial runs are refused."""
    spec = spec_of(breaker=BreakerSpec(failure_threshold=1, success_threshold=1, timeout=5.0))
    async with running(spec) as h, trio.open_nursery() as nursery:
        with pytest.raises(Boom):
            await h.service.handle.call(("fail", 1))
        await trio.sleep(5.0)
        answers: list[Any] = []

        async def trial() -> None:
            answers.append(await h.service.handle.call(("slow", 1.0)))

        nursery.start_soon(trial)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(CircuitOpenError):
            await h.service.handle.call(("ok", 2))
        await trio.sleep(1.5)
        assert answers == [1.0]
        assert h.service.statistics().state is CircuitState.CLOSED


async def test_a_crash_counts_as_a_failure_and_park_until_tells_when_to_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A crashing handler (under a supervisor hook) fails its caller with the crash error, which
    counts; park_until is None while the breaker is closed, the half-open time once it is open,
    None again from that time, and inf while it is forced open."""
    spec = spec_of(breaker=BreakerSpec(failure_threshold=2, timeout=7.5))
    async with running(spec, hooked=True) as h:
        t0 = trio.current_time()
        with pytest.raises(Boom) as first:
            await h.service.handle.call(("fail", 1))
        assert h.service.park_until(trio.current_time()) is None
        await trio.testing.wait_all_tasks_blocked()  # the stand-in tree restarts the actor
        assert h.ref.statistics().failures == 1
        await trio.sleep(1)
        with pytest.raises(Boom):
            await h.service.handle.call(("fail", 2))
        assert h.service.park_until(trio.current_time()) == t0 + 8.5
        assert h.service.park_until(t0 + 8.4) == t0 + 8.5
        assert h.service.park_until(t0 + 8.5) is None
        assert isinstance(h.events[0], RequestFailed)
        assert h.events[0].error is first.value
        await trio.testing.wait_all_tasks_blocked()
        assert h.service.breaker is not None
        h.service.breaker.force_open()
        assert h.service.park_until(trio.current_time()) == math.inf


async def test_park_until_is_none_without_a_breaker() -> None:
    """A service without a breaker is always restarted as usual."""
    service = GuardedService(spec_of(), path=PATH, bus=EventBus())
    assert service.park_until(0.0) is None


# --- bulkhead -----------------------------------------------------------------------------------


async def test_the_bulkhead_admits_at_most_concurrent_plus_queued_of_many_callers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With 60 callers at once, exactly max_concurrent + max_queued are admitted, the others
    are refused at once with BulkheadFullError(path), never reaching the actor."""
    spec = spec_of(bulkhead=BulkheadSpec(max_concurrent=1, max_queued=4))
    async with running(spec) as h:
        t0 = trio.current_time()
        refused: list[float] = []
        answered: list[float] = []
        names: set[str] = set()
        peak = 0

        async def caller(i: int) -> None:
            nonlocal peak
            try:
                await h.service.handle.call(("slow", 1))
            except BulkheadFullError as exc:
                names.add(exc.name)
                refused.append(trio.current_time() - t0)
            else:
                answered.append(trio.current_time() - t0)
            stats = h.service.statistics()
            peak = max(peak, stats.in_flight + stats.queued)

        async with trio.open_nursery() as nursery:
            for i in range(60):
                nursery.start_soon(caller, i)
            await trio.testing.wait_all_tasks_blocked()
            stats = h.service.statistics()
            assert (stats.in_flight, stats.queued) == (1, 4)
        assert refused == [0.0] * 55
        assert names == {PATH}
        assert sorted(answered) == [1.0, 2.0, 3.0, 4.0, 5.0]
        assert peak <= 5
        assert h.processed() == 5
        refusals = [e for e in h.events if isinstance(e, RequestRefused)]
        assert len(refusals) == 55
        assert {e.refusal for e in refusals} == {Refusal.BULKHEAD_FULL}
        assert h.service.statistics().in_flight == 0


async def test_a_bulkhead_refusal_gives_the_trial_slot_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A half-open breaker's trial permit taken by a call the bulkhead then refuses is returned."""
    spec = spec_of(
        breaker=BreakerSpec(failure_threshold=1, timeout=1.0, half_open_max_calls=2),
        bulkhead=BulkheadSpec(max_concurrent=1, max_queued=0),
    )
    async with running(spec) as h:
        with pytest.raises(Boom):
            await h.service.handle.call(("fail", 1))
        await trio.sleep(1)
        assert h.service.breaker is not None
        core = h.service.breaker.core
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.service.handle.call, ("slow", 1))
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(BulkheadFullError):
                await h.service.handle.call(("ok", 2))
            assert core.trials_in_flight == 1
        assert core.trials_in_flight == 0


async def test_a_cancelled_caller_gives_back_its_place_and_trial_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelled while queued or running: the bulkhead place and the trial slot come back,
    nothing is counted or published, and no fallback answers."""
    spec = spec_of(
        breaker=BreakerSpec(failure_threshold=1, timeout=1.0, half_open_max_calls=5),
        bulkhead=BulkheadSpec(max_concurrent=1, max_queued=3),
        fallback=FallbackSpec(default="fallback"),
    )
    async with running(spec) as h:
        await h.service.handle.call(("fail", 1))  # answered by the fallback; opens the breaker
        await trio.sleep(1)
        before = len(h.events)
        assert h.service.breaker is not None
        core = h.service.breaker.core
        with trio.move_on_after(0.5):
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(h.service.handle.call, ("slow", 2))
                await trio.testing.wait_all_tasks_blocked()
                assert core.trials_in_flight == 4
                assert (h.service.statistics().in_flight, h.service.statistics().queued) == (1, 3)
        assert core.trials_in_flight == 0
        stats = h.service.statistics()
        assert (stats.in_flight, stats.queued, stats.fallbacks) == (0, 0, 1)
        assert [type(e).__name__ for e in h.events[before:]] == ["CircuitStateChange"]
        assert core.state_at(trio.current_time()) is CircuitState.HALF_OPEN


# --- retry --------------------------------------------------------------------------------------


async def test_retries_wait_the_exact_delays_and_count_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With jitter off, attempts start at 0, 1, 3 and 7 seconds; each failure and each scheduled
    retry is published; the completion carries 4 attempts and the whole latency."""
    spec = spec_of(
        retry=RetrySpec(max_attempts=4, initial_delay=1.0, backoff_factor=2.0, jitter=False)
    )
    async with running(spec) as h:
        h.plan["fail"] = 3
        t0 = trio.current_time()
        assert await h.service.handle.call(("flaky", "v")) == "v"
        assert trio.current_time() == t0 + 7
        summary = [
            (type(e).__name__, e.at - t0, getattr(e, "delay", None), getattr(e, "attempt", None))
            for e in h.events
        ]
        assert summary == [
            ("RequestFailed", 0, None, 1),
            ("RetryScheduled", 0, 1.0, 1),
            ("RequestFailed", 1, None, 2),
            ("RetryScheduled", 1, 2.0, 2),
            ("RequestFailed", 3, None, 3),
            ("RetryScheduled", 3, 4.0, 3),
            ("RequestCompleted", 7, None, None),
        ]
        assert h.events[-1] == RequestCompleted(path=PATH, at=t0 + 7, latency=7.0, attempts=4)
        assert h.service.statistics().retries == 3


async def test_retries_never_reach_past_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A retry whose delay would end at or after the deadline is not scheduled: the last failure
    is raised at once."""
    spec = spec_of(
        retry=RetrySpec(max_attempts=10, initial_delay=1.0, backoff_factor=2.0, jitter=False)
    )
    async with running(spec) as h:
        h.plan["fail"] = 100
        t0 = trio.current_time()
        with pytest.raises(Boom):
            await h.service.handle.call(("flaky", "v"), timeout=5.0)
        assert trio.current_time() == t0 + 3
        assert [e.delay for e in h.events if isinstance(e, RetryScheduled)] == [1.0, 2.0]
        assert h.service.statistics().failed == 1


async def test_a_retry_holds_no_bulkhead_place_while_it_sleeps(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """While a failed request sleeps before its retry, another caller gets the only slot."""
    spec = spec_of(
        bulkhead=BulkheadSpec(max_concurrent=1, max_queued=0),
        retry=RetrySpec(max_attempts=2, initial_delay=5.0, jitter=False),
    )
    async with running(spec) as h:
        h.plan["fail"] = 1
        t0 = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.service.handle.call, ("flaky", "first"))
            await trio.testing.wait_all_tasks_blocked()
            assert h.service.statistics().in_flight == 0
            assert await h.service.handle.call(("slow", 1)) == 1
        assert trio.current_time() == t0 + 5
        assert h.kinds() == [
            "RequestFailed",
            "RetryScheduled",
            "RequestCompleted",
            "RequestCompleted",
        ]


async def test_refusals_are_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    """A refusal ends the call at once, even on a retry attempt: no RetryScheduled follows it."""
    spec = spec_of(
        breaker=BreakerSpec(failure_threshold=1, timeout=60.0),
        retry=RetrySpec(max_attempts=5, initial_delay=1.0, jitter=False),
    )
    async with running(spec) as h:
        t0 = trio.current_time()
        with pytest.raises(CircuitOpenError) as caught:
            await h.service.handle.call(("fail", 1))
        assert trio.current_time() == t0 + 1
        assert caught.value.retry_after == 59.0
        assert h.kinds() == [
            "RequestFailed",
            "CircuitStateChange",
            "RetryScheduled",
            "RequestRefused",
        ]
        assert h.processed() == 1


async def test_a_caller_cancelled_during_a_retry_delay_gets_no_fallback(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancellation during the retry sleep propagates; nothing more is published or counted."""
    spec = spec_of(
        retry=RetrySpec(max_attempts=3, initial_delay=10.0, jitter=False),
        fallback=FallbackSpec(default=0),
    )
    async with running(spec) as h:
        with trio.move_on_after(5) as scope:
            await h.service.handle.call(("fail", 1))
        assert scope.cancelled_caught
        assert h.kinds() == ["RequestFailed", "RetryScheduled"]
        stats = h.service.statistics()
        assert (stats.failed, stats.fallbacks, stats.in_flight) == (0, 0, 0)


# --- fallback -----------------------------------------------------------------------------------


async def test_a_default_answers_refusals_and_failures() -> None:
    """The default value answers a failure and a refusal; FallbackUsed names kind and cause."""
    spec = spec_of(
        breaker=BreakerSpec(failure_threshold=1),
        fallback=FallbackSpec(default="cached-ish"),
    )
    async with running(spec) as h:
        assert await h.service.handle.call(("fail", 1)) == "cached-ish"
        assert await h.service.handle.call(("ok", 2)) == "cached-ish"
        used = [e for e in h.events if isinstance(e, FallbackUsed)]
        assert [(e.kind, type(e.cause)) for e in used] == [
            ("default", Boom),
            ("default", CircuitOpenError),
        ]
        assert h.kinds() == [
            "RequestFailed",
            "CircuitStateChange",
            "FallbackUsed",
            "RequestRefused",
            "FallbackUsed",
        ]
        stats = h.service.statistics()
        assert (stats.failed, stats.refused, stats.fallbacks) == (1, 1, 2)


async def test_the_cache_serves_the_last_good_reply_up_to_exactly_its_ttl(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failure is answered by the last good reply to an equal request while it is at most
    cache_ttl old (exactly cache_ttl included); after that, or for another request, the failure
    propagates."""
    spec = spec_of(fallback=FallbackSpec(cache_ttl=10.0))
    async with running(spec) as h:
        h.plan["fail"] = 0
        t0 = trio.current_time()
        assert await h.service.handle.call(("flaky", "good")) == "good"
        h.plan["fail"] = 100
        await trio.sleep(10)
        assert await h.service.handle.call(("flaky", "good")) == "good"
        with pytest.raises(Boom):
            await h.service.handle.call(("flaky", "other"))
        await autojump_clock_advance(t0 + 10.001)
        with pytest.raises(Boom):
            await h.service.handle.call(("flaky", "good"))
        used = [e for e in h.events if isinstance(e, FallbackUsed)]
        assert [(e.kind, e.at - t0) for e in used] == [("cache", 10.0)]


async def autojump_clock_advance(until: float) -> None:
    """Sleep until the trio time ``until``."""
    await trio.sleep_until(until)


async def test_unhashable_requests_are_not_cached() -> None:
    """A request that cannot be a key is never stored, so its failure propagates."""
    spec = spec_of(fallback=FallbackSpec(cache_ttl=10.0))
    async with running(spec) as h:
        assert await h.service.handle.call(["ok", 1]) == 1
        with pytest.raises(Boom):
            await h.service.handle.call(["fail", 1])


@pytest.mark.parametrize("is_async", [False, True])
async def test_a_degraded_handler_answers_with_the_request(is_async: bool) -> None:
    """degraded(request), plain or async, answers a failure."""

    def plain(request: Any) -> Any:
        return ("degraded", request)

    async def coroutine(request: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return ("degraded", request)

    spec = spec_of(fallback=FallbackSpec(degraded=coroutine if is_async else plain))
    async with running(spec) as h:
        assert await h.service.handle.call(("fail", 1)) == ("degraded", ("fail", 1))
        assert [(e.kind, type(e.cause)) for e in h.events if isinstance(e, FallbackUsed)] == [
            ("degraded", Boom)
        ]


async def test_an_error_of_the_degraded_handler_keeps_the_original_as_context() -> None:
    """If degraded() raises, its error propagates with the original failure as __context__."""

    def broken(request: Any) -> Any:
        raise LookupError(request)

    spec = spec_of(fallback=FallbackSpec(degraded=broken))
    async with running(spec) as h:
        with pytest.raises(LookupError) as caught:
            await h.service.handle.call(("fail", 1))
        assert isinstance(caught.value.__context__, Boom)
        assert not any(isinstance(e, FallbackUsed) for e in h.events)


# --- concurrent handlers (max_concurrency) ------------------------------------------------------


async def test_concurrent_slots_run_at_once_and_the_rest_queue_or_are_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With max_concurrent=3 and max_queued=2, of 40 callers at once 3 are answered after one
    handler duration, 2 after two, and 35 are refused at once without reaching the actor."""
    spec = spec_of(bulkhead=BulkheadSpec(max_concurrent=3, max_queued=2))
    async with running(spec) as h:
        assert h.service.spawn_options()["max_concurrency"] == 3
        t0 = trio.current_time()
        answered: list[float] = []
        refused = 0

        async def caller() -> None:
            nonlocal refused
            try:
                await h.service.handle.call(("slow", 1))
            except BulkheadFullError:
                refused += 1
            else:
                answered.append(trio.current_time() - t0)

        async with trio.open_nursery() as nursery:
            for _ in range(40):
                nursery.start_soon(caller)
            await trio.testing.wait_all_tasks_blocked()
            stats = h.service.statistics()
            assert (stats.in_flight, stats.queued) == (3, 2)
            assert h.ref.statistics().in_flight == 3
        assert sorted(answered) == [1.0, 1.0, 1.0, 2.0, 2.0]
        assert refused == 35
        assert h.processed() == 5


async def test_half_open_trials_are_limited_with_concurrent_handlers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With room for 4 handlers at once, a half-open breaker still lets only
    half_open_max_calls=2 trials run; the others are refused."""
    spec = spec_of(
        breaker=BreakerSpec(failure_threshold=1, timeout=1.0, half_open_max_calls=2),
        bulkhead=BulkheadSpec(max_concurrent=4, max_queued=0),
    )
    async with running(spec) as h:
        with pytest.raises(Boom):
            await h.service.handle.call(("fail", 0))
        await trio.sleep(1)
        outcomes: list[Any] = []

        async def caller() -> None:
            try:
                outcomes.append(await h.service.handle.call(("slow", 1)))
            except CircuitOpenError as exc:
                outcomes.append(("refused", exc.retry_after))

        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(caller)
            await trio.testing.wait_all_tasks_blocked()
            assert h.ref.statistics().in_flight == 2
        assert outcomes.count(1) == 2
        assert outcomes.count(("refused", 0.0)) == 4
