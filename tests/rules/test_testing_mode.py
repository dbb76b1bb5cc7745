"""``supervisor.testing``: retries that do not wait, capped attempts, breakers held open or
closed by name, fault flags; everything put back on exit, and modes nest."""

from __future__ import annotations

import pytest
import trio

import actors
import supervisor
from supervisor import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ConfigError,
    ExponentialBackoff,
    Fault,
    FaultSpec,
    Retrier,
    RetrySpec,
    ServiceSpec,
    SupervisorSpec,
    fault_flags,
    retry,
    run_tree,
)
from supervisor.guards import _testing


class Echo(actors.Actor[object]):
    """Answers what it is asked."""

    async def receive(self, message: object) -> object:
        return message


def _failing(times: int) -> tuple[list[float], object]:
    seen: list[float] = []

    async def flaky() -> str:
        seen.append(trio.current_time())
        if len(seen) <= times:
            raise ConnectionError("down")
        return "ok"

    return seen, flaky


def test_testing_is_the_function() -> None:
    """``supervisor.testing`` is the context manager itself, shadowed by no sub-package."""
    assert callable(supervisor.testing)
    assert supervisor.testing is _testing.testing


async def test_retries_do_not_wait(autojump_clock: trio.testing.MockClock) -> None:
    """Under testing mode a retry sleeps 0 instead of its backoff, and still retries."""
    seen, flaky = _failing(2)
    guarded = retry(max_attempts=5, initial_delay=30.0, jitter=False)(flaky)  # type: ignore[arg-type]
    with supervisor.testing() as mode:
        assert mode.retry_delay == 0.0
        assert await guarded() == "ok"
    assert len(seen) == 3
    assert seen[0] == seen[2]  # no time passed
    assert _testing.current_mode() is None


async def test_off_the_delays_are_back(autojump_clock: trio.testing.MockClock) -> None:
    """Outside testing mode the scheduled delays are slept again."""
    seen, flaky = _failing(1)
    guarded = retry(max_attempts=3, initial_delay=30.0, jitter=False)(flaky)  # type: ignore[arg-type]
    with supervisor.testing():
        pass
    assert await guarded() == "ok"
    assert seen[1] - seen[0] == 30.0


async def test_a_fixed_delay_and_a_cap(autojump_clock: trio.testing.MockClock) -> None:
    """``retry_delay`` replaces each delay; ``max_attempts`` caps every retry rule."""
    seen, flaky = _failing(10)
    guarded = retry(max_attempts=8, initial_delay=5.0)(flaky)  # type: ignore[arg-type]
    with supervisor.testing(retry_delay=0.01, max_attempts=2), pytest.raises(ConnectionError):
        await guarded()
    assert len(seen) == 2
    assert seen[1] - seen[0] == pytest.approx(0.01)

    seen, flaky = _failing(10)
    retrier = Retrier(ExponentialBackoff(initial_delay=9.0), max_attempts=6)
    with supervisor.testing(max_attempts=3), pytest.raises(ConnectionError):
        await retrier.execute(flaky)  # type: ignore[arg-type]
    assert len(seen) == 3
    assert seen[0] == seen[2]


def test_plain_functions_retry_at_once() -> None:
    """A plain function's retries do not ``time.sleep`` under testing mode."""
    calls = []

    @retry(max_attempts=3, initial_delay=60.0)
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OSError("no")
        return "ok"

    with supervisor.testing():
        assert flaky() == "ok"


async def test_the_schedule_still_decides(autojump_clock: trio.testing.MockClock) -> None:
    """Errors the rule does not retry are still not retried, and a caller's deadline still
    stops retries."""
    seen, flaky = _failing(5)
    only_timeouts = retry(max_attempts=5, exceptions=(TimeoutError,))(flaky)  # type: ignore[arg-type]
    with supervisor.testing(), pytest.raises(ConnectionError):
        await only_timeouts()
    assert len(seen) == 1

    seen, flaky = _failing(5)
    guarded = retry(max_attempts=5)(flaky)  # type: ignore[arg-type]
    with (
        supervisor.testing(retry_delay=1.0),
        trio.move_on_after(1.5),
        pytest.raises(ConnectionError),
    ):
        await guarded()
    assert len(seen) == 2  # the third attempt would start past the deadline


