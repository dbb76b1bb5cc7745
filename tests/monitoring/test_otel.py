"""The OpenTelemetry exporter: metrics read from snapshots, a histogram from the events, and a
span per guarded call, checked with the SDK's in-memory reader and exporter."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest
import trio
import trio.testing

import actors
from supervisor import CircuitOpenError, ConfigError, OpenTelemetryExporter
from supervisor.observe._bus import EventBus
from supervisor.tree._rule_specs import BreakerSpec, BulkheadSpec, FallbackSpec, RetrySpec
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ServiceSpec, SupervisorSpec

otel_sdk = pytest.importorskip("opentelemetry.sdk", reason="the dev extra installs the SDK")

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode  # noqa: E402


class Boom(Exception):
    """What the backend raises when told to fail."""


class Backend(actors.Actor[Any]):
    """``("ok", s)`` answers after ``s`` seconds; ``("fail", _)`` raises :class:`Boom`;
    ``("flaky", n)`` fails while the shared countdown is above 0."""

    countdown = 0

    async def receive(self, message: Any) -> Any:
        kind, value = message
        if kind == "fail":
            raise Boom(value)
        if kind == "flaky" and Backend.countdown > 0:
            Backend.countdown -= 1
            raise Boom(value)
        await trio.sleep(value if kind == "ok" else 0.0)
        return value


def spec(**rules: Any) -> SupervisorSpec:
    return SupervisorSpec(
        name="app",
        max_restarts=100,
        children=(ServiceSpec(name="db", factory=Backend, **rules),),
    )


class Sdk:
    """An SDK meter provider and tracer provider with in-memory reader and exporter."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.spans = InMemorySpanExporter()
        self.tracers = TracerProvider()
        self.tracers.add_span_processor(SimpleSpanProcessor(self.spans))

    def exporter(self, **options: Any) -> OpenTelemetryExporter:
        return OpenTelemetryExporter(
            meter_provider=self.meters, tracer_provider=self.tracers, **options
        )

    def points(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Every data point collected now, by metric name: (attributes, point)."""
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        found.setdefault(metric.name, []).append((dict(point.attributes), point))
        return found

    def value(self, name: str, **attributes: Any) -> float:
        wanted = {key.replace("__", "."): value for key, value in attributes.items()}
        for attrs_, point in self.points().get(name, []):
            if all(attrs_.get(key) == value for key, value in wanted.items()):
                return float(point.value)
        raise KeyError((name, wanted))


PATH = "app/db"


async def test_metrics_are_read_from_the_snapshot(autojump_clock: trio.testing.MockClock) -> None:
    """Calls by outcome, failures by type, retries, refusals, fallbacks, restarts, breaker state,
    mailbox depth and health equal the snapshot's numbers."""
    sdk = Sdk()
    rules = {
        "breaker": BreakerSpec(failure_threshold=2, timeout=30.0),
        "retry": RetrySpec(max_attempts=2, initial_delay=0.1, jitter=False, exceptions=(Boom,)),
        "fallback": FallbackSpec(default="fallback"),
    }
    async with run_tree(spec(**rules)) as tree:
        exporter = sdk.exporter()
        exporter.attach(tree)
        db = tree.service("db")
        assert await db.call(("ok", 0.01)) == 0.01
        assert await db.call(("fail", 1)) == "fallback"  # 2 attempts: opens the breaker
        assert await db.call(("ok", 0.01)) == "fallback"  # refused, answered by the fallback
        snap = tree.snapshot().services[0]
        path = {"supervisor.service.path": PATH}
        assert sdk.value("supervisor.service.calls", supervisor__call__outcome="answered") == 1
        assert sdk.value("supervisor.service.calls", supervisor__call__outcome="failed") == 1
        assert sdk.value("supervisor.service.calls", supervisor__call__outcome="refused") == 1
        assert sdk.value("supervisor.service.failures", error__type="Boom") == 2
        assert sdk.value("supervisor.service.retries") == 1
        assert (
            sdk.value("supervisor.service.refusals", supervisor__refusal__rule="circuit_open") == 1
        )
        assert sdk.value("supervisor.service.fallbacks", supervisor__fallback__kind="default") == 2
        assert sdk.value("supervisor.service.restarts") == snap.restarts
        assert sdk.value("supervisor.breaker.state", supervisor__breaker__state="open") == 1
        assert sdk.value("supervisor.breaker.state", supervisor__breaker__state="closed") == 0
        assert sdk.value("supervisor.service.mailbox.depth") == 0
        assert sdk.value("supervisor.service.in_flight") == 0
        assert sdk.value("supervisor.service.health_score") == snap.health_score
        for points in sdk.points().values():
            assert all(attributes.items() >= path.items() for attributes, _ in points)
        exporter.detach()


async def test_latency_histogram_from_the_answered_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every answered call's latency (seconds, retries included) lands in
    ``supervisor.call.duration``; failed calls do not."""
    sdk = Sdk()
    async with run_tree(spec()) as tree:
        exporter = sdk.exporter(spans=False)
        exporter.attach(tree)
        db = tree.service("db")
        for seconds in (0.02, 0.2, 2.0):
            await db.call(("ok", seconds))
        with pytest.raises(Boom):
            await db.call(("fail", 0))
        (attributes, point), *_ = sdk.points()["supervisor.call.duration"]
        assert attributes == {"supervisor.service.path": PATH}
        assert point.count == 3
        assert math.isclose(point.sum, 2.22)
        assert (point.min, point.max) == pytest.approx((0.02, 2.0))
        assert 0.25 in point.explicit_bounds
        assert exporter.statistics().durations == 3


async def test_the_mailbox_depth_gauge_sees_queued_requests(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """While one request runs and two wait, in flight is 1 and the mailbox depth 2."""
    sdk = Sdk()
    async with run_tree(spec(bulkhead=BulkheadSpec(max_concurrent=1, max_queued=5))) as tree:
        sdk.exporter().attach(tree)
        db = tree.service("db")
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(db.call, ("ok", 1.0))
            await trio.testing.wait_all_tasks_blocked()
            assert sdk.value("supervisor.service.in_flight") == 1
            assert sdk.value("supervisor.service.mailbox.depth") == 2


async def test_a_span_per_call_with_attempts_retries_and_fallback(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A call that fails, is retried, fails again and is answered by the fallback is one span:
    its deadline and timeout as attributes, two attempts, one retry and the fallback as span
    events, outcome ``fallback``."""
    sdk = Sdk()
    rules = {
        "retry": RetrySpec(max_attempts=2, initial_delay=0.5, jitter=False, exceptions=(Boom,)),
        "fallback": FallbackSpec(default="fallback"),
        "timeout": 10.0,
    }
    async with run_tree(spec(**rules)) as tree:
        sdk.exporter(metrics=False).attach(tree)
        started = trio.current_time()
        assert await tree.service("db").call(("fail", 1)) == "fallback"
    (span,) = sdk.spans.get_finished_spans()
    assert span.name == f"call {PATH}"
    assert span.attributes is not None
    assert span.attributes["supervisor.service.path"] == PATH
    assert span.attributes["supervisor.call.deadline"] == pytest.approx(started + 10.0)
    assert span.attributes["supervisor.call.timeout"] == pytest.approx(10.0)
    assert span.attributes["supervisor.call.outcome"] == "fallback"
    assert span.attributes["supervisor.call.attempts"] == 2
    assert [event.name for event in span.events] == [
        "supervisor.attempt",
        "supervisor.retry",
        "supervisor.attempt",
        "supervisor.fallback",
    ]
    first, retry, _, fallback = (dict(event.attributes or {}) for event in span.events)
    assert first["supervisor.call.outcome"] == "failed"
    assert first["error.type"] == "Boom"
    assert retry == {"supervisor.attempt": 1, "supervisor.retry.delay": 0.5}
    assert fallback == {"supervisor.fallback.kind": "default", "error.type": "Boom"}
    assert span.status.status_code is StatusCode.UNSET


async def test_spans_of_answered_refused_and_failed_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An answered call's span has one attempt and no deadline attribute without a timeout; a
    failure that leaves the call sets ``error.type`` and an error status, and the breaker's
    opening is a span event; a refusal is outcome ``refused``."""
    sdk = Sdk()
    async with run_tree(spec(breaker=BreakerSpec(failure_threshold=1, timeout=30.0))) as tree:
        sdk.exporter(metrics=False).attach(tree)
        db = tree.service("db")
        await db.call(("ok", 0.0))
        with pytest.raises(Boom):
            await db.call(("fail", 0))
        with pytest.raises(CircuitOpenError):
            await db.call(("ok", 0.0))
    answered, failed, refused = sdk.spans.get_finished_spans()
    assert answered.attributes is not None
    assert "supervisor.call.deadline" not in answered.attributes
    assert answered.attributes["supervisor.call.outcome"] == "answered"
    assert [event.name for event in answered.events] == ["supervisor.attempt"]
    assert failed.attributes is not None
    assert failed.attributes["supervisor.call.outcome"] == "failed"
    assert failed.attributes["error.type"] == "Boom"
    assert failed.status.status_code is StatusCode.ERROR
    names = [event.name for event in failed.events]
    assert names == ["supervisor.attempt", "supervisor.breaker.state_change", "exception"]
    change = dict(failed.events[1].attributes or {})
    assert change["supervisor.breaker.state"] == "open"
    assert refused.attributes is not None
    assert refused.attributes["supervisor.call.outcome"] == "refused"
    assert refused.attributes["error.type"] == "CircuitOpenError"
    assert refused.events[0].name == "supervisor.refusal"


async def test_concurrent_calls_get_their_own_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Fifty concurrent calls, half failing, make fifty spans, each with only its own events."""
    sdk = Sdk()
    async with run_tree(spec(fallback=FallbackSpec(default=None))) as tree:
        sdk.exporter(metrics=False).attach(tree)
        db = tree.service("db")
        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(db.call, ("fail" if i % 2 else "ok", 0.01 * (i % 5)))
    spans = sdk.spans.get_finished_spans()
    assert len(spans) == 50
    outcomes = sorted(str((span.attributes or {})["supervisor.call.outcome"]) for span in spans)
    assert outcomes == ["answered"] * 25 + ["fallback"] * 25
    for span in spans:
        names = [event.name for event in span.events]
        if (span.attributes or {})["supervisor.call.outcome"] == "answered":
            assert names == ["supervisor.attempt"]
        else:
            assert names == ["supervisor.attempt", "supervisor.fallback"]


async def test_a_cancelled_call_ends_its_span(autojump_clock: trio.testing.MockClock) -> None:
    """A caller cancelled mid-call ends the span with outcome ``cancelled``; the cancellation
    propagates."""
    sdk = Sdk()
    async with run_tree(spec()) as tree:
        sdk.exporter(metrics=False).attach(tree)
        with trio.move_on_after(0.5) as scope:
            await tree.service("db").call(("ok", 5.0))
        assert scope.cancelled_caught
    (span,) = sdk.spans.get_finished_spans()
    assert (span.attributes or {})["supervisor.call.outcome"] == "cancelled"


async def test_detach_stops_spans_and_observations(autojump_clock: trio.testing.MockClock) -> None:
    """After detach, calls make no span and the instruments observe nothing; the bus has no
    tracer left and a second detach does nothing."""
    sdk = Sdk()
    async with run_tree(spec()) as tree:
        exporter = sdk.exporter()
        exporter.attach(tree)
        exporter.detach()
        exporter.detach()
        assert tree.events.call_tracer is None
        await tree.service("db").call(("ok", 0.0))
        assert sdk.spans.get_finished_spans() == ()
        assert "supervisor.service.calls" not in sdk.points()
        assert not exporter.statistics().attached


async def test_collections_from_another_thread_read_the_kept_snapshot(
    mock_clock: trio.testing.MockClock,
) -> None:
    """A collection made in another thread never touches the tree: it reads the snapshot the
    exporter keeps, refreshed every ``refresh_interval`` seconds in the tree's trio run."""
    sdk = Sdk()
    async with run_tree(spec()) as tree:
        sdk.exporter(refresh_interval=1.0).attach(tree)
        await tree.service("db").call(("ok", 0.0))
        before = await trio.to_thread.run_sync(sdk.value, "supervisor.service.calls")
        assert before == 0  # the kept snapshot predates the call
        mock_clock.jump(1.0)
        await trio.testing.wait_all_tasks_blocked()
        after = await trio.to_thread.run_sync(sdk.value, "supervisor.service.calls")
        assert after == 1


async def test_bad_options_and_a_second_tracer(autojump_clock: trio.testing.MockClock) -> None:
    """Bad options raise at creation naming the option; one tracer per bus; one tree per
    exporter; a tree without metrics cannot export them."""
    sdk = Sdk()
    with pytest.raises(ConfigError, match="refresh_interval"):
        sdk.exporter(refresh_interval=0)
    with pytest.raises(TypeError, match="spans"):
        sdk.exporter(spans="yes")
    bus: EventBus[Any] = EventBus()
    async with run_tree(spec(), events=bus) as tree:
        first = sdk.exporter()
        first.attach(tree)
        with pytest.raises(RuntimeError, match="already attached"):
            first.attach(tree)
        with pytest.raises(RuntimeError, match="already traced"):
            sdk.exporter().attach(tree)
        sdk.exporter(spans=False).attach(tree)  # metrics only: no tracer needed
    async with run_tree(spec(), metrics=False) as bare:
        with pytest.raises(RuntimeError, match="without metrics"):
            sdk.exporter().attach(bare)
        assert bare.events.call_tracer is None


def test_the_package_imports_without_opentelemetry() -> None:
    """``import supervisor`` does not import OpenTelemetry (it is an optional extra)."""
    code = (
        "import sys; import supervisor; "
        "assert not any(m.startswith('opentelemetry') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
