"""Tests of health tracking: the pure HealthWindow core and the HealthTracker shell."""

from __future__ import annotations

import functools
import math

import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from supervisor import ConfigError, HealthTracker, ServiceStatus
from supervisor.rules._health import HealthChange, HealthWindow


class HealthWindowMachine(RuleBasedStateMachine):
    """Checks and calls against a model of the recent window and the failure run."""

    def __init__(self) -> None:
        super().__init__()
        self.window = HealthWindow("svc", failure_threshold=2, window_size=5)
        self.outcomes: list[tuple[bool, float]] = []
        self.run = 0
        self.healthy = True

    @rule(ok=st.booleans(), latency=st.sampled_from([0.0, 0.001, 0.5, 2.0]))
    def call(self, ok: bool, latency: float) -> None:
        """A recorded call counts in the window but never changes health."""
        self.window.record_call(ok=ok, latency=latency, error_type=None if ok else "E")
        self.outcomes.append((ok, latency))

    @rule(ok=st.booleans(), latency=st.sampled_from([0.0, 0.25, 1.0]))
    def check(self, ok: bool, latency: float) -> None:
        """A check moves the failure run; health flips at the threshold and on recovery."""
        change = self.window.record_check(
            ok=ok, latency=latency, error_type=None if ok else "E", now=1.0
        )
        self.outcomes.append((ok, latency))
        old = self.healthy
        self.run = 0 if ok else self.run + 1
        if ok:
            self.healthy = True
        elif self.run >= 2:
            self.healthy = False
        assert change == (self.healthy if self.healthy != old else None)

    @invariant()
    def status_follows_formula(self) -> None:
        """Score, error rate and latencies follow the documented formulas and bounds."""
        status = self.window.status()
        recent = self.outcomes[-5:]
        assert status.healthy is self.healthy
        assert status.consecutive_failures == self.run
        assert 0.0 <= status.health_score <= 100.0
        assert 0.0 <= status.error_rate <= 1.0
        if recent:
            good = sum(ok for ok, _ in recent)
            assert status.health_score == pytest.approx(100 * good / len(recent))
            assert status.error_rate == pytest.approx(1 - good / len(recent))
            lat = sorted(x for _, x in recent)
            assert status.avg_latency == pytest.approx(1000 * sum(lat) / len(lat))
            assert status.p99_latency == 1000 * lat[math.ceil(0.99 * len(lat)) - 1]
        else:
            assert status.health_score == 100.0
        total = len(self.outcomes)
        passed = sum(ok for ok, _ in self.outcomes)
        assert status.availability == pytest.approx(100 * passed / total if total else 100.0)


TestHealthWindow = HealthWindowMachine.TestCase


def test_status_before_any_check() -> None:
    """Before its first check a service is healthy with last_checked None."""
    tracker = HealthTracker()
    tracker.register_service("db", lambda: True)
    status = tracker.get_status("db")
    assert isinstance(status, ServiceStatus)
    assert status.healthy is True
    assert status.last_checked is None
    assert status.health_score == 100.0
    assert status.errors_by_type == {}


def test_unknown_and_duplicate_names() -> None:
    """An unknown name raises KeyError; registering a name twice raises ValueError."""
    tracker = HealthTracker()
    tracker.register_service("db", lambda: True)
    with pytest.raises(KeyError):
        tracker.get_status("nope")
    with pytest.raises(KeyError):
        tracker.record_call("nope", 0.1)
    with pytest.raises(ValueError, match="db"):
        tracker.register_service("db", lambda: True)


def test_record_call_outside_async_with() -> None:
    """Recorded calls feed score, error rate, errors_by_type and latencies (ms), not health."""
    tracker = HealthTracker(failure_threshold=1)
    tracker.register_service("api", lambda: True)
    tracker.record_call("api", 0.010)
    tracker.record_call("api", 0.030, ConnectionError())
    tracker.record_call("api", 0.020, TimeoutError())
    tracker.record_call("api", 0.040, ConnectionError())
    tracker.record_call("api", 0.5, trio.Cancelled._create())  # not an Exception: ignored
    status = tracker.get_status("api")
    assert status.healthy is True
    assert status.consecutive_failures == 0
    assert status.error_rate == 0.75
    assert status.availability == 25.0
    assert status.health_score == 25.0
    assert status.avg_latency == pytest.approx(25.0)
    assert status.p99_latency == pytest.approx(40.0)
    assert status.errors_by_type == {"ConnectionError": 2, "TimeoutError": 1}
    with pytest.raises(ValueError, match="latency"):
        tracker.record_call("api", -1)


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """HEALTH_CHECK_* give defaults; the interval is read at register_service."""
    monkeypatch.setenv("HEALTH_CHECK_FAILURE_THRESHOLD", "7")
    monkeypatch.setenv("HEALTH_CHECK_TIMEOUT", "2.5")
    tracker = HealthTracker()
    assert (tracker.failure_threshold, tracker.check_timeout) == (7, 2.5)
    assert HealthTracker(failure_threshold=2).failure_threshold == 2
    monkeypatch.setenv("HEALTH_CHECK_INTERVAL", "oops")
    with pytest.raises(ConfigError, match=r"HEALTH_CHECK_INTERVAL.*'oops'"):
        tracker.register_service("a", lambda: True)
    monkeypatch.setenv("HEALTH_CHECK_INTERVAL", "0")
    with pytest.raises(ConfigError, match="HEALTH_CHECK_INTERVAL"):
        tracker.register_service("a", lambda: True)
    monkeypatch.setenv("HEALTH_CHECK_FAILURE_THRESHOLD", "0")
    with pytest.raises(ConfigError, match=r"HEALTH_CHECK_FAILURE_THRESHOLD.*'0'"):
        HealthTracker()
    monkeypatch.setenv("HEALTH_CHECK_TIMEOUT", "-1")
    with pytest.raises(ConfigError, match="HEALTH_CHECK_TIMEOUT"):
        HealthTracker(failure_threshold=1)
    with pytest.raises(ConfigError, match="`check_timeout` must be a number > 0"):
        HealthTracker(failure_threshold=1, check_timeout=0)


