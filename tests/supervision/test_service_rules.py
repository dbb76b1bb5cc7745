"""Guarded services with the rules beyond API.md, from their specs: a failure-rate breaker,
slow calls, classifiers, an exponential open timeout, retry on results, a total time limit, a
retry budget, and the RetryGaveUp events; and those specs loaded from TOML."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import actors
from supervisor import (
    ChangeReason,
    CircuitOpenError,
    CircuitState,
    CircuitStateChange,
    ConfigError,
    GiveUpReason,
    OpenBackoff,
    RateWindow,
    RetryableResult,
    RetryBudgetConfig,
    RetryGaveUp,
)
from supervisor.cores import BreakerCore, RateBreakerCore
from supervisor.observe._bus import EventBus
from supervisor.observe._events import RequestCompleted, RequestFailed, RetryScheduled
from supervisor.tree._limit_specs import HedgeSpec
from supervisor.tree._loading import load_tree, load_tree_file
from supervisor.tree._rule_specs import BreakerSpec, BulkheadSpec, RetrySpec
from supervisor.tree._service import GuardedService
from supervisor.tree._specs import ServiceSpec

PATH = "app/api"


class Boom(Exception):
    """What the backend raises when told to fail."""


class NotFound(Exception):
    """An error the breakers below exclude."""


def is_unavailable(reply: object) -> bool:
    """A reply that stands for an outage (a 503)."""
    return reply == 503


class Backend(actors.Actor[Any]):
    """``("ok", v)`` answers v, ``("slow", s)`` sleeps s then answers s, ``("fail", v)`` raises
    Boom, ``("missing", v)`` raises NotFound, ``("status", [codes])`` answers the next code."""

    async def receive(self, message: Any) -> Any:
        kind, value = message
        if kind == "slow":
            await trio.sleep(value)
            return value
        if kind == "fail":
            raise Boom(value)
        if kind == "missing":
            raise NotFound(value)
        if kind == "status":
            return value.pop(0)
        return value


class RestartAtOnce:
    """Stands in for the tree: a crashed actor is restarted at once."""

    def __init__(self, nursery: trio.Nursery, system: actors.ActorSystem) -> None:
        self.nursery, self.system = nursery, system

    def child_failed(self, ref: actors.ActorRef[Any], error: Exception) -> None:
        self.nursery.start_soon(self.system.restart, ref)


@attrs.define
class Harness:
    service: GuardedService
    events: list[Any]

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


@contextlib.asynccontextmanager
async def running(**rules: Any) -> AsyncIterator[Harness]:
    bus: EventBus[Any] = EventBus()
    events: list[Any] = []
    bus.add_listener(events.append)
    rules.setdefault("bulkhead", BulkheadSpec(max_concurrent=100, max_queued=100))
    service = GuardedService(ServiceSpec(name="api", factory=Backend, **rules), path=PATH, bus=bus)
    async with actors.ActorSystem(shutdown_grace=0) as system, trio.open_nursery() as nursery:
        ref = await system.spawn(
            Backend,
            name="api",
            supervisor=RestartAtOnce(nursery, system),
            **service.spawn_options(),
        )
        service.attach(ref)
        yield Harness(service, events)
        nursery.cancel_scope.cancel()


async def _quiet(harness: Harness, request: Any) -> Any:
    with contextlib.suppress(Boom, NotFound, CircuitOpenError):
        return await harness.service.handle.call(request)
    return None


def test_a_plain_breaker_spec_keeps_the_plain_core() -> None:
    """A BreakerSpec without the new fields gives the service the plain core (its fast path);
    one with any of them, the measured core."""
    bus: EventBus[Any] = EventBus()
    plain = GuardedService(
        ServiceSpec(name="api", factory=Backend, breaker=BreakerSpec()), path=PATH, bus=bus
    )
    assert type(plain.breaker.core) is BreakerCore  # type: ignore[union-attr]
    rich = GuardedService(
        ServiceSpec(name="api", factory=Backend, breaker=BreakerSpec(exclude=(NotFound,))),
        path=PATH,
        bus=bus,
    )
    assert isinstance(rich.breaker.core, RateBreakerCore)  # type: ignore[union-attr]


async def test_a_hedged_reply_reaches_the_result_classifier(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With hedging on, the winning attempt's reply is still classified by the breaker."""
    breaker = BreakerSpec(failure_threshold=2, is_failure_result=is_unavailable)
    async with running(breaker=breaker, hedge=HedgeSpec(delay=10.0)) as h:
        assert await h.service.handle.call(("status", [503])) == 503
        assert await h.service.handle.call(("status", [503])) == 503
        assert h.service.statistics().state is CircuitState.OPEN


