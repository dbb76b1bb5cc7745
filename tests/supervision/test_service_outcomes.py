"""Guarded services under random load (hypothesis): every call gets exactly one outcome, the
bulkhead never admits more than it may, and a half-open breaker never runs too many trials."""

from __future__ import annotations

import random
from typing import Any

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import actors
from supervisor import (
    BulkheadFullError,
    CircuitOpenError,
    OperationTimeout,
    RateLimitExceeded,
)
from supervisor.observe._bus import EventBus
from supervisor.observe._events import FallbackUsed, RequestCompleted, RequestFailed, RequestRefused
from supervisor.tree._rule_specs import (
    BreakerSpec,
    BulkheadSpec,
    FallbackSpec,
    RetrySpec,
    ThrottleSpec,
)
from supervisor.tree._service import GuardedService
from supervisor.tree._specs import ServiceSpec


class Boom(Exception):
    """A handler's failure (the actor crashes with it)."""


class Worker(actors.Actor[Any]):
    """Sleeps, then answers, fails or crashes; checks the invariants at every start."""

    def __init__(self, probe: list[Any]) -> None:
        self.probe = probe

    async def receive(self, message: Any) -> Any:
        self.probe[0]()
        kind, seconds = message
        await trio.sleep(seconds)
        if kind == "fail":
            raise Boom(seconds)
        return message


class Hook:
    """Stands in for the tree: restarts a crashed actor after a short pause."""

    def __init__(self, nursery: trio.Nursery, system: actors.ActorSystem) -> None:
        self.nursery = nursery
        self.system = system

    def child_failed(self, ref: actors.ActorRef[Any], error: Exception) -> None:
        async def later() -> None:
            await trio.sleep(0.25)
            await self.system.restart(ref)

        self.nursery.start_soon(later)


calls = st.tuples(
    st.floats(0, 6),  # when
    st.sampled_from(["ok", "ok", "fail"]),
    st.sampled_from([0, 0, 0.5, 2]),  # handler duration
    st.none() | st.floats(0.1, 4),  # timeout
    st.none() | st.floats(0, 3),  # caller cancelled after
)
specs = st.builds(
    dict,
    breaker=st.none()
    | st.builds(
        BreakerSpec,
        failure_threshold=st.integers(1, 3),
        success_threshold=st.integers(1, 2),
        timeout=st.sampled_from([0.5, 1.0, 3.0]),
        half_open_max_calls=st.integers(1, 3),
    ),
    bulkhead=st.builds(
        BulkheadSpec, max_concurrent=st.integers(1, 3), max_queued=st.integers(0, 4)
    ),
    retry=st.none()
    | st.builds(
        RetrySpec,
        max_attempts=st.integers(1, 3),
        initial_delay=st.sampled_from([0.0, 0.3, 1.0]),
        jitter=st.booleans(),
    ),
    throttle=st.none()
    | st.builds(
        ThrottleSpec,
        max_calls=st.integers(1, 5),
        period=st.sampled_from([0.5, 2.0]),
        on_limit=st.sampled_from(["raise", "wait"]),
    ),
    fallback=st.none() | st.just(FallbackSpec(default="fallback")),
)

ALLOWED = (
    Boom,
    actors.AskTimeout,
    actors.ActorStopped,
    CircuitOpenError,
    BulkheadFullError,
    RateLimitExceeded,
    OperationTimeout,
)


@given(ops=st.lists(calls, min_size=1, max_size=40), rules=specs, supervised=st.booleans())
def test_every_call_gets_exactly_one_outcome(
    ops: list[tuple[Any, ...]], rules: dict[str, Any], supervised: bool
) -> None:
    """Random mixes of successes, failures (crashes), slow handlers, timeouts and cancellations
    over many concurrent callers: one outcome per call, bulkhead and trial limits respected,
    everything given back at the end."""
    spec = ServiceSpec(name="svc", factory=Worker, **rules)
    outcomes: dict[int, list[Any]] = {}
    events: list[Any] = []
    violations: list[str] = []

    async def main() -> None:
        bus: EventBus[Any] = EventBus()
        bus.add_listener(events.append)
        service = GuardedService(spec, path="app/svc", bus=bus, rng=random.Random(0))
        core = None if service.breaker is None else service.breaker.core
        cap = spec.bulkhead.max_concurrent + spec.bulkhead.max_queued

        def probe() -> None:
            stats = service.statistics()
            if stats.in_flight + stats.queued > cap:
                violations.append(f"bulkhead admitted {stats.in_flight + stats.queued} > {cap}")
            if core is not None and core.trials_in_flight > core.half_open_max_calls:
                violations.append(f"{core.trials_in_flight} trials in flight")

        with trio.fail_after(1000):
            async with actors.ActorSystem(shutdown_grace=1) as system:
                async with trio.open_nursery() as hooks:
                    hook = Hook(hooks, system) if supervised else None
                    ref = await system.spawn(
                        Worker, [probe], supervisor=hook, **service.spawn_options()
                    )
                    service.attach(ref)

                    async def caller(i: int, when: float, kind: str, *rest: Any) -> None:
                        seconds, timeout, cancel_after = rest
                        await trio.sleep(when)
                        got = outcomes.setdefault(i, [])
                        with trio.CancelScope() as scope:
                            if cancel_after is not None:
                                scope.deadline = trio.current_time() + cancel_after
                            try:
                                got.append(
                                    await service.handle.call((kind, seconds), timeout=timeout)
                                )
                            except ALLOWED as exc:
                                got.append(exc)
                        if scope.cancelled_caught:
                            got.append("cancelled")

                    async with trio.open_nursery() as nursery:
                        for i, op in enumerate(ops):
                            nursery.start_soon(caller, i, *op)
                    hooks.cancel_scope.cancel()
                assert service.statistics().in_flight == 0
                assert service.statistics().queued == 0
                if core is not None:
                    assert core.trials_in_flight == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert violations == []
    assert sorted(outcomes) == list(range(len(ops)))
    for got in outcomes.values():
        assert len(got) == 1, got
    answered = sum(1 for got in outcomes.values() if not isinstance(got[0], BaseException))
    fallbacks = sum(1 for got in outcomes.values() if got[0] == "fallback")
    cancelled = sum(1 for got in outcomes.values() if got[0] == "cancelled")
    completed = sum(isinstance(e, RequestCompleted) for e in events)
    assert sum(isinstance(e, FallbackUsed) for e in events) == fallbacks
    # Every answer is a reply (published as completed) or the fallback's.
    assert completed + fallbacks == answered - cancelled
    assert not any(
        isinstance(e, RequestFailed) and isinstance(e.error, actors.MailboxFull) for e in events
    )
    # Refusals are published per streak: each event stands for ``count`` of them.
    refused = sum(e.count for e in events if isinstance(e, RequestRefused))
    assert refused >= sum(
        1
        for got in outcomes.values()
        if isinstance(got[0], CircuitOpenError | BulkheadFullError | RateLimitExceeded)
    )
