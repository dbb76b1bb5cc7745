"""Snapshots of real small trees under the mock clock: exact counts, checks, JSON, Prometheus."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import trio
import trio.testing

import actors
from supervisor.observe._metrics import Metrics
from supervisor.observe._prometheus import PrometheusCollector, prometheus_text
from supervisor.observe._snapshot import snapshot_from_json, snapshot_to_json
from supervisor.rules._health import HealthChange
from supervisor.tree._loading import load_tree
from supervisor.tree._rule_specs import BreakerSpec, BulkheadSpec, RetrySpec
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ChildSpec, ServiceSpec, SupervisorSpec

try:
    import prometheus_client
except ImportError:  # pragma: no cover - the dev extra installs it
    prometheus_client = None  # type: ignore[assignment]

needs_prometheus = pytest.mark.skipif(
    prometheus_client is None,
    reason="prometheus-client is not installed (pip install 'trio-supervisor[prometheus]')",
)


class Boom(Exception):
    """What the backend raises when told to fail (its actor crashes with it)."""


class Backend(actors.Actor[Any]):
    """``("ok", s)`` answers after ``s`` seconds; ``("fail", _)`` raises :class:`Boom`."""

    async def receive(self, message: Any) -> Any:
        kind, value = message
        if kind == "fail":
            raise Boom(value)
        await trio.sleep(value)
        return value


class Idle(actors.Actor[Any]):
    """A worker that does nothing."""

    async def receive(self, message: Any) -> Any:
        return message


class Check:
    """A health check whose results are scripted per run: True/False, "raise" or "hang"."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.runs = 0

    async def __call__(self) -> bool:
        result = self.script[min(self.runs, len(self.script) - 1)]
        self.runs += 1
        if result == "raise":
            raise Boom("check")
        if result == "hang":
            await trio.sleep_forever()
        return bool(result)


def tree_spec(**service: Any) -> SupervisorSpec:
    return SupervisorSpec(
        name="app",
        max_restarts=10,
        within=60.0,
        children=(
            ChildSpec(name="worker", factory=Idle),
            ServiceSpec(name="db", factory=Backend, **service),
        ),
    )


async def call(tree: Any, request: Any) -> Any:
    with contextlib.suppress(Exception):
        return await tree.service("db").call(request)
    return None


