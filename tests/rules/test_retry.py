"""The retry contract: attempts, delays, retry_after, policies, deadlines, forms and settings."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import trio
import trio.testing

from supervisor import (
    CircuitBreaker,
    CircuitOpenError,
    ConfigError,
    ExponentialBackoff,
    LinearBackoff,
    OperationTimeout,
    RateLimitExceeded,
    Retrier,
    RetryPolicy,
    circuit_breaker,
    retry,
    timeout,
)

RETRY_VARS = (
    "RETRY_MAX_ATTEMPTS",
    "RETRY_INITIAL_DELAY",
    "RETRY_MAX_DELAY",
    "RETRY_BACKOFF_FACTOR",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in RETRY_VARS:
        monkeypatch.delenv(var, raising=False)


class Boom(Exception):
    """A retryable failure in these tests."""


class Flaky:
    """Fails `failures` times (recording the trio time of each call), then returns "ok"."""

    def __init__(self, failures: int, error: type[Exception] | Exception = Boom) -> None:
        self.failures = failures
        self.error = error
        self.times: list[float] = []
        self.errors: list[BaseException] = []

    async def __call__(self) -> str:
        self.times.append(trio.current_time())
        if len(self.times) <= self.failures:
            error = self.error() if isinstance(self.error, type) else self.error
            self.errors.append(error)
            raise error
        return "ok"


def offsets(times: list[float]) -> list[float]:
    return [round(t - times[0], 9) for t in times]


async def test_max_attempts_counts_the_first_call(autojump_clock: trio.testing.MockClock) -> None:
    """max_attempts=3 calls at most 3 times and re-raises the last exception itself."""
    flaky = Flaky(10)
    guarded = retry(max_attempts=3, jitter=False, initial_delay=0.5)(flaky)
    with pytest.raises(Boom) as info:
        await guarded()
    assert len(flaky.times) == 3
    assert info.value is flaky.errors[-1]


async def test_exact_sleeps_without_jitter(autojump_clock: trio.testing.MockClock) -> None:
    """Without jitter the sleep after attempt n is min(max_delay, initial * factor**(n-1))."""
    flaky = Flaky(5)
    guarded = retry(6, 2.0, initial_delay=1.0, max_delay=5.0, jitter=False)(flaky)
    assert await guarded() == "ok"
    assert offsets(flaky.times) == [0.0, 1.0, 3.0, 7.0, 12.0, 17.0]


async def test_success_returns_at_once(autojump_clock: trio.testing.MockClock) -> None:
    """A call that succeeds first time is made once, with no sleep."""
    flaky = Flaky(0)
    start = trio.current_time()
    assert await retry()(flaky)() == "ok"
    assert flaky.times == [start]


async def test_full_jitter_draws_from_the_rng(autojump_clock: trio.testing.MockClock) -> None:
    """With jitter each sleep is uniform in [0, ceiling], drawn from the injected rng."""
    flaky = Flaky(3)
    guarded = retry(4, 3.0, initial_delay=2.0, rng=random.Random(7))(flaky)
    assert await guarded() == "ok"
    twin = random.Random(7)
    expected = [twin.uniform(0, 2.0), twin.uniform(0, 6.0), twin.uniform(0, 18.0)]
    gaps = [b - a for a, b in zip(flaky.times, flaky.times[1:], strict=False)]
    assert gaps == pytest.approx(expected)


async def test_other_exceptions_propagate_at_once() -> None:
    """An exception outside `exceptions` is not retried."""
    flaky = Flaky(5, KeyError)
    with pytest.raises(KeyError):
        await retry(exceptions=(Boom,), initial_delay=0)(flaky)()
    assert len(flaky.times) == 1


async def test_single_exception_class_is_accepted(autojump_clock: trio.testing.MockClock) -> None:
    """`exceptions` may be one class."""
    flaky = Flaky(1)
    assert await retry(exceptions=Boom, jitter=False)(flaky)() == "ok"


async def test_cancellation_is_never_retried(autojump_clock: trio.testing.MockClock) -> None:
    """A cancelled attempt propagates Cancelled at once, with no further attempt."""
    calls = 0

    @retry(max_attempts=5, initial_delay=0.0)
    async def hang() -> None:
        nonlocal calls
        calls += 1
        await trio.sleep_forever()

    with trio.move_on_after(3.0) as scope:
        await hang()
    assert scope.cancelled_caught
    assert calls == 1


async def test_cancellation_during_the_sleep(autojump_clock: trio.testing.MockClock) -> None:
    """A caller cancelled while retry sleeps gets Cancelled, not another attempt."""
    flaky = Flaky(5)
    guarded = retry(5, initial_delay=1.0, jitter=False)(flaky)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(guarded)
        await trio.sleep(1.5)
        nursery.cancel_scope.cancel()
    assert len(flaky.times) == 2


async def test_keyboard_interrupt_is_not_retried() -> None:
    """A BaseException that is not an Exception is never retried, even if listed."""
    calls = 0

    @retry(max_attempts=3, exceptions=(BaseException,), initial_delay=0)
    async def interrupt() -> None:
        nonlocal calls
        calls += 1
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await interrupt()
    assert calls == 1


async def test_retry_after_raises_the_delay(autojump_clock: trio.testing.MockClock) -> None:
    """A numeric retry_after makes the delay max(delay, retry_after)."""
    flaky = Flaky(2, RateLimitExceeded(4.0))
    assert await retry(3, initial_delay=1.0, jitter=False)(flaky)() == "ok"
    assert offsets(flaky.times) == [0.0, 4.0, 8.0]
    small = Flaky(1, RateLimitExceeded(0.5))
    assert await retry(3, initial_delay=2.0, jitter=False)(small)() == "ok"
    assert offsets(small.times) == [0.0, 2.0]


async def test_retry_after_above_max_delay_stops(autojump_clock: trio.testing.MockClock) -> None:
    """A retry_after above max_delay stops retrying and re-raises the error itself."""
    error = RateLimitExceeded(61.0)
    flaky = Flaky(3, error)
    with pytest.raises(RateLimitExceeded) as info:
        await retry(5)(flaky)()
    assert info.value is error
    assert len(flaky.times) == 1


async def test_retry_after_equal_to_max_delay_is_waited(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A retry_after exactly max_delay is still waited for."""
    flaky = Flaky(1, RateLimitExceeded(10.0))
    assert await retry(2, max_delay=10.0, jitter=False)(flaky)() == "ok"
    assert offsets(flaky.times) == [0.0, 10.0]


