"""The circuit breaker's contract, through its public faces, on trio's mocked clock."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from supervisor import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    CircuitStateChange,
    ConfigError,
    circuit_breaker,
)
from supervisor.rules._breaker import ChangeReason, CircuitBreakerStatistics


class Boom(Exception):
    """A counted failure in these tests."""


class Other(Exception):
    """An exception the breakers here do not count."""


async def fail() -> None:
    raise Boom("down")


async def ok() -> str:
    return "ok"


async def open_it(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        with pytest.raises(Boom):
            await breaker.call(fail)
    assert breaker.state is CircuitState.OPEN


async def test_closed_run_of_failures_opens_at_threshold() -> None:
    """Counted failures in a row open the breaker exactly when the run reaches the threshold."""
    breaker = CircuitBreaker("svc", failure_threshold=3)
    for expected in (1, 2):
        with pytest.raises(Boom):
            await breaker.call(fail)
        assert breaker.failure_count == expected
        assert breaker.state is CircuitState.CLOSED
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert breaker.state is CircuitState.OPEN


async def test_success_resets_the_failure_run() -> None:
    """A success between failures resets the run, so failures must be consecutive to open."""
    breaker = CircuitBreaker("svc", failure_threshold=2)
    for _ in range(5):
        with pytest.raises(Boom):
            await breaker.call(fail)
        assert breaker.failure_count == 1
        assert await breaker.call(ok) == "ok"
        assert breaker.failure_count == 0
    assert breaker.state is CircuitState.CLOSED


async def test_open_refuses_without_invoking(autojump_clock: trio.testing.MockClock) -> None:
    """An open breaker refuses at once with the exact time left, and never calls the function."""
    breaker = CircuitBreaker("svc", failure_threshold=1, timeout=10.0)
    calls = 0

    async def counted() -> None:
        nonlocal calls
        calls += 1

    await open_it(breaker)
    await trio.sleep(4.0)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(counted)
    assert calls == 0
    assert info.value.name == "svc"
    assert info.value.retry_after == pytest.approx(6.0)


async def test_half_open_from_exactly_timeout(autojump_clock: trio.testing.MockClock) -> None:
    """The state reads HALF_OPEN from exactly `timeout` after opening, with no call needed."""
    breaker = CircuitBreaker("svc", failure_threshold=1, timeout=5.0)
    await open_it(breaker)
    opened = trio.current_time()
    await trio.sleep_until(opened + 5.0 - 1e-9)
    assert breaker.state is CircuitState.OPEN
    await trio.sleep_until(opened + 5.0)
    assert breaker.state is CircuitState.HALF_OPEN


async def test_half_open_event_is_stamped_when_timeout_ran_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The OPEN -> HALF_OPEN event carries the moment the timeout ran out, though noticed later."""
    breaker = CircuitBreaker("svc", failure_threshold=1, timeout=5.0)
    events: list[CircuitStateChange] = []
    breaker.add_listener(events.append)
    start = trio.current_time()
    await open_it(breaker)
    await trio.sleep(12.0)
    assert await breaker.call(ok) == "ok"
    assert [(e.old_state, e.new_state, e.at - start) for e in events] == [
        (CircuitState.CLOSED, CircuitState.OPEN, 0.0),
        (CircuitState.OPEN, CircuitState.HALF_OPEN, 5.0),
    ]
    assert all(e.name == "svc" for e in events)
    assert events[1].reason is ChangeReason.TIMEOUT_ELAPSED