async def test_snapshot_counts_retries_restarts_and_checks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Three answers, a request that fails twice (retried once), and three checks give exact
    metrics, health and tree state."""
    check = Check(True, False, True)
    spec = tree_spec(
        retry=RetrySpec(max_attempts=2, initial_delay=1.0, jitter=False),
        breaker=BreakerSpec(failure_threshold=3, timeout=30.0),
        health_check=check,
        health_interval=10.0,
    )
    async with run_tree(spec) as tree:
        for _ in range(3):
            assert await tree.service("db").call(("ok", 0.1)) == 0.1
        with pytest.raises(Boom):
            await tree.service("db").call(("fail", "x"))
        assert trio.current_time() == pytest.approx(1.3)
        early = tree.snapshot()
        (db,) = early.services
        assert db.calls_per_second == pytest.approx(0.4)  # 4 requests in the last 10 s
        assert db.error_rate == pytest.approx(2 / 5)  # 2 failed attempts of 5
        await trio.sleep_until(25.0)
        snap = tree.snapshot()
    assert check.runs == 3
    assert snap.at == 25.0
    assert snap.name == "app"
    assert snap.failure is None
    (db,) = snap.services
    assert db.path == "app/db"
    assert (db.successes, db.failures, dict(db.errors_by_type)) == (3, 2, {"Boom": 2})
    assert (db.retries, db.retry_delay_total) == (1, 1.0)
    assert (db.retries_exhausted, db.succeeded_after_retry) == (1, 0)
    assert db.restarts == 2
    assert (db.in_flight, db.queued, db.queued_high_water) == (0, 0, 0)
    assert (db.latency.samples, db.latency.p50, db.latency.p99) == (
        3,
        pytest.approx(100.0),
        pytest.approx(100.0),
    )
    assert (db.calls_per_second, db.error_rate) == (0.0, 0.0)
    # Health: 3 answers, 2 failed attempts, 2 restarts, 3 checks (one failed): 5 of 10 passed.
    assert (db.health_score, db.availability, db.healthy) == (50.0, 50.0, True)
    assert db.health_checks == 3
    assert db.health_check_success_rate == pytest.approx(2 / 3)
    assert (db.breaker, db.breaker_transitions, dict(db.time_in_state)) == (
        "closed",
        0,
        {"closed": 25.0},
    )
    worker, node = snap.tree.children
    assert (snap.tree.state, snap.tree.restart_budget) == ("running", 8)
    assert (worker.path, worker.kind, worker.restarts) == ("app/worker", "worker", 0)
    assert (node.path, node.kind, node.state, node.restarts, node.breaker) == (
        "app/db",
        "service",
        "running",
        2,
        "closed",
    )
    kinds = [(e.kind, e.path) for e in snap.events]
    assert kinds[:2] == [("ChildStarted", "app/worker"), ("ChildStarted", "app/db")]
    assert kinds.count(("RequestFailed", "app/db")) == 2
    assert kinds.count(("ChildRestarted", "app/db")) == 2
    assert ("RetryScheduled", "app/db") in kinds
    assert ("RequestCompleted", "app/db") not in kinds


async def test_breaker_opening_parks_and_recovers(autojump_clock: trio.testing.MockClock) -> None:
    """An open breaker shows in the node, the refusals, the time in state, and the health."""
    spec = tree_spec(breaker=BreakerSpec(failure_threshold=1, success_threshold=1, timeout=30.0))
    async with run_tree(spec) as tree:
        await trio.sleep(5.0)
        await call(tree, ("fail", "x"))
        await call(tree, ("ok", 0.0))
        await call(tree, ("ok", 0.0))
        await trio.sleep_until(15.0)
        opened = tree.snapshot()
        await trio.sleep_until(40.0)
        assert await tree.service("db").call(("ok", 0.5)) == 0.5
        await trio.sleep_until(50.0)
        closed = tree.snapshot()
    (db,) = opened.services
    assert db.breaker == "open"
    assert opened.tree.children[1].state == "parked"
    assert dict(db.refusals) == {"circuit_open": 2}
    assert dict(db.time_in_state) == {"closed": 5.0, "open": 10.0}
    assert (db.breaker_transitions, db.failures, db.successes) == (1, 1, 0)
    assert (db.health_score, db.availability) == (0.0, 0.0)  # a failed attempt + an opening
    kinds = [e.kind for e in opened.events]
    assert kinds.count("RequestRefused") == 2
    assert "ChildParked" in kinds
    (db,) = closed.services
    assert db.breaker == "closed"
    assert closed.tree.children[1].state == "running"
    assert dict(db.time_in_state) == pytest.approx(
        {"closed": 5.0 + 9.5, "open": 30.0, "half_open": 5.5}
    )
    assert db.breaker_transitions == 3
    assert db.restarts == 1  # the probation restart


async def test_many_concurrent_callers_fill_the_bulkhead(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """100 callers on a 1 + 20 bulkhead: 21 answered one by one, 79 refused, high water 20."""
    spec = tree_spec(bulkhead=BulkheadSpec(max_concurrent=1, max_queued=20))
    async with run_tree(spec) as tree:
        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(call, tree, ("ok", 1.0))
            await trio.testing.wait_all_tasks_blocked()
            busy = tree.snapshot()
        done = tree.snapshot()
    assert trio.current_time() == pytest.approx(21.0)
    (db,) = busy.services
    assert (db.in_flight, db.queued, db.queued_high_water) == (1, 20, 20)
    assert dict(db.refusals) == {"bulkhead_full": 79}
    (db,) = done.services
    assert (db.in_flight, db.queued, db.queued_high_water) == (0, 0, 20)
    assert db.successes == 21
    assert db.latency.samples == 21
    assert (db.latency.p50, db.latency.p90, db.latency.p99) == pytest.approx((11e3, 19e3, 21e3))
    assert db.calls_per_second == pytest.approx(1.0)  # answers at t = 12..21
    assert db.error_rate == 0.0


async def test_a_crashing_then_hanging_check_makes_the_service_unhealthy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A check that raises, then one that hangs past ``check_timeout``, are failed checks: the
    service turns unhealthy, a HealthChange is published, and the tree runs on."""
    changes: list[HealthChange] = []
    metrics = Metrics(failure_threshold=2, check_timeout=1.0)
    spec = tree_spec(health_check=Check("raise", "hang"), health_interval=10.0)
    async with run_tree(spec, metrics=metrics) as tree:
        tree.events.add_listener(
            lambda e: changes.append(e) if isinstance(e, HealthChange) else None
        )
        await trio.sleep_until(15.0)
        snap = tree.snapshot()
        assert tree.metrics is metrics
        assert metrics.statistics().health_checks_running == 1
    (change,) = changes
    assert (change.name, change.healthy, change.at) == ("app/db", False, 11.0)
    (db,) = snap.services
    assert (db.healthy, db.health_checks, db.health_check_success_rate) == (False, 2, 0.0)
    assert dict(metrics.health("app/db").errors_by_type) == {"Boom": 1, "TimeoutError": 1}
    assert ("HealthChange", "app/db", "unhealthy") in [
        (e.kind, e.path, e.detail) for e in snap.events
    ]