async def test_retry_waits_out_an_open_breaker(autojump_clock: trio.testing.MockClock) -> None:
    """retry around an open breaker sleeps the breaker's retry_after, then the trial succeeds."""
    breaker = CircuitBreaker("svc", failure_threshold=1, timeout=7.0)
    with pytest.raises(ZeroDivisionError), breaker:
        _ = 1 / 0
    start = trio.current_time()

    @retry(3, initial_delay=1.0, jitter=False)
    @breaker
    async def call() -> float:
        return trio.current_time() - start

    assert await call() == 7.0


async def test_forced_open_breaker_is_not_waited(autojump_clock: trio.testing.MockClock) -> None:
    """A breaker held open (retry_after inf) stops retrying at once."""
    breaker = CircuitBreaker("svc")
    breaker.force_open()
    start = trio.current_time()
    with pytest.raises(CircuitOpenError):
        await retry(5)(breaker(Flaky(0)))()
    assert trio.current_time() == start


async def test_deadline_aware(autojump_clock: trio.testing.MockClock) -> None:
    """Where the next sleep would end past the caller's deadline, the last error is re-raised."""
    flaky = Flaky(10)
    start = trio.current_time()
    with trio.fail_after(10.0), pytest.raises(Boom) as info:
        await retry(10, initial_delay=1.0, jitter=False)(flaky)()
    assert offsets(flaky.times) == [0.0, 1.0, 3.0, 7.0]
    assert trio.current_time() - start == 7.0
    assert info.value is flaky.errors[-1]


