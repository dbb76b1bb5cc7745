"""The breaker's options beyond API.md, through its public forms, on trio's mock clock: a
failure-rate and slow-call window, an exponential open timeout, and outcome classifiers."""

from __future__ import annotations

import contextlib

import pytest
import trio
import trio.testing

from supervisor import (
    ChangeReason,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    CircuitStateChange,
    ConfigError,
    MemoryStore,
    OpenBackoff,
    RateWindow,
    circuit_breaker,
)
from supervisor.cores import BreakerCore, RateBreakerCore


class _Response:
    def __init__(self, status: int) -> None:
        self.status = status


async def _ok() -> str:
    return "ok"


async def _fail() -> str:
    raise ConnectionError("down")


async def _slow() -> str:
    await trio.sleep(2.0)
    return "late"


async def _run(breaker: CircuitBreaker, fn: object) -> object:
    with contextlib.suppress(ConnectionError, CircuitOpenError):
        return await breaker.call(fn)  # type: ignore[arg-type]
    return None


def test_plain_breaker_keeps_the_plain_core() -> None:
    """A breaker given none of the new options keeps the plain core (and its fast path)."""
    assert type(CircuitBreaker("plain").core) is BreakerCore
    assert isinstance(CircuitBreaker("rate", window=RateWindow(size=4)).core, RateBreakerCore)
    assert CircuitBreaker("plain").statistics().window is None


async def test_failure_rate_opens_after_minimum_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Half of the last 4 calls failed: the 4th call opens the breaker, not the failures in a
    row, and statistics() shows the window."""
    breaker = CircuitBreaker(
        "api", failure_threshold=1, timeout=5.0, window=RateWindow(size=4, failure_rate=0.5)
    )
    changes: list[CircuitStateChange] = []
    breaker.add_listener(changes.append)
    await _run(breaker, _fail)
    await _run(breaker, _ok)
    await _run(breaker, _fail)
    stats = breaker.statistics().window
    assert stats is not None
    assert (stats.calls, stats.failures, stats.failure_rate) == (3, 2, 2 / 3)
    assert breaker.state is CircuitState.CLOSED  # 3 calls < minimum_calls (4), despite 67%
    await _run(breaker, _ok)
    assert breaker.state is CircuitState.OPEN
    assert [c.reason for c in changes] == [ChangeReason.FAILURE_RATE]
    with pytest.raises(CircuitOpenError) as refused:
        await breaker.call(_ok)
    assert refused.value.retry_after == 5.0


async def test_time_window_forgets_calls_exactly_duration_old(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A time-based window holds the calls that ended in the last `duration` seconds."""
    breaker = CircuitBreaker(
        "api", window=RateWindow(duration=10.0, failure_rate=0.5, minimum_calls=2)
    )
    start = trio.current_time()
    await _run(breaker, _fail)
    await trio.sleep_until(start + 10.0)
    await _run(breaker, _ok)  # the failure ended exactly 10 s ago: out
    assert breaker.statistics().window.calls == 1  # type: ignore[union-attr]
    assert breaker.state is CircuitState.CLOSED
    await trio.sleep(9.999)
    assert breaker.statistics().window.calls == 1  # type: ignore[union-attr]
    await _run(breaker, _fail)  # 1 of 2
    assert breaker.state is CircuitState.OPEN


async def test_slow_calls_open_the_breaker(autojump_clock: trio.testing.MockClock) -> None:
    """Calls slower than `slow_call_duration` open the breaker on the slow-call rate, even when
    they succeed."""
    breaker = CircuitBreaker(
        "search",
        window=RateWindow(size=2, failure_rate=None, slow_call_rate=1.0, slow_call_duration=1.0),
    )
    assert await breaker.call(_slow) == "late"
    assert breaker.state is CircuitState.CLOSED
    assert await breaker.call(_slow) == "late"
    assert breaker.state is CircuitState.OPEN
    assert breaker.core.slow_calls == 2  # type: ignore[attr-defined]


async def test_half_open_trials_decide_as_a_rate(autojump_clock: trio.testing.MockClock) -> None:
    """Half-open runs its `half_open_max_calls` trials, then closes if their failure rate
    stays under the threshold."""
    breaker = CircuitBreaker(
        "api", timeout=1.0, half_open_max_calls=4, window=RateWindow(size=2, failure_rate=0.5)
    )
    await _run(breaker, _fail)
    await _run(breaker, _fail)
    await trio.sleep(1.0)
    assert breaker.state is CircuitState.HALF_OPEN
    for fn in (_ok, _fail, _ok):
        await _run(breaker, fn)
    assert breaker.state is CircuitState.HALF_OPEN
    await _run(breaker, _ok)  # 1 failure of 4 trials: 25%
    assert breaker.state is CircuitState.CLOSED


