"""Answered requests are written down by the service and counted by the metrics later: every
figure read is the one counting each ``RequestCompleted`` at once would give."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pytest
import trio
import trio.testing

import actors
from supervisor.observe._completions import CompletionLog, draining
from supervisor.observe._events import RequestCompleted
from supervisor.observe._metrics import Metrics
from supervisor.tree._rule_specs import BreakerSpec, BulkheadSpec, FallbackSpec, RetrySpec
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ServiceSpec, SupervisorSpec


class Flaky(actors.Actor[Any]):
    """Sleeps ``delay`` then answers, or raises when told to fail (a request error)."""

    async def receive(self, message: Any) -> Any:
        delay, fails = message
        await trio.sleep(delay)
        if fails:
            raise LookupError("no such row")
        return delay


def _spec() -> SupervisorSpec:
    rules: dict[str, Any] = {"request_errors": (LookupError,)}
    return SupervisorSpec(
        name="app",
        children=(
            ServiceSpec(name="plain", factory=Flaky, **rules),
            ServiceSpec(
                name="guarded",
                factory=Flaky,
                bulkhead=BulkheadSpec(max_concurrent=2, max_queued=50),
                breaker=BreakerSpec(failure_threshold=4, timeout=2.0),
                retry=RetrySpec(max_attempts=3, initial_delay=0.05, jitter=False),
                fallback=FallbackSpec(default=-1),
                **rules,
            ),
        ),
    )


async def _workload(tree: Any, rng: random.Random, *, callers: int, calls: int) -> None:
    async def caller() -> None:
        for _ in range(calls):
            name = rng.choice(("plain", "guarded"))
            request = (rng.choice((0.0, 0.01, 0.3)), rng.random() < 0.3)
            with contextlib.suppress(Exception):  # each outcome is the metrics' to count
                await tree.service(name).call(request)
            await trio.sleep(rng.random() * 0.2)

    async with trio.open_nursery() as nursery:
        for _ in range(callers):
            nursery.start_soon(caller)


async def test_metrics_counted_from_the_log_equal_metrics_counting_each_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A reference Metrics fed every event as it is published (no log) and the tree's own
    metrics (answered requests from the services' logs) read the same at every point: 40
    concurrent callers, failures, retries, breaker changes, fallbacks, reads mid-run."""
    reference = Metrics()
    async with run_tree(_spec()) as tree:
        reference.attach(tree)  # someone else listens: every event is published
        metrics = tree.metrics
        assert metrics is not None
        rng = random.Random(7)
        for _ in range(4):
            await _workload(tree, rng, callers=40, calls=10)
            now = trio.current_time()
            for path in ("app/plain", "app/guarded"):
                assert metrics.service_snapshot(path, now) == reference.service_snapshot(path, now)
        assert metrics.service("app/guarded").successes > 100


async def test_with_only_the_metrics_listening_no_completion_is_published(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Nobody but the metrics listens: answered requests cost no event, and are all counted,
    with their latencies, also past the log's limit (the log drains itself)."""
    async with run_tree(_spec()) as tree:
        service = tree.service("plain")
        published = tree.events.published
        for _ in range(600):
            await service.call((0.01, False))
        assert tree.events.published == published
        assert tree.metrics is not None
        stats = tree.metrics.service("app/plain")
        assert stats.successes == 600
        snapshot = tree.metrics.service_snapshot("app/plain", trio.current_time())
        assert snapshot.latency.samples == 600
        assert snapshot.latency.p50 == pytest.approx(10.0)  # ms


async def test_a_subscriber_sees_every_completion_and_the_metrics_count_each_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with run_tree(_spec()) as tree:
        subscription = tree.events.subscribe()
        for i in range(5):
            await tree.service("plain").call((0.0, False))
            assert tree.metrics is not None
            assert tree.metrics.service("app/plain").successes == i + 1
        subscription.close()
        seen = [e for e in subscription._buffer if isinstance(e, RequestCompleted)]
        assert len(seen) == 5


async def test_keep_completed_keeps_every_completion_as_it_happens(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The kept events need each completion in order: with ``keep_completed`` there is no log."""
    metrics = Metrics(keep_completed=True)
    assert metrics.completion_log("app/plain") is None
    async with run_tree(_spec(), metrics=metrics) as tree:
        await tree.service("plain").call((0.0, False))
        assert [e.kind for e in metrics.recent_events()].count("RequestCompleted") == 1


def test_the_log_drains_itself_when_full_and_only_when_it_holds_entries() -> None:
    drained: list[tuple[list[float], list[float], list[int]]] = []
    log = CompletionLog(lambda full: drained.append(full.take()), limit=3)
    log.drain()
    assert drained == []
    log.add(1.0, 0.1, 1)
    log.add(2.0, 0.2, 2)
    assert drained == []
    assert len(log) == 2
    log.add(3.0, 0.3, 1)
    assert drained == [([1.0, 2.0, 3.0], [0.1, 0.2, 0.3], [1, 2, 1])]
    assert len(log) == 0
    log.add(4.0, 0.4, 1)
    log.drain()
    assert drained[-1] == ([4.0], [0.4], [1])


async def test_a_health_check_drains_as_it_ends_whatever_the_way(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Plain, async, raising or cut off: the drain runs once, as the check ends (so the tracker
    records the check after every answer that came before it)."""
    calls: list[str] = []

    def drain() -> None:
        calls.append("drain")

    def plain() -> bool:
        calls.append("plain")
        return True

    def broken() -> bool:
        calls.append("broken")
        raise OSError("down")

    async def slow() -> bool:
        await trio.sleep(1)
        calls.append("slow")
        return False

    assert draining(plain, drain)() is True
    with pytest.raises(OSError, match="down"):
        draining(broken, drain)()
    assert await draining(slow, drain)() is False
    with trio.move_on_after(0.5):
        await draining(slow, drain)()
    assert calls == ["plain", "drain", "broken", "drain", "slow", "drain", "drain"]