async def test_interval_env_read_at_registration(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    """A change of HEALTH_CHECK_INTERVAL after register_service has no effect."""
    starts: list[float] = []
    monkeypatch.setenv("HEALTH_CHECK_INTERVAL", "4")
    tracker = HealthTracker()
    tracker.register_service("a", lambda: starts.append(trio.current_time()))
    monkeypatch.setenv("HEALTH_CHECK_INTERVAL", "1")
    async with tracker:
        await trio.sleep(9)
    assert starts == [0.0, 4.0, 8.0]


async def test_start_to_start_without_overlap(autojump_clock: trio.testing.MockClock) -> None:
    """Checks start every interval; a slow check delays the next, never overlaps it."""
    starts: list[float] = []
    durations = iter([0.5, 3.5, 0.0, 0.0, 0.0])
    active = 0

    async def check() -> bool:
        nonlocal active
        active += 1
        assert active == 1
        starts.append(trio.current_time())
        await trio.sleep(next(durations))
        active -= 1
        return True

    tracker = HealthTracker(check_timeout=10)
    tracker.register_service("svc", check, interval=2.0)
    async with tracker:
        assert trio.current_time() == 0.5  # entering waited for the first round
        assert tracker.get_status("svc").last_checked == 0.5
        await trio.sleep(7.25)  # leave at 7.75, between two due times
    assert starts == [0.0, 2.0, 5.5, 7.5]


async def test_check_failures_and_alerts(autojump_clock: trio.testing.MockClock) -> None:
    """Raise, False and timeout fail; alerts fire once per transition, plain or async."""
    plan = iter(["raise", "false", "slow", "ok", "ok", "false"])
    alerts: list[tuple[float, bool, int]] = []
    changes: list[HealthChange] = []

    async def check() -> bool:
        step = next(plan, "ok")
        if step == "raise":
            raise ConnectionError
        if step == "slow":
            await trio.sleep(5)
        return step != "false"

    async def on_alert(status: ServiceStatus) -> None:
        await trio.lowlevel.checkpoint()
        alerts.append((trio.current_time(), status.healthy, status.consecutive_failures))

    tracker = HealthTracker(failure_threshold=3, check_timeout=1.0, on_alert=on_alert)
    tracker.add_listener(changes.append)
    tracker.register_service("db", check, interval=10.0)
    async with tracker:
        await trio.sleep(55)
    assert alerts == [(21.0, False, 3), (30.0, True, 0)]
    assert [(c.name, c.healthy, c.at) for c in changes] == [("db", False, 21.0), ("db", True, 30.0)]
    status = tracker.get_status("db")
    assert status.errors_by_type == {"ConnectionError": 1, "TimeoutError": 1}
    assert status.consecutive_failures == 1  # the check at 50.0 returned False
    assert status.healthy is True
    assert status.last_checked == 50.0


async def test_plain_on_alert_and_concurrent_services(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Many services are checked concurrently; a plain on_alert is called with the status."""
    alerts: list[str] = []
    tracker = HealthTracker(failure_threshold=1, on_alert=lambda s: alerts.append(s.name))
    for i in range(100):
        tracker.register_service(f"s{i}", functools.partial(_not_multiple_of_ten, i), 1.0)
    async with tracker:
        assert trio.current_time() == 0.0
        assert tracker.statistics().unhealthy == tuple(f"s{i}" for i in range(0, 100, 10))
        await trio.sleep(3.5)
    assert sorted(alerts) == sorted(f"s{i}" for i in range(0, 100, 10))
    assert tracker.get_status("s1").checks == 4
    assert repr(tracker) == "<HealthTracker 100 services, 10 unhealthy, idle>"


async def test_register_while_running(autojump_clock: trio.testing.MockClock) -> None:
    """A service registered inside `async with` is checked at once and then every interval."""
    starts: list[float] = []
    async with HealthTracker() as tracker:
        await trio.sleep(1)
        tracker.register_service("late", lambda: starts.append(trio.current_time()), 2.0)
        await trio.sleep(5)
    assert starts == [1.0, 3.0, 5.0]


def test_bad_arguments() -> None:
    """Bad callables and intervals are refused at once."""
    tracker = HealthTracker()
    with pytest.raises(TypeError):
        tracker.register_service("x", 3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="`interval` must be a number > 0"):
        tracker.register_service("x", lambda: True, interval=0)
    with pytest.raises(TypeError):
        HealthTracker(on_alert=5)  # type: ignore[arg-type]


def _not_multiple_of_ten(i: int) -> bool:
    return i % 10 != 0
