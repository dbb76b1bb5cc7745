"""Refusals are published per streak, and the metrics still count every one of them exactly."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.testing

import actors
from supervisor import CircuitOpenError
from supervisor.console._collapse import collapse
from supervisor.observe._events import Refusal, RequestCompleted, RequestRefused
from supervisor.observe._metrics import Metrics
from supervisor.tree._rule_specs import BreakerSpec
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ServiceSpec, SupervisorSpec


class Echo(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        return message


def _spec() -> SupervisorSpec:
    return SupervisorSpec(
        name="app",
        children=(ServiceSpec(name="db", factory=Echo, breaker=BreakerSpec(failure_threshold=1)),),
    )


async def _refuse(service: Any, n: int) -> None:
    for _ in range(n):
        with pytest.raises(CircuitOpenError):
            await service.call("q")


async def test_a_streak_is_its_first_refusal_then_one_event_with_the_count(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[Any] = []
    async with run_tree(_spec()) as tree:
        tree.events.add_listener(events.append)
        db = tree.service("db")
        breaker = db.breaker
        assert breaker is not None
        await trio.sleep(0.25)
        breaker.force_open()
        await _refuse(db, 1)
        refused = [e for e in events if isinstance(e, RequestRefused)]
        assert refused == [
            RequestRefused(
                path="app/db", at=0.25, refusal=Refusal.CIRCUIT_OPEN, retry_after=float("inf")
            )
        ]
        await trio.sleep(0.25)
        await _refuse(db, 4)
        # Counted, not yet published: the streak goes on.
        assert len([e for e in events if isinstance(e, RequestRefused)]) == 1
        await trio.sleep(0.25)
        await _refuse(db, 2)
        snapshot = tree.snapshot()  # reading the service's statistics ends the streak
        refused = [e for e in events if isinstance(e, RequestRefused)]
        assert refused[1:] == [
            RequestRefused(
                path="app/db",
                at=0.75,
                refusal=Refusal.CIRCUIT_OPEN,
                retry_after=float("inf"),
                count=6,
                since=0.5,
            )
        ]
        (service,) = snapshot.services
        assert dict(service.refusals) == {"circuit_open": 7}
        assert service.calls_per_second == pytest.approx(7 / 10)
        # The event view's collapsed row counts refusals, not events: 7, from 2 events.
        kept = [e for e in snapshot.events if e.kind == "RequestRefused"]
        assert [e.count for e in kept] == [1, 6]
        (row,) = [r for r in collapse(snapshot.events) if r.kind == "RequestRefused"]
        assert (row.count, row.detail) == (7, "refused: circuit_open, retry after infs")
        assert db.statistics().refused == 7


async def test_a_streak_never_spans_two_rate_buckets_so_rates_stay_exact(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[Any] = []
    metrics = Metrics(rate_window=2.0)  # buckets of 0.2 s
    async with run_tree(_spec(), metrics=metrics) as tree:
        tree.events.add_listener(events.append)
        db = tree.service("db")
        assert db.breaker is not None
        db.breaker.force_open()
        for _ in range(10):  # 3 refusals every 0.1 s, for 1 s
            await _refuse(db, 3)
            await trio.sleep(0.1)
        snapshot = tree.snapshot()
    refused = [e for e in events if isinstance(e, RequestRefused)]
    assert sum(e.count for e in refused) == 30
    width = metrics.bucket_width
    for event in refused:  # each event's refusals lie in the bucket of its `at`
        first = event.at if event.since is None else event.since
        assert math.floor(first / width) == math.floor(event.at / width)
    (service,) = snapshot.services
    assert dict(service.refusals) == {"circuit_open": 30}
    # The window (the last 2 s, i.e. everything) holds the 30 refusals: 15 per second.
    assert service.calls_per_second == pytest.approx(15.0)


async def test_another_event_of_the_service_ends_the_streak_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[Any] = []
    async with run_tree(_spec()) as tree:
        tree.events.add_listener(events.append)
        db = tree.service("db")
        breaker = db.breaker
        assert breaker is not None
        breaker.force_open()
        await _refuse(db, 3)
        breaker.reset()
        assert await db.call("q") == "q"
        kinds = [
            (type(e).__name__, getattr(e, "count", None))
            for e in events
            if isinstance(e, RequestRefused | RequestCompleted)
        ]
        assert kinds == [("RequestRefused", 1), ("RequestRefused", 2), ("RequestCompleted", None)]