async def test_failure_rate_breaker_of_a_service(autojump_clock: trio.testing.MockClock) -> None:
    """Half of the last 4 requests failed: the service's breaker opens on the rate, its
    statistics show the window, and the next request is refused on the caller's side."""
    breaker = BreakerSpec(timeout=5.0, window=RateWindow(size=4, failure_rate=0.5))
    async with running(breaker=breaker) as h:
        for request in (("fail", 1), ("ok", 2), ("fail", 3)):
            await _quiet(h, request)
            await trio.testing.wait_all_tasks_blocked()
        assert h.service.breaker is not None
        window = h.service.breaker.statistics().window
        assert window is not None
        assert (window.calls, window.failures) == (3, 2)
        assert h.service.statistics().state is CircuitState.CLOSED
        await _quiet(h, ("ok", 4))
        assert h.service.statistics().state is CircuitState.OPEN
        [change] = h.of(CircuitStateChange)
        assert change.reason is ChangeReason.FAILURE_RATE
        with pytest.raises(CircuitOpenError):
            await h.service.handle.call(("ok", 5))


async def test_slow_replies_open_a_service_breaker(autojump_clock: trio.testing.MockClock) -> None:
    """Replies slower than `slow_call_duration` open the breaker on the slow-call rate."""
    window = RateWindow(size=2, failure_rate=None, slow_call_rate=0.5, slow_call_duration=1.0)
    async with running(breaker=BreakerSpec(window=window)) as h:
        assert await h.service.handle.call(("slow", 1.0)) == 1.0  # not slower than 1 s
        assert await h.service.handle.call(("slow", 0.5)) == 0.5
        assert h.service.statistics().state is CircuitState.CLOSED
        assert await h.service.handle.call(("slow", 1.5)) == 1.5
        assert h.service.statistics().state is CircuitState.OPEN
        assert h.of(CircuitStateChange)[0].reason is ChangeReason.SLOW_CALL_RATE


async def test_classifiers_of_a_service_breaker(autojump_clock: trio.testing.MockClock) -> None:
    """Excluded errors count as nothing; a 503 reply counts as a failure and is still the
    answer."""
    breaker = BreakerSpec(
        failure_threshold=2, exclude=(NotFound,), is_failure_result=is_unavailable
    )
    async with running(breaker=breaker) as h:
        for _ in range(3):
            await _quiet(h, ("missing", "k"))
            await trio.testing.wait_all_tasks_blocked()
        assert h.service.statistics().state is CircuitState.CLOSED
        assert await h.service.handle.call(("status", [503])) == 503
        assert await h.service.handle.call(("status", [503])) == 503
        assert h.service.statistics().state is CircuitState.OPEN


async def test_open_backoff_parks_the_child_longer(autojump_clock: trio.testing.MockClock) -> None:
    """After a failed trial, park_until is the longer open timeout."""
    breaker = BreakerSpec(
        failure_threshold=1, timeout=2.0, open_backoff=OpenBackoff(factor=3.0, max_timeout=60.0)
    )
    async with running(breaker=breaker) as h:
        t0 = trio.current_time()
        await _quiet(h, ("fail", 1))
        assert h.service.park_until(trio.current_time()) == t0 + 2.0
        await trio.sleep_until(t0 + 2.0)
        await trio.testing.wait_all_tasks_blocked()
        await _quiet(h, ("fail", 2))  # the trial fails at t0 + 2
        assert h.service.park_until(trio.current_time()) == t0 + 2.0 + 6.0


async def test_retry_on_result_and_its_events(autojump_clock: trio.testing.MockClock) -> None:
    """A reply the retry rule rejects is a failed attempt in the events (its error a
    RetryableResult); when attempts run out, the last reply is the answer."""
    retry = RetrySpec(
        max_attempts=3, initial_delay=1.0, jitter=False, retry_on_result=is_unavailable
    )
    async with running(retry=retry) as h:
        t0 = trio.current_time()
        assert await h.service.handle.call(("status", [503, 200])) == 200
        assert trio.current_time() == t0 + 1.0
        kinds = [type(e).__name__ for e in h.events]
        assert kinds == ["RequestFailed", "RetryScheduled", "RequestCompleted"]
        failed = h.of(RequestFailed)[0]
        assert isinstance(failed.error, RetryableResult)
        assert failed.error.result == 503
        h.events.clear()
        assert await h.service.handle.call(("status", [503, 503, 503])) == 503
        assert [type(e).__name__ for e in h.events][-2:] == ["RetryGaveUp", "RequestCompleted"]
        gave_up = h.of(RetryGaveUp)[0]
        assert (gave_up.attempts, gave_up.reason, gave_up.error) == (3, GiveUpReason.ATTEMPTS, None)
        assert h.of(RequestCompleted)[0].attempts == 3


