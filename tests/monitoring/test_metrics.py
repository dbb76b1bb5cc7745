"""Metrics and health from scripted event sequences: exact values, bounded memory, event text."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from supervisor import CircuitState, CircuitStateChange, ConfigError
from supervisor.observe._aggregates import ServiceMetrics
from supervisor.observe._bus import EventBus
from supervisor.observe._describe import describe_event
from supervisor.observe._events import (
    ChildCrashed,
    ChildParked,
    ChildRestarted,
    ChildStarted,
    FallbackUsed,
    IntensityExceeded,
    Refusal,
    RequestCompleted,
    RequestFailed,
    RequestRefused,
    RetryScheduled,
)
from supervisor.observe._logging import EventLogger
from supervisor.observe._metrics import Metrics
from supervisor.rules._breaker import ChangeReason

PATH = "app/db"


class Boom(Exception):
    """A scripted failure."""


def ok(at: float, latency: float = 0.01, attempts: int = 1) -> RequestCompleted:
    return RequestCompleted(path=PATH, at=at, latency=latency, attempts=attempts)


def fail(at: float, attempt: int = 1, latency: float = 0.02) -> RequestFailed:
    return RequestFailed(path=PATH, at=at, latency=latency, error=Boom("x"), attempt=attempt)


def retry(at: float, attempt: int, delay: float) -> RetryScheduled:
    return RetryScheduled(path=PATH, at=at, attempt=attempt, delay=delay, error=Boom("x"))


def change(at: float, old: CircuitState, new: CircuitState) -> CircuitStateChange:
    return CircuitStateChange(
        name=PATH, old_state=old, new_state=new, at=at, reason=ChangeReason.RESET
    )


def test_counters_from_a_scripted_sequence() -> None:
    """Successes, failures by type, refusals, fallbacks, retries and restarts count exactly."""
    m = ServiceMetrics(PATH, created_at=0.0, max_queued=4)
    for event in [
        ok(1.0),
        fail(1.1),
        retry(1.1, 1, 0.5),
        ok(1.7, latency=0.6, attempts=2),
        fail(2.0),
        retry(2.0, 1, 0.25),
        fail(2.3, attempt=2),
        retry(2.3, 2, 0.5),
        fail(2.9, attempt=3),
        FallbackUsed(path=PATH, at=2.9, kind="default", cause=Boom("x")),
        RequestRefused(path=PATH, at=3.0, refusal=Refusal.CIRCUIT_OPEN, retry_after=1.0),
        RequestRefused(path=PATH, at=3.1, refusal=Refusal.BULKHEAD_FULL),
        RequestFailed(path=PATH, at=3.2, latency=0.0, error=KeyError("k")),
        ChildRestarted(path=PATH, at=3.3, restarts=1, delay=0.0),
        ok(3.4),
        RequestCompleted(path="app/other", at=3.5, latency=1.0),
    ]:
        m.record(event)
    s = m.snapshot(4.0, in_flight=1, queued=2)
    assert (s.successes, s.failures) == (3, 5)
    assert dict(s.errors_by_type) == {"Boom": 4, "KeyError": 1}
    assert dict(s.refusals) == {"circuit_open": 1, "bulkhead_full": 1}
    assert dict(s.fallbacks) == {"default": 1}
    assert (s.retries, s.retry_delay_total) == (3, 1.25)
    assert (s.succeeded_after_retry, s.retries_exhausted) == (1, 1)
    assert m.failed_requests == 2  # the request of attempt 3 and the KeyError one
    assert s.restarts == 1
    assert (s.in_flight, s.queued, s.queued_high_water) == (1, 2, 4)
    assert s.breaker is None
    assert dict(s.time_in_state) == {}


def test_a_failure_followed_by_a_breaker_change_then_its_retry_is_not_final() -> None:
    """A breaker change published between a failure and its retry does not settle the failure."""
    m = ServiceMetrics(PATH, created_at=0.0, breaker=CircuitState.CLOSED)
    m.record(fail(1.0, attempt=1))
    m.record(change(1.0, CircuitState.CLOSED, CircuitState.OPEN))
    m.record(retry(1.0, 1, 2.0))
    m.record(fail(3.0, attempt=2))
    m.settle()
    assert (m.retries, m.retries_exhausted, m.failed_requests) == (1, 1, 1)


def test_rate_and_error_rate_over_ten_one_second_buckets() -> None:
    """calls/s counts outcomes in the bucket of ``now`` and the nine before; error rate counts
    attempts."""
    m = ServiceMetrics(PATH, created_at=0.0)
    m.record(ok(0.5))  # bucket 0
    for i in range(10):
        m.record(ok(5.0 + i * 0.01))  # bucket 5
    m.record(fail(9.5))  # bucket 9, final at the next event
    m.record(RequestRefused(path=PATH, at=9.6, refusal=Refusal.RATE_LIMITED))
    assert m.calls_per_second(9.99) == pytest.approx(13 / 10)
    assert m.error_rate(9.99) == pytest.approx(1 / 12)
    # At t=10.0 bucket 0 leaves the window: [1, 10] remain.
    assert m.calls_per_second(10.0) == pytest.approx(12 / 10)
    assert m.error_rate(10.0) == pytest.approx(1 / 11)
    # At t=15.0 only bucket 9 remains (refusal + failed request; one failed attempt).
    assert m.calls_per_second(15.0) == pytest.approx(2 / 10)
    assert m.error_rate(15.0) == 1.0
    assert m.calls_per_second(30.0) == 0.0
    assert m.error_rate(30.0) == 0.0


def test_latency_percentiles_nearest_rank_and_window() -> None:
    """p50/p90/p99 are nearest-rank over answers less than ``latency_window`` old, in ms."""
    m = ServiceMetrics(PATH, created_at=0.0, latency_window=60.0)
    for i in range(1, 101):  # 1..100 ms, answered at t=i
        m.record(ok(float(i), latency=i / 1000))
    lat = m.latency(100.0)  # samples with at > 40: 41..100 (60 samples)
    assert lat.samples == 60
    assert lat.p50 == pytest.approx(70.0)  # ceil(30) = 30th smallest of 41..100
    assert lat.p90 == pytest.approx(94.0)  # 54th
    assert lat.p99 == pytest.approx(100.0)  # 60th
    assert m.latency(200.0).samples == 0
    assert m.latency(200.0).p99 == 0.0


def test_breaker_time_in_each_state() -> None:
    """Time in state is split exactly at each transition and runs up to ``now``."""
    m = ServiceMetrics(PATH, created_at=10.0, breaker=CircuitState.CLOSED)
    m.record(change(15.0, CircuitState.CLOSED, CircuitState.OPEN))
    m.record(change(45.0, CircuitState.OPEN, CircuitState.HALF_OPEN))
    m.record(change(46.0, CircuitState.HALF_OPEN, CircuitState.CLOSED))
    s = m.snapshot(50.0)
    assert s.breaker == "closed"
    assert s.breaker_transitions == 3
    assert dict(s.time_in_state) == {"closed": 9.0, "open": 30.0, "half_open": 1.0}


def test_memory_stays_bounded_over_100k_events() -> None:
    """Feeding 100,000 events keeps at most 10 buckets and ``latency_samples`` samples."""
    m = ServiceMetrics(PATH, created_at=0.0, latency_samples=1000)
    for i in range(50_000):
        at = i * 0.01
        m.record(ok(at))
        m.record(fail(at, attempt=1))
    stats = m.statistics()
    assert stats.events == 100_000
    assert stats.buckets <= 10
    assert stats.latency_samples == 1000
    assert stats.error_types == 1
    metrics = Metrics(max_events=50, keep_completed=True)
    metrics.add_service(PATH, at=0.0)
    for i in range(50_000):
        metrics.record(ok(i * 0.01))
        metrics.record(ChildStarted(path="app/worker", at=i * 0.01))
    assert metrics.statistics().kept_events == 50
    assert metrics.service(PATH).statistics().latency_samples == 1000
    assert metrics.health(PATH).calls == 50_000


def test_health_fed_by_calls_restarts_and_breaker_openings() -> None:
    """Each outcome is a recorded call; a restart and a breaker opening each count as a failure."""
    metrics = Metrics()
    metrics.add_service(PATH, at=0.0, breaker=CircuitState.CLOSED)
    for event in [
        ok(1.0),
        ok(1.1),
        ok(1.2),
        fail(1.3),
        ChildCrashed(path=PATH, at=1.3, error=Boom("x")),
        ChildRestarted(path=PATH, at=1.3, restarts=1, delay=0.0),
        change(1.4, CircuitState.CLOSED, CircuitState.OPEN),
        change(31.4, CircuitState.OPEN, CircuitState.HALF_OPEN),
    ]:
        metrics.record(event)
    status = metrics.health(PATH)
    assert status.calls == 6
    assert status.health_score == pytest.approx(50.0)
    assert status.availability == pytest.approx(50.0)
    assert dict(status.errors_by_type) == {"Boom": 1, "ServiceRestarted": 1, "BreakerOpened": 1}
    assert status.healthy  # only checks decide it
    snap = metrics.service_snapshot(PATH, 40.0)
    assert (snap.health_score, snap.availability, snap.healthy) == (50.0, 50.0, True)
    assert dict(snap.errors_by_type) == {"Boom": 1}  # failed attempts only
    assert (snap.health_checks, snap.health_check_success_rate) == (0, 1.0)
    assert snap.restarts == 1
    assert dict(snap.time_in_state) == pytest.approx(
        {"closed": 1.4, "open": 30.0, "half_open": 8.6}
    )


def test_events_of_unknown_paths_are_kept_but_not_counted() -> None:
    """A Metrics without a tree counts only services added to it; every event is still kept."""
    metrics = Metrics()
    metrics.record(ok(1.0))
    metrics.record(ChildStarted(path="app/w", at=2.0))
    with pytest.raises(KeyError):
        metrics.service(PATH)
    assert [e.kind for e in metrics.recent_events()] == ["ChildStarted"]
    assert metrics.statistics().events == 2


@pytest.mark.parametrize(
    ("event", "path", "detail"),
    [
        (ok(1.0, latency=0.0123), PATH, "answered in 12.3 ms"),
        (ok(1.0, latency=0.5, attempts=3), PATH, "answered in 500.0 ms after 3 attempts"),
        (fail(1.0, attempt=2), PATH, "attempt 2 failed after 20.0 ms: Boom: x"),
        (retry(1.0, 1, 0.25), PATH, "attempt 1 failed (Boom); retry in 0.25s"),
        (
            RequestRefused(path=PATH, at=1.0, refusal=Refusal.CIRCUIT_OPEN, retry_after=2.5),
            PATH,
            "refused: circuit_open, retry after 2.5s",
        ),
        (
            FallbackUsed(path=PATH, at=1.0, kind="cache", cause=Boom()),
            PATH,
            "cache fallback answered (Boom)",
        ),
        (
            change(1.0, CircuitState.CLOSED, CircuitState.OPEN),
            PATH,
            "breaker closed -> open (reset)",
        ),
        (ChildStarted(path=PATH, at=1.0), PATH, "started"),
        (ChildCrashed(path=PATH, at=1.0, error=Boom("bad")), PATH, "crashed: Boom: bad"),
        (
            ChildRestarted(path=PATH, at=1.0, restarts=2, delay=0.5, probation=True),
            PATH,
            "restart #2 after 0.5s, on probation",
        ),
        (ChildParked(path=PATH, at=1.0, until=31.0), PATH, "parked until t=31.000 (breaker open)"),
        (
            IntensityExceeded(path="app", at=1.0, max_restarts=3, within=5.0),
            "app",
            "gave up: more than 3 restarts within 5s",
        ),
    ],
)
def test_event_text(event: Any, path: str, detail: str) -> None:
    """Each event kind gets its class name, its path and a short detail."""
    text = describe_event(event)
    assert (text.at, text.kind, text.path, text.detail) == (1.0, type(event).__name__, path, detail)


def test_options_are_validated() -> None:
    """Bad windows and sizes raise ConfigError naming the option and the value."""
    with pytest.raises(ConfigError, match=r"`rate_window` must be a number > 0 \(got 0\)"):
        ServiceMetrics(PATH, created_at=0.0, rate_window=0)
    with pytest.raises(ConfigError, match="`latency_samples`"):
        Metrics(latency_samples=0)
    with pytest.raises(ConfigError, match="`max_events`"):
        Metrics(max_events=0)
    with pytest.raises(ConfigError, match="`check_timeout`"):
        Metrics(check_timeout=-1.0)


def test_event_logger_logs_with_structured_extra(caplog: pytest.LogCaptureFixture) -> None:
    """The logging hook logs each event at INFO with its fields in ``extra``."""
    bus: EventBus[Any] = EventBus()
    bus.add_listener(EventLogger())
    with caplog.at_level(logging.INFO, logger="supervisor.events"):
        bus.publish(ChildCrashed(path=PATH, at=2.0, error=Boom("bad")))
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == "ChildCrashed app/db: crashed: Boom: bad"
    assert (record.event_kind, record.event_path, record.event_at) == ("ChildCrashed", PATH, 2.0)  # type: ignore[attr-defined]
    assert record.event_detail == "crashed: Boom: bad"  # type: ignore[attr-defined]


class ServiceMetricsMachine(RuleBasedStateMachine):
    """ServiceMetrics against a model of one service's request outcomes."""

    @initialize()
    def start(self) -> None:
        self.m = ServiceMetrics(PATH, created_at=0.0)
        self.now = 0.0
        self.model = {"ok": 0, "failed_attempts": 0, "retries": 0, "exhausted": 0, "after": 0}
        self.requests = 0

    @rule(
        failures=st.integers(0, 3),
        succeed=st.booleans(),
        step=st.floats(0.0, 3.0),
    )
    def request(self, failures: int, succeed: bool, step: float) -> None:
        """One request: ``failures`` failed attempts, retried, then a success or a final one."""
        self.now += step
        attempts = failures + (1 if succeed else 0)
        if attempts == 0:
            return
        for n in range(1, failures + 1):
            self.m.record(fail(self.now, attempt=n))
            self.model["failed_attempts"] += 1
            if n < attempts:
                self.m.record(retry(self.now, n, 0.5))
                self.model["retries"] += 1
        if succeed:
            self.m.record(ok(self.now, attempts=attempts))
            self.model["ok"] += 1
            self.model["after"] += attempts > 1
        elif failures >= 2:
            self.model["exhausted"] += 1
        self.requests += 1

    @invariant()
    def counts_match(self) -> None:
        m = self.m
        m.settle()
        assert m.successes == self.model["ok"]
        assert m.failures == self.model["failed_attempts"]
        assert m.retries == self.model["retries"]
        assert m.retries_exhausted == self.model["exhausted"]
        assert m.succeeded_after_retry == self.model["after"]
        assert m.successes + m.failed_requests == self.requests
        assert m.statistics().buckets <= 10
        assert 0.0 <= m.error_rate(self.now) <= 1.0


TestServiceMetricsMachine = ServiceMetricsMachine.TestCase