async def test_trial_failure_reopens_with_a_new_timer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failed trial opens the breaker again and its timeout counts from that failure."""
    breaker = CircuitBreaker("svc", failure_threshold=1, timeout=5.0)
    await open_it(breaker)
    await trio.sleep(7.0)
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(ok)
    assert info.value.retry_after == pytest.approx(5.0)
    await trio.sleep(5.0)
    assert breaker.state is CircuitState.HALF_OPEN


async def test_success_threshold_trials_close_and_reset(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """`success_threshold` successful trials close the breaker with every count reset."""
    breaker = CircuitBreaker("svc", failure_threshold=2, success_threshold=3, timeout=1.0)
    await open_it(breaker)
    await trio.sleep(1.0)
    for _ in range(2):
        assert await breaker.call(ok) == "ok"
        assert breaker.state is CircuitState.HALF_OPEN
    assert await breaker.call(ok) == "ok"
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0
    stats = breaker.statistics()
    assert (stats.trial_successes, stats.trials_in_flight, stats.opened_at) == (0, 0, None)
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert breaker.state is CircuitState.CLOSED


async def test_uncounted_exception_propagates_and_counts_nothing() -> None:
    """An exception outside `expected_exception` propagates unchanged and is neither outcome."""
    breaker = CircuitBreaker("svc", failure_threshold=2, expected_exception=Boom)
    with pytest.raises(Boom):
        await breaker.call(fail)
    error = Other("not counted")

    async def other() -> None:
        raise error

    for _ in range(3):
        with pytest.raises(Other) as info:
            await breaker.call(other)
        assert info.value is error
    assert breaker.failure_count == 1
    assert breaker.state is CircuitState.CLOSED


async def test_tuple_of_expected_exceptions() -> None:
    """Every class of an `expected_exception` tuple counts."""
    breaker = CircuitBreaker("svc", failure_threshold=2, expected_exception=(Boom, KeyError))

    async def key_error() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        await breaker.call(key_error)
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert breaker.state is CircuitState.OPEN


async def test_cancellation_counts_nothing_and_gives_back_the_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A cancelled trial counts as nothing and frees its slot for the next trial."""
    breaker = CircuitBreaker("svc", failure_threshold=1, timeout=1.0, half_open_max_calls=1)
    await open_it(breaker)
    await trio.sleep(1.0)
    with trio.move_on_after(1.0):
        await breaker.call(trio.sleep_forever)
    stats = breaker.statistics()
    assert stats.state is CircuitState.HALF_OPEN
    assert stats.trials_in_flight == 0
    assert stats.trial_successes == 0
    assert stats.ignored == 1
    assert await breaker.call(ok) == "ok"