async def test_modes_nest(autojump_clock: trio.testing.MockClock) -> None:
    """An inner mode's options win inside it; the outer ones are back after it."""
    with supervisor.testing(retry_delay=0.5, max_attempts=4) as outer:
        with supervisor.testing(max_attempts=2) as inner:
            assert inner.retry_delay == 0.5
            assert inner.max_attempts == 2
            assert _testing.current_mode() is inner
        assert _testing.current_mode() is outer
        with supervisor.testing(retry_delay=None) as scheduled:
            assert scheduled.retry_delay is None
    assert _testing.current_mode() is None


def test_breakers_held_open_by_name_and_pattern() -> None:
    """Breakers whose names match are forced open, existing ones and new ones; they are reset
    on exit, and a breaker forced open before stays forced."""
    db = CircuitBreaker("app/backend/db")
    cache = CircuitBreaker("app/backend/cache")
    other = CircuitBreaker("app/frontend/auth")
    already = CircuitBreaker("app/backend/old")
    already.force_open()
    with supervisor.testing(open_breakers="app/backend/*"):
        assert db.state is CircuitState.OPEN
        assert cache.state is CircuitState.OPEN
        assert other.state is CircuitState.CLOSED
        late = CircuitBreaker("app/backend/late")
        assert late.state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            db.call_sync(lambda: None)
    for breaker in (db, cache, late, other):
        assert breaker.state is CircuitState.CLOSED
    assert already.core.forced_open


def test_breakers_held_closed() -> None:
    """A breaker held closed is reset and no run of failures opens it; it gets its threshold
    back on exit."""
    breaker = CircuitBreaker("payments", failure_threshold=2)
    breaker.force_open()

    def boom() -> None:
        raise OSError("boom")

    with supervisor.testing(closed_breakers=["payments"]):
        assert breaker.state is CircuitState.CLOSED
        for _ in range(50):
            with pytest.raises(OSError):
                breaker.call_sync(boom)
        assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_threshold == 2
    assert breaker.core.forced_open  # it was forced open before the mode


def test_inner_holds_are_undone_first() -> None:
    """An inner mode's hold is undone when it exits, the outer one's when the outer exits."""
    breaker = CircuitBreaker("svc")
    with supervisor.testing(closed_breakers="svc"):
        with supervisor.testing(open_breakers="svc"):
            assert breaker.state is CircuitState.OPEN
            made_inside = CircuitBreaker("svc")
            assert made_inside.state is CircuitState.OPEN
        assert breaker.state is CircuitState.CLOSED
        assert made_inside.state is CircuitState.CLOSED
    assert breaker.failure_threshold == 5


def test_flags_are_raised_for_the_block() -> None:
    """Fault flags named by the mode are on inside it and off after it."""
    with supervisor.testing(flags=["db-outage"]) as mode:
        assert "db-outage" in fault_flags
        assert mode.flags == {"db-outage"}
    assert "db-outage" not in fault_flags


def test_everything_is_put_back_after_an_error() -> None:
    """An error leaving the block still restores the mode, the breakers and the flags."""
    breaker = CircuitBreaker("restored")
    with pytest.raises(KeyError), supervisor.testing(open_breakers="restored", flags="f"):
        raise KeyError("x")
    assert breaker.state is CircuitState.CLOSED
    assert "f" not in fault_flags
    assert _testing.current_mode() is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_delay": -1}, r"`retry_delay` must be a number >= 0 \(got -1\)"),
        ({"max_attempts": 0}, r"`max_attempts` must be an integer >= 1 \(got 0\)"),
        ({"open_breakers": [3]}, r"`open_breakers` must be breaker names or patterns"),
        ({"closed_breakers": 3}, r"`closed_breakers` must be breaker names or patterns"),
        ({"flags": [""]}, r"`flags` must be flag names"),
        ({"flag_set": {"x"}}, r"`flag_set` must be a FaultFlags"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    """A bad option raises ConfigError naming it, and no mode is left in force."""
    with pytest.raises(ConfigError, match=message), supervisor.testing(**options):  # type: ignore[arg-type]
        pass
    assert _testing.current_mode() is None


async def test_a_guarded_services_retries_do_not_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The retries of a tree's guarded service follow the testing mode too."""
    spec = SupervisorSpec(
        name="app",
        max_restarts=10,
        children=[
            ServiceSpec(
                name="db",
                factory=Echo,
                retry=RetrySpec(max_attempts=4, initial_delay=10.0, jitter=False),
                faults=FaultSpec(inject=[Fault(error=OSError, limit=2)]),
            )
        ],
    )
    async with run_tree(spec) as tree:
        with supervisor.testing():
            start = trio.current_time()
            assert await tree.service("db").call("x") == "x"
            assert trio.current_time() == start
            assert tree.service("db").statistics().retries == 2