async def test_sleep_ending_at_the_deadline_is_not_taken(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A sleep that would end exactly at the deadline (where it is cancelled) is not taken."""
    flaky = Flaky(10)
    with trio.move_on_after(3.0) as scope, pytest.raises(Boom):
        await retry(10, initial_delay=1.0, jitter=False)(flaky)()
    assert not scope.cancelled_caught
    assert offsets(flaky.times) == [0.0, 1.0]


async def test_policy_replaces_formula(autojump_clock: trio.testing.MockClock) -> None:
    """A policy decides each delay; jitter is ignored; its own max_attempts limits too."""
    flaky = Flaky(10)
    with pytest.raises(Boom):
        await retry(max_attempts=10, jitter=True, policy=LinearBackoff(2.0, max_attempts=3))(
            flaky
        )()
    assert offsets(flaky.times) == [0.0, 2.0, 6.0]


async def test_smaller_max_attempts_wins(autojump_clock: trio.testing.MockClock) -> None:
    """retry's own max_attempts wins where it is the smaller."""
    flaky = Flaky(10)
    with pytest.raises(Boom):
        await retry(max_attempts=2, policy=LinearBackoff(1.0, max_attempts=5))(flaky)()
    assert len(flaky.times) == 2


async def test_should_retry_filters(autojump_clock: trio.testing.MockClock) -> None:
    """An exception the policy's should_retry refuses propagates at once."""

    class OnlyBoom(RetryPolicy):
        def get_delay(self, attempt: int) -> float:
            return 1.0

        def should_retry(self, exception: Exception) -> bool:
            return isinstance(exception, Boom)

    flaky = Flaky(3, ValueError)
    with pytest.raises(ValueError):
        await retry(5, policy=OnlyBoom())(flaky)()
    assert len(flaky.times) == 1
    boom = Flaky(3)
    assert await retry(5, policy=OnlyBoom())(boom)() == "ok"
    assert offsets(boom.times) == [0.0, 1.0, 2.0, 3.0]


async def test_policy_retry_after_cap(autojump_clock: trio.testing.MockClock) -> None:
    """With a policy, its max_delay caps retry_after; a policy without one has no cap."""
    capped = Flaky(1, RateLimitExceeded(11.0))
    with pytest.raises(RateLimitExceeded):
        await retry(3, policy=ExponentialBackoff(1.0, 10.0, jitter=False))(capped)()
    assert len(capped.times) == 1
    uncapped = Flaky(1, RateLimitExceeded(500.0))
    assert await retry(3, max_delay=1.0, policy=LinearBackoff(1.0))(uncapped)() == "ok"
    assert offsets(uncapped.times) == [0.0, 500.0]


async def test_retrier_execute(autojump_clock: trio.testing.MockClock) -> None:
    """Retrier.execute follows the same rules; the smaller of its and the policy's limit wins."""
    flaky = Flaky(10)
    retrier = Retrier(ExponentialBackoff(0.5, 10.0, 2.0, jitter=False), max_attempts=4)
    with pytest.raises(Boom):
        await retrier.execute(flaky)
    assert offsets(flaky.times) == [0.0, 0.5, 1.5, 3.5]
    assert Retrier(LinearBackoff(1.0, max_attempts=2), max_attempts=5).max_attempts == 2
    assert Retrier(LinearBackoff(1.0, max_attempts=9)).max_attempts == 5

    async def add(a: int, *, b: int) -> int:
        return a + b

    assert await retrier.execute(add, 1, b=2) == 3
    assert await retrier.execute(lambda: "plain") == "plain"
    assert "Retrier" in repr(retrier)


async def test_retrier_as_decorator(autojump_clock: trio.testing.MockClock) -> None:
    """A Retrier decorates a function with its rules."""
    flaky = Flaky(1)
    guarded = Retrier(LinearBackoff(3.0))(flaky)
    assert await guarded() == "ok"
    assert offsets(flaky.times) == [0.0, 3.0]


def test_policies_delays() -> None:
    """ExponentialBackoff and LinearBackoff compute the contract's formulas."""
    exp = ExponentialBackoff(initial_delay=0.5, max_delay=3.0, factor=2.0, jitter=False)
    assert [exp.get_delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert exp.get_delay(10_000) == 3.0
    jittery = ExponentialBackoff(1.0, 8.0, 2.0, rng=random.Random(3))
    twin = random.Random(3)
    assert jittery.get_delay(3) == twin.uniform(0, 4.0)
    linear = LinearBackoff(delay=1.5, max_attempts=4)
    assert [linear.get_delay(n) for n in (1, 2, 3)] == [1.5, 3.0, 4.5]
    assert linear.max_attempts == 4
    assert RetryPolicy.should_retry(linear, Boom())
    for policy in (exp, linear):
        with pytest.raises(ConfigError, match="`attempt`"):
            policy.get_delay(0)
    assert repr(linear) == "LinearBackoff(delay=1.5, max_attempts=4)"


def test_retry_policy_is_abstract() -> None:
    """RetryPolicy cannot be made without get_delay."""
    with pytest.raises(TypeError):
        RetryPolicy()  # type: ignore[abstract]


def test_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """retry() and ExponentialBackoff read the RETRY_* variables when created."""
    monkeypatch.setenv("RETRY_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("RETRY_INITIAL_DELAY", "0.25")
    monkeypatch.setenv("RETRY_MAX_DELAY", "9")
    monkeypatch.setenv("RETRY_BACKOFF_FACTOR", "3")
    decorator = retry()
    for var in RETRY_VARS:
        monkeypatch.setenv(var, "garbage")  # too late: already read

    async def f() -> None:
        pass

    schedule = decorator(f).retry_schedule  # type: ignore[attr-defined]
    assert (schedule.max_attempts, schedule.initial_delay) == (7, 0.25)
    assert (schedule.max_delay, schedule.backoff_factor) == (9.0, 3.0)
    monkeypatch.setenv("RETRY_INITIAL_DELAY", "0.25")
    monkeypatch.setenv("RETRY_MAX_DELAY", "9")
    monkeypatch.setenv("RETRY_BACKOFF_FACTOR", "3")
    exp = ExponentialBackoff()
    assert (exp.initial_delay, exp.max_delay, exp.factor) == (0.25, 9.0, 3.0)


def test_built_in_defaults() -> None:
    """Without environment, the contract's defaults apply."""

    async def f() -> None:
        pass

    schedule = retry()(f).retry_schedule  # type: ignore[attr-defined]
    assert (schedule.max_attempts, schedule.initial_delay) == (3, 1.0)
    assert (schedule.max_delay, schedule.backoff_factor, schedule.jitter) == (60.0, 2.0, True)
    assert schedule.exceptions == (Exception,)
    exp = ExponentialBackoff()
    assert (exp.initial_delay, exp.max_delay, exp.factor, exp.jitter) == (1.0, 60.0, 2.0, True)
    linear = LinearBackoff()
    assert (linear.delay, linear.max_attempts) == (5.0, 3)


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("RETRY_MAX_ATTEMPTS", "0"),
        ("RETRY_MAX_ATTEMPTS", "2.5"),
        ("RETRY_INITIAL_DELAY", "-1"),
        ("RETRY_MAX_DELAY", "soon"),
        ("RETRY_BACKOFF_FACTOR", "0.5"),
    ],
)
def test_bad_environment_value(monkeypatch: pytest.MonkeyPatch, variable: str, text: str) -> None:
    """A bad RETRY_* variable raises ConfigError naming it and its value, when retry() is called."""
    monkeypatch.setenv(variable, text)
    with pytest.raises(ConfigError, match=variable) as info:
        retry()
    assert repr(text) in str(info.value)
    if variable != "RETRY_MAX_ATTEMPTS":
        with pytest.raises(ConfigError, match=variable):
            ExponentialBackoff()


@pytest.mark.parametrize("variable", RETRY_VARS)
def test_variable_not_read_when_given(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """A variable is not read for a parameter that is given."""
    monkeypatch.setenv(variable, "garbage")
    retry(3, 2.0, initial_delay=1.0, max_delay=2.0)
    if variable != "RETRY_MAX_ATTEMPTS":
        ExponentialBackoff(1.0, 2.0, 2.0)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"backoff_factor": 0.9}, "backoff_factor"),
        ({"initial_delay": -0.1}, "initial_delay"),
        ({"max_delay": math.nan}, "max_delay"),
        ({"exceptions": (Boom, 3)}, "exceptions"),
        ({"exceptions": ()}, "exceptions"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], param: str) -> None:
    """A bad argument raises ConfigError naming it, when retry() is called."""
    with pytest.raises(ConfigError, match=f"`{param}`"):
        retry(**kwargs)