async def test_uncounted_error_gives_back_the_trial_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A trial ending in an uncounted exception frees its slot and leaves the state alone."""
    breaker = CircuitBreaker(
        "svc", failure_threshold=1, timeout=1.0, expected_exception=Boom, half_open_max_calls=1
    )
    await open_it(breaker)
    await trio.sleep(1.0)

    async def other() -> None:
        raise Other

    for _ in range(3):
        with pytest.raises(Other):
            await breaker.call(other)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.statistics().trials_in_flight == 0


async def test_force_open_never_half_opens(autojump_clock: trio.testing.MockClock) -> None:
    """force_open() holds the breaker open (retry_after inf) until reset(), which closes it."""
    breaker = CircuitBreaker("svc", timeout=1.0)
    events: list[CircuitStateChange] = []
    breaker.add_listener(events.append)
    breaker.force_open()
    await trio.sleep(1000.0)
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(ok)
    assert info.value.retry_after == math.inf
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    assert await breaker.call(ok) == "ok"
    assert [(e.new_state, e.reason) for e in events] == [
        (CircuitState.OPEN, ChangeReason.FORCED_OPEN),
        (CircuitState.CLOSED, ChangeReason.RESET),
    ]


async def test_reset_clears_counts() -> None:
    """reset() closes the breaker and clears the failure run."""
    breaker = CircuitBreaker("svc", failure_threshold=3)
    for _ in range(2):
        with pytest.raises(Boom):
            await breaker.call(fail)
    breaker.reset()
    assert breaker.failure_count == 0
    for _ in range(2):
        with pytest.raises(Boom):
            await breaker.call(fail)
    assert breaker.state is CircuitState.CLOSED


async def test_listeners_get_every_change_in_order(autojump_clock: trio.testing.MockClock) -> None:
    """Listeners see frozen events for open, half-open, reopen, half-open and close, in order."""
    breaker = CircuitBreaker("svc", failure_threshold=1, success_threshold=1, timeout=2.0)
    seen: list[tuple[CircuitState, CircuitState, float]] = []
    breaker.add_listener(lambda e: seen.append((e.old_state, e.new_state, e.at)))
    t0 = trio.current_time()
    await open_it(breaker)
    await trio.sleep(3.0)
    with pytest.raises(Boom):
        await breaker.call(fail)
    await trio.sleep(2.0)
    await breaker.call(ok)
    closed, open_, half = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
    assert [(a, b, at - t0) for a, b, at in seen] == [
        (closed, open_, 0.0),
        (open_, half, 2.0),
        (half, open_, 3.0),
        (open_, half, 5.0),
        (half, closed, 5.0),
    ]


def test_state_change_is_frozen() -> None:
    """The state-change event is an immutable value."""
    event = CircuitStateChange(
        name="n",
        old_state=CircuitState.CLOSED,
        new_state=CircuitState.OPEN,
        at=1.0,
        reason=ChangeReason.FAILURE_THRESHOLD,
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.at = 2.0  # type: ignore[misc]


async def test_context_manager_forms(autojump_clock: trio.testing.MockClock) -> None:
    """`async with` and `with` count outcomes and refuse entry while open."""
    breaker = CircuitBreaker("svc", failure_threshold=2, timeout=1.0)
    async with breaker:
        pass
    with pytest.raises(Boom):
        async with breaker:
            raise Boom
    with pytest.raises(Boom), breaker:
        raise Boom
    assert breaker.state is CircuitState.OPEN
    entered = False
    with pytest.raises(CircuitOpenError):
        async with breaker:
            entered = True
    assert not entered
    await trio.sleep(1.0)
    async with breaker, breaker:
        assert breaker.statistics().trials_in_flight == 2
    assert breaker.state is CircuitState.CLOSED


async def test_async_form_adds_no_checkpoint() -> None:
    """A call through a closed breaker does not checkpoint when the function does not."""
    breaker = CircuitBreaker("svc")

    @breaker
    async def no_checkpoint() -> int:
        return 7

    with trio.CancelScope() as scope:
        scope.cancel()
        assert await no_checkpoint() == 7
        async with breaker:
            pass


async def test_decorator_keeps_metadata_and_exposes_breaker() -> None:
    """`@breaker` and `circuit_breaker()` keep wraps metadata; the wrapper carries `.breaker`."""

    @circuit_breaker(failure_threshold=1)
    async def fetch(x: int) -> int:
        """Fetch x."""
        return x

    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch x."
    assert fetch.__wrapped__ is not None  # type: ignore[attr-defined]
    breaker: CircuitBreaker = fetch.breaker  # type: ignore[attr-defined]
    assert breaker.name == fetch.__qualname__
    assert await fetch(3) == 3


async def test_circuit_breaker_gives_each_function_its_own_breaker() -> None:
    """Two functions decorated by one `circuit_breaker(...)` call have separate breakers."""
    guard = circuit_breaker(failure_threshold=1)

    @guard
    async def a() -> None:
        raise Boom

    @guard
    async def b() -> str:
        return "b"

    with pytest.raises(Boom):
        await a()
    assert a.breaker.state is CircuitState.OPEN  # type: ignore[attr-defined]
    assert await b() == "b"
    assert a.breaker is not b.breaker  # type: ignore[attr-defined]


async def test_method_breaker_is_shared_by_every_instance() -> None:
    """A decorated method has one breaker that every instance shares."""

    class Client:
        def __init__(self, healthy: bool) -> None:
            self.healthy = healthy

        @circuit_breaker(failure_threshold=2)
        async def get(self) -> str:
            if not self.healthy:
                raise Boom
            return "fine"

    with pytest.raises(Boom):
        await Client(False).get()
    with pytest.raises(Boom):
        await Client(False).get()
    with pytest.raises(CircuitOpenError) as info:
        await Client(True).get()
    assert info.value.name.endswith("Client.get")
    assert Client.get.breaker is Client(True).get.breaker  # type: ignore[attr-defined]


async def test_plain_function_inside_trio(autojump_clock: trio.testing.MockClock) -> None:
    """A breaker guards a plain function called from trio code, on trio's clock."""
    breaker = CircuitBreaker("sync", failure_threshold=1, timeout=3.0)

    @breaker
    def parse(text: str) -> int:
        return int(text)

    with pytest.raises(ValueError):
        parse("x")
    with pytest.raises(CircuitOpenError) as info:
        parse("1")
    assert info.value.retry_after == 3.0
    await trio.sleep(3.0)
    assert parse("1") == 1
    assert breaker.call_sync(parse, "2") == 2
    assert await breaker.call(parse, "3") == 3