async def test_health_check_loaded_from_data(autojump_clock: trio.testing.MockClock) -> None:
    """``health_check`` and ``health_interval`` load from TOML-like data ("module:name")."""
    spec = load_tree(
        {
            "name": "app",
            "children": [
                {
                    "name": "db",
                    "factory": f"{__name__}:Backend",
                    "health_check": f"{__name__}:always_healthy",
                    "health_interval": 5.0,
                }
            ],
        }
    )
    async with run_tree(spec) as tree:
        await trio.sleep_until(12.0)
        snap = tree.snapshot()
    (db,) = snap.services
    assert (db.health_checks, db.health_check_success_rate, db.healthy) == (3, 1.0, True)


def always_healthy() -> bool:
    """A plain health check that always passes."""
    return True


async def test_without_metrics_there_is_no_snapshot() -> None:
    """``metrics=False`` leaves ``tree.metrics`` None and ``tree.snapshot()`` raises."""
    async with run_tree(tree_spec(), metrics=False) as tree:
        assert tree.metrics is None
        with pytest.raises(RuntimeError, match="without metrics"):
            tree.snapshot()


async def test_a_real_snapshot_round_trips_through_json(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """snapshot_to_json / snapshot_from_json (cattrs) give back an equal snapshot."""
    spec = tree_spec(breaker=BreakerSpec(failure_threshold=1, timeout=30.0))
    async with run_tree(spec) as tree:
        await call(tree, ("ok", 0.25))
        await call(tree, ("fail", "x"))
        await call(tree, ("ok", 0.0))
        await trio.sleep(3.0)
        snap = tree.snapshot()
    assert snap.services[0].refusals
    assert snap.events
    assert snapshot_from_json(snapshot_to_json(snap, indent=2)) == snap


@needs_prometheus
async def test_prometheus_text_has_the_expected_lines(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The Prometheus exposition carries the counters, gauges and tree nodes of a snapshot."""
    spec = tree_spec(breaker=BreakerSpec(failure_threshold=1, timeout=30.0))
    async with run_tree(spec) as tree:
        await call(tree, ("ok", 0.25))
        await call(tree, ("fail", "x"))
        await call(tree, ("ok", 0.0))
        await trio.sleep(3.0)
        snap = tree.snapshot()
    lines = set(prometheus_text(snap).splitlines())
    for line in [
        "# TYPE supervisor_service_successes_total counter",
        'supervisor_service_successes_total{service="app/db"} 1.0',
        'supervisor_service_failures_total{error_type="Boom",service="app/db"} 1.0',
        'supervisor_service_refusals_total{rule="circuit_open",service="app/db"} 1.0',
        'supervisor_service_breaker_state{service="app/db",state="open"} 1.0',
        'supervisor_service_breaker_state{service="app/db",state="closed"} 0.0',
        'supervisor_service_breaker_state_seconds_total{service="app/db",state="open"} 3.0',
        'supervisor_service_latency_seconds{quantile="0.5",service="app/db"} 0.25',
        'supervisor_service_healthy{service="app/db"} 1.0',
        'supervisor_node_state{path="app/db",state="parked"} 1.0',
        'supervisor_node_restarts_total{kind="worker",path="app/worker"} 0.0',
        'supervisor_supervisor_restart_budget{path="app"} 10.0',
    ]:
        assert line in lines, line
    collector = PrometheusCollector(lambda: snap, namespace="shop")
    registry = prometheus_client.CollectorRegistry()
    registry.register(collector)
    assert registry.get_sample_value("shop_service_successes_total", {"service": "app/db"}) == 1.0