def test_bad_policy_arguments() -> None:
    """Bad policy values raise ConfigError; a non-policy raises TypeError."""
    with pytest.raises(ConfigError, match="`factor`"):
        ExponentialBackoff(factor=0.5)
    with pytest.raises(ConfigError, match="`delay`"):
        LinearBackoff(delay=-1)
    with pytest.raises(ConfigError, match="`max_attempts`"):
        LinearBackoff(max_attempts=0)
    with pytest.raises(ConfigError, match="`max_attempts`"):
        Retrier(LinearBackoff(), max_attempts=0)
    with pytest.raises(TypeError):
        retry(policy=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Retrier(None)  # type: ignore[arg-type]


async def test_wraps_and_methods(autojump_clock: trio.testing.MockClock) -> None:
    """retry keeps wraps metadata and works on methods."""

    class Client:
        def __init__(self) -> None:
            self.calls = 0

        @retry(3, initial_delay=1.0, jitter=False)
        async def get(self, key: str) -> str:
            """Get a key."""
            self.calls += 1
            if self.calls < 3:
                raise Boom
            return key

    client = Client()
    assert await client.get("k") == "k"
    assert client.calls == 3
    assert Client.get.__name__ == "get"
    assert Client.get.__doc__ == "Get a key."


def test_plain_function_outside_trio_sleeps_with_time_sleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside trio a plain function is retried with time.sleep between attempts."""
    slept: list[float] = []
    monkeypatch.setattr("supervisor.guards._retry.time.sleep", slept.append)
    calls = 0

    @retry(4, initial_delay=0.5, jitter=False)
    def parse() -> int:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise Boom
        return 42

    assert parse() == 42
    assert slept == [0.5, 1.0, 2.0]


async def test_plain_function_inside_trio_does_not_block(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside trio a plain function retries only with zero delays; else it re-raises with a note."""
    monkeypatch.setattr("supervisor.guards._retry.time.sleep", pytest.fail)
    calls = 0

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise Boom
        return "ok"

    assert retry(3, initial_delay=0.0)(flaky)() == "ok"
    calls = 0
    with pytest.raises(Boom) as info:
        retry(3, initial_delay=1.0)(flaky)()
    assert calls == 1
    assert any("inside trio" in note for note in info.value.__notes__)


async def test_composes_with_breaker_and_timeout(autojump_clock: trio.testing.MockClock) -> None:
    """retry, circuit_breaker and timeout compose in any order."""
    calls = 0

    async def slow_then_fast() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await trio.sleep(5.0)
        return "done"

    inner_timeout = retry(2, initial_delay=1.0, jitter=False)(
        circuit_breaker(failure_threshold=5)(timeout(2.0)(slow_then_fast))
    )
    start = trio.current_time()
    assert await inner_timeout() == "done"
    assert trio.current_time() - start == 3.0
    calls = 0
    outer_timeout = timeout(2.0)(retry(3, initial_delay=1.0, jitter=False)(slow_then_fast))
    with pytest.raises(OperationTimeout):
        await outer_timeout()
    assert calls == 1