def test_plain_function_outside_trio_with_injected_clock() -> None:
    """Outside trio the breaker runs on its `clock`, and half-opens from exactly `timeout`."""
    now = [100.0]
    breaker = CircuitBreaker("sync", failure_threshold=2, timeout=10.0, clock=lambda: now[0])

    @breaker
    def boom() -> None:
        raise Boom

    for _ in range(2):
        with pytest.raises(Boom):
            boom()
    with pytest.raises(CircuitOpenError) as info, breaker:
        pass
    assert info.value.retry_after == 10.0
    now[0] = 110.0
    assert breaker.state is CircuitState.HALF_OPEN
    with breaker:
        pass
    with breaker:
        pass
    assert breaker.state is CircuitState.CLOSED


def test_plain_function_outside_trio_default_clock() -> None:
    """Outside trio, without an injected clock, a breaker still opens and refuses."""
    breaker = CircuitBreaker("sync", failure_threshold=1, timeout=60.0)
    with pytest.raises(Boom), breaker:
        raise Boom
    with pytest.raises(CircuitOpenError) as info, breaker:
        pass
    assert 0 < info.value.retry_after <= 60.0


async def test_half_open_admits_at_most_max_calls_among_100_callers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """100 concurrent callers through a half-open breaker: at most 3 run, the rest are refused."""
    breaker = CircuitBreaker(
        "svc", failure_threshold=1, success_threshold=5, timeout=1.0, half_open_max_calls=3
    )
    await open_it(breaker)
    await trio.sleep(1.0)
    running = peak = ran = refused = 0
    release = trio.Event()
    retry_afters: set[float] = set()

    async def trial() -> None:
        nonlocal running, peak, ran
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        ran += 1

    async def caller() -> None:
        nonlocal refused
        try:
            await breaker.call(trial)
        except CircuitOpenError as exc:
            retry_afters.add(exc.retry_after)
            refused += 1

    async with trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(caller)
        await trio.testing.wait_all_tasks_blocked()
        assert (running, refused) == (3, 97)
        release.set()
    assert (peak, ran, refused) == (3, 3, 97)
    assert retry_afters == {0.0}
    stats = breaker.statistics()
    assert stats.state is CircuitState.HALF_OPEN
    assert (stats.trial_successes, stats.trials_in_flight, stats.refused) == (3, 0, 97)


async def test_waves_of_trials_close_the_breaker(autojump_clock: trio.testing.MockClock) -> None:
    """Callers arriving in waves get trial slots as earlier trials end, until the breaker closes."""
    breaker = CircuitBreaker(
        "svc", failure_threshold=1, success_threshold=4, timeout=1.0, half_open_max_calls=2
    )
    await open_it(breaker)
    await trio.sleep(1.0)
    outcomes = {"ok": 0, "refused": 0}

    async def trial() -> None:
        await trio.sleep(1.0)

    async def caller(delay: float) -> None:
        await trio.sleep(delay)
        try:
            await breaker.call(trial)
        except CircuitOpenError:
            outcomes["refused"] += 1
        else:
            outcomes["ok"] += 1

    async with trio.open_nursery() as nursery:
        for i in range(100):
            nursery.start_soon(caller, (i % 4) * 1.5)
    # waves of 25 callers at t=0, 1.5, 3, 4.5: two trials in each half-open wave; closed at 2.5
    assert breaker.state is CircuitState.CLOSED
    assert outcomes == {"ok": 2 + 2 + 25 + 25, "refused": 23 + 23}