async def test_open_timeout_grows_after_each_failed_trial(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Open timeouts 1 s, 2 s, 4 s, 4 s (the cap) while trials fail; 1 s again after closing."""
    breaker = CircuitBreaker(
        "db",
        failure_threshold=1,
        success_threshold=1,
        timeout=1.0,
        half_open_max_calls=1,
        open_backoff=OpenBackoff(factor=2.0, max_timeout=4.0),
    )
    opened: list[float] = []
    half_opened: list[float] = []

    def listen(change: CircuitStateChange) -> None:
        if change.new_state is CircuitState.OPEN:
            opened.append(change.at)
        elif change.new_state is CircuitState.HALF_OPEN:
            half_opened.append(change.at)

    breaker.add_listener(listen)
    await _run(breaker, _fail)
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            await breaker.call(_ok)
        await trio.sleep_until(breaker.core.half_open_at)
        await _run(breaker, _fail)  # the trial fails
    waits = [later - earlier for earlier, later in zip(opened, half_opened, strict=False)]
    assert waits == [1.0, 2.0, 4.0]
    assert breaker.core.half_open_at - opened[-1] == 4.0
    await trio.sleep_until(breaker.core.half_open_at)
    assert await breaker.call(_ok) == "ok"
    assert breaker.state is CircuitState.CLOSED
    await _run(breaker, _fail)
    assert breaker.core.half_open_at - trio.current_time() == 1.0


async def test_exclude_and_error_predicate(autojump_clock: trio.testing.MockClock) -> None:
    """Excluded errors (types or predicates) and errors `is_failure` rejects count as nothing
    and propagate unchanged."""
    breaker = CircuitBreaker(
        "api",
        failure_threshold=1,
        exclude=[KeyError, lambda e: "ignore me" in str(e)],
        is_failure=lambda e: not isinstance(e, ValueError),
    )
    for error in (KeyError("k"), OSError("please ignore me"), ValueError("bad input")):

        async def raising(error: Exception = error) -> None:
            raise error

        with pytest.raises(type(error)):
            await breaker.call(raising)
        assert breaker.state is CircuitState.CLOSED
    assert breaker.statistics().ignored == 3
    with pytest.raises(ConnectionError):
        await breaker.call(_fail)
    assert breaker.state is CircuitState.OPEN


async def test_result_predicate_counts_a_response_as_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A 503 response object is a failure without raising; the caller still gets it."""

    @circuit_breaker(failure_threshold=2, is_failure_result=lambda r: r.status >= 500)
    async def fetch(status: int) -> _Response:
        return _Response(status)

    assert (await fetch(503)).status == 503
    assert (await fetch(200)).status == 200  # a success resets the run
    await fetch(503)
    assert fetch.breaker.state is CircuitState.CLOSED  # type: ignore[attr-defined]
    await fetch(502)
    assert fetch.breaker.state is CircuitState.OPEN  # type: ignore[attr-defined]
    with pytest.raises(CircuitOpenError):
        await fetch(200)


def test_plain_functions_and_with_blocks() -> None:
    """The sync form and `with breaker:` drive the same measured core (outside trio, on the
    injected clock)."""
    now = [0.0]
    breaker = CircuitBreaker(
        "cfg",
        timeout=1.0,
        half_open_max_calls=1,
        clock=lambda: now[0],
        window=RateWindow(size=2, failure_rate=1.0),
        is_failure_result=lambda r: r is None,
    )

    @breaker
    def read(value: str | None) -> str | None:
        return value

    assert read(None) is None
    with pytest.raises(OSError), breaker:
        raise OSError("disk")
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        read("x")
    now[0] = 1.0
    with breaker:
        pass
    assert breaker.state is CircuitState.CLOSED  # its one trial succeeded


async def test_a_raising_predicate_counts_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """A classifier predicate that raises gives the permit back and its error propagates."""

    def broken(result: object) -> bool:
        raise RuntimeError("predicate bug")

    breaker = CircuitBreaker("api", half_open_max_calls=1, is_failure_result=broken)
    with pytest.raises(RuntimeError, match="predicate bug"):
        await breaker.call(_ok)
    stats = breaker.statistics()
    assert (stats.successes, stats.failures, stats.ignored) == (0, 0, 1)


def test_bad_options_raise_at_creation() -> None:
    """Bad new options raise ConfigError / TypeError when the breaker is made; the new options
    keep state in the process, so they refuse a shared store."""
    with pytest.raises(TypeError, match="cannot be combined with `store`"):
        CircuitBreaker("x", window=RateWindow(size=3), store=MemoryStore())
    with pytest.raises(TypeError, match="cannot be combined with `store`"):
        circuit_breaker(exclude=[KeyError], store=MemoryStore())
    with pytest.raises(TypeError, match="`window` must be a RateWindow or None"):
        CircuitBreaker("x", window={"size": 3})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="`exclude` must be exception classes or predicates"):
        circuit_breaker(exclude=["KeyError"])
    with pytest.raises(ConfigError, match="`is_failure_result` must be callable or None"):
        CircuitBreaker("x", is_failure_result=5)  # type: ignore[arg-type]