async def test_retry_gives_up_with_a_reason(autojump_clock: trio.testing.MockClock) -> None:
    """RetryGaveUp follows the last RequestFailed, saying why: the error filter, the attempts,
    or the total time limit (exact times)."""
    retry = RetrySpec(
        max_attempts=10, initial_delay=1.0, jitter=False, on=(Boom,), total_timeout=5.0
    )
    async with running(retry=retry) as h:
        t0 = trio.current_time()
        with pytest.raises(Boom):
            await h.service.handle.call(("fail", 1))
        # Sleeps of 1 and 2 end at 1 and 3; 4 more would end at 7 >= 5.
        assert trio.current_time() == t0 + 3.0
        assert [e.at - t0 for e in h.of(RequestFailed)] == [0.0, 1.0, 3.0]
        assert h.events[-1] == RetryGaveUp(
            path=PATH,
            at=t0 + 3.0,
            attempts=3,
            reason=GiveUpReason.TIME_LIMIT,
            error=h.of(RequestFailed)[-1].error,
        )
        with pytest.raises(NotFound):
            await h.service.handle.call(("missing", 1))
        assert h.events[-1].reason is GiveUpReason.NOT_RETRYABLE


async def test_retry_budget_of_a_service(autojump_clock: trio.testing.MockClock) -> None:
    """40 failing requests at once with a budget of 25% + 0.5/s over 10 s: 10 + 5 retries,
    the other 25 fail at once (RetryGaveUp with reason budget), and the service counts them."""
    retry = RetrySpec(
        max_attempts=2,
        initial_delay=1.0,
        jitter=False,
        budget=RetryBudgetConfig(ratio=0.25, min_per_second=0.5, window=10.0),
    )
    async with running(retry=retry) as h:
        async with trio.open_nursery() as nursery:
            for n in range(40):
                nursery.start_soon(_quiet, h, ("fail", n))
        stats = h.service.statistics()
        assert (stats.retries, stats.retries_refused, stats.failed) == (15, 25, 40)
        reasons = [e.reason for e in h.of(RetryGaveUp)]
        assert reasons.count(GiveUpReason.BUDGET) == 25
        assert reasons.count(GiveUpReason.ATTEMPTS) == 15
        assert len(h.of(RetryScheduled)) == 15


def test_new_fields_load_from_toml(tmp_path: Path) -> None:
    """The new breaker and retry fields load from a TOML file, predicates as "module:name"."""
    path = tmp_path / "tree.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            name = "app"

            [[children]]
            name = "api"
            factory = "{__name__}:Backend"

            [children.breaker]
            exclude = ["{__name__}:NotFound"]
            is_failure_result = "{__name__}:is_unavailable"
            window = {{ duration = 30.0, failure_rate = 0.5, minimum_calls = 20 }}
            open_backoff = {{ factor = 2.0, max_timeout = 300.0 }}

            [children.retry]
            on = ["{__name__}:Boom"]
            retry_on_result = "{__name__}:is_unavailable"
            total_timeout = 10.0
            budget = {{ ratio = 0.2, min_per_second = 3.0 }}
            """
        )
    )
    spec = load_tree_file(path).children[0]
    assert isinstance(spec, ServiceSpec)
    assert spec.breaker == BreakerSpec(
        exclude=(NotFound,),
        is_failure_result=is_unavailable,
        window=RateWindow(duration=30.0, failure_rate=0.5, minimum_calls=20),
        open_backoff=OpenBackoff(factor=2.0, max_timeout=300.0),
    )
    assert spec.retry == RetrySpec(
        on=(Boom,),
        retry_on_result=is_unavailable,
        total_timeout=10.0,
        budget=RetryBudgetConfig(ratio=0.2, min_per_second=3.0),
    )


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            {"breaker": {"window": {"size": 10, "failure_rate": 2}}},
            r"children\[0\]\.breaker\.window\.failure_rate: `failure_rate` must be a rate in "
            r"\(0, 1\] \(got 2\)",
        ),
        (
            {"breaker": {"window": {"size": 10, "rate": 0.5}}},
            r"children\[0\]\.breaker\.window: unknown field\(s\) rate",
        ),
        (
            {"breaker": {"exclude": ["no.such.module:Thing"]}},
            r"children\[0\]\.breaker\.exclude: `exclude` 'no.such.module:Thing' cannot be imported",
        ),
        (
            {"retry": {"budget": {"ratio": -0.5}}},
            r"children\[0\]\.retry\.budget\.ratio: `ratio` must be a number in \[0, 1\] "
            r"\(got -0.5\)",
        ),
        (
            {"retry": {"total_timeout": 0}},
            r"children\[0\]\.retry\.total_timeout: `total_timeout` must be a number > 0 \(got 0\)",
        ),
        (
            {"breaker": {"open_backoff": {"factor": 0.5}}},
            r"children\[0\]\.breaker\.open_backoff\.factor: `factor` must be a number >= 1 "
            r"\(got 0.5\)",
        ),
    ],
)
def test_bad_new_fields_name_their_path(rules: dict[str, Any], message: str) -> None:
    """A bad new field gives one ConfigError naming its path and value."""
    data = {"name": "app", "children": [{"name": "api", "factory": f"{__name__}:Backend", **rules}]}
    with pytest.raises(ConfigError, match=message):
        load_tree(data)