async def test_stale_outcomes_count_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """Failures of calls let in before the breaker opened do not restart its timer."""
    breaker = CircuitBreaker("svc", failure_threshold=2, timeout=10.0)

    async def slow_fail(delay: float) -> None:
        await trio.sleep(delay)
        raise Boom

    async def run(delay: float) -> None:
        with pytest.raises(Boom):
            await breaker.call(slow_fail, delay)

    async with trio.open_nursery() as nursery:
        for delay in (1.0, 2.0, 3.0, 4.0):
            nursery.start_soon(run, delay)
    stats = breaker.statistics()
    assert stats.opened_at == pytest.approx(trio.current_time() - 2.0)
    assert (stats.failures, stats.failure_count) == (4, 2)


def test_explicit_over_config_over_env_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit arguments beat the config, which beats the environment, which beats defaults."""
    monkeypatch.setenv("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "7")
    monkeypatch.setenv("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", "4")
    monkeypatch.setenv("CIRCUIT_BREAKER_TIMEOUT", "9.5")
    monkeypatch.setenv("CIRCUIT_BREAKER_HALF_OPEN_REQUESTS", "6")
    env_only = CircuitBreaker("a")
    assert (env_only.failure_threshold, env_only.success_threshold) == (7, 4)
    assert (env_only.timeout, env_only.half_open_max_calls) == (9.5, 6)
    config = CircuitBreakerConfig(failure_threshold=2, timeout=1.5, expected_exception=Boom)
    assert config.success_threshold == 4  # the config read the environment for its missing field
    with_config = CircuitBreaker("b", success_threshold=1, config=config)
    assert (with_config.failure_threshold, with_config.success_threshold) == (2, 1)
    assert (with_config.timeout, with_config.expected_exception) == (1.5, (Boom,))
    assert with_config.half_open_max_calls == 6


def test_built_in_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without arguments or environment, the contract's defaults apply."""
    for var in (
        "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
        "CIRCUIT_BREAKER_SUCCESS_THRESHOLD",
        "CIRCUIT_BREAKER_TIMEOUT",
        "CIRCUIT_BREAKER_HALF_OPEN_REQUESTS",
    ):
        monkeypatch.delenv(var, raising=False)
    breaker = CircuitBreaker("d")
    assert (breaker.failure_threshold, breaker.success_threshold, breaker.timeout) == (5, 2, 60.0)
    assert (breaker.half_open_max_calls, breaker.expected_exception) == (3, (Exception,))
    config = CircuitBreakerConfig()
    assert (config.failure_threshold, config.success_threshold, config.timeout) == (5, 2, 60.0)
    assert config.expected_exception is Exception


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "0"),
        ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "two"),
        ("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", "1.5"),
        ("CIRCUIT_BREAKER_TIMEOUT", "0"),
        ("CIRCUIT_BREAKER_TIMEOUT", "-3"),
        ("CIRCUIT_BREAKER_HALF_OPEN_REQUESTS", "-1"),
    ],
)
def test_bad_environment_value_raises_at_creation(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str
) -> None:
    """A bad variable raises ConfigError naming it and its value, at creation time."""
    monkeypatch.setenv(variable, text)
    with pytest.raises(ConfigError, match=variable) as info:
        CircuitBreaker("x")
    assert repr(text) in str(info.value)
    with pytest.raises(ConfigError, match=variable):
        circuit_breaker()


@pytest.mark.parametrize(
    "variable",
    [
        "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
        "CIRCUIT_BREAKER_SUCCESS_THRESHOLD",
        "CIRCUIT_BREAKER_TIMEOUT",
        "CIRCUIT_BREAKER_HALF_OPEN_REQUESTS",
    ],
)
def test_variable_not_read_when_parameter_given(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """A bad variable is never read for a parameter that is given."""
    monkeypatch.setenv(variable, "nonsense")
    breaker = CircuitBreaker(
        "x", failure_threshold=1, success_threshold=1, timeout=1.0, half_open_max_calls=1
    )
    assert breaker.failure_threshold == 1
    config = CircuitBreakerConfig(failure_threshold=1, success_threshold=1, timeout=1.0)
    CircuitBreaker("y", config=config, half_open_max_calls=1)


def test_config_env_read_at_config_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The config reads the variables when it is made; later changes do not affect it."""
    monkeypatch.setenv("CIRCUIT_BREAKER_TIMEOUT", "3")
    config = CircuitBreakerConfig()
    monkeypatch.setenv("CIRCUIT_BREAKER_TIMEOUT", "4")
    assert CircuitBreaker("x", config=config).timeout == 3.0
    assert CircuitBreaker("x").timeout == 4.0


def test_circuit_breaker_reads_env_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """`circuit_breaker(...)` reads the environment when called, not when it decorates."""
    monkeypatch.setenv("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "8")
    guard = circuit_breaker()
    monkeypatch.setenv("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "oops")

    @guard
    async def f() -> None:
        pass

    assert f.breaker.failure_threshold == 8  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"success_threshold": 1.5}, "success_threshold"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"expected_exception": 3}, "expected_exception"),
        ({"expected_exception": (Boom, "x")}, "expected_exception"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], param: str) -> None:
    """A bad argument raises ConfigError naming the parameter and the value."""
    with pytest.raises(ConfigError, match=f"`{param}`"):
        CircuitBreaker("x", **kwargs)
    with pytest.raises(ConfigError, match=f"`{param}`"):
        circuit_breaker(**kwargs)
    if param != "half_open_max_calls":
        with pytest.raises(ConfigError, match=f"`{param}`"):
            CircuitBreakerConfig(**kwargs)


def test_config_error_message_has_value() -> None:
    """The message gives the value as well as the name."""
    with pytest.raises(
        ConfigError, match=r"`failure_threshold` must be an integer >= 1 \(got -1\)"
    ):
        CircuitBreaker("x", failure_threshold=-1)


async def test_repr_and_statistics() -> None:
    """The repr reads well in a log and statistics() is a frozen snapshot."""
    breaker = CircuitBreaker("db", failure_threshold=3)
    with pytest.raises(Boom):
        await breaker.call(fail)
    assert repr(breaker) == "<CircuitBreaker 'db' closed, 1/3 failures, 0/3 trials>"
    stats = breaker.statistics()
    assert isinstance(stats, CircuitBreakerStatistics)
    assert (stats.state, stats.failures, stats.successes, stats.failure_count) == (
        CircuitState.CLOSED,
        1,
        0,
        1,
    )
    breaker.force_open()
    assert repr(breaker) == "<CircuitBreaker 'db' open (forced), 1/3 failures, 0/3 trials>"


async def test_listener_error_surfaces_after_all_listeners() -> None:
    """A raising listener does not stop the others; its error reaches the caller."""
    breaker = CircuitBreaker("svc", failure_threshold=1)
    seen: list[CircuitState] = []

    def broken(_: CircuitStateChange) -> None:
        raise RuntimeError("listener bug")

    breaker.add_listener(broken)
    breaker.add_listener(lambda e: seen.append(e.new_state))
    with pytest.raises(RuntimeError, match="listener bug"):
        await breaker.call(fail)
    assert seen == [CircuitState.OPEN]
    breaker.remove_listener(broken)
    breaker.reset()
    assert seen == [CircuitState.OPEN, CircuitState.CLOSED]


async def test_keyboard_interrupt_is_not_counted() -> None:
    """A BaseException that is not an Exception propagates and counts as nothing."""
    breaker = CircuitBreaker("svc", failure_threshold=1, expected_exception=BaseException)

    async def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await breaker.call(interrupt)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0
