"""The refusal path of an open breaker: what a refused call carries, by every form."""

from __future__ import annotations

import pickle

import pytest
import trio
import trio.testing

import supervisor
from supervisor.cores import BreakerCore, Permit, Refusal


async def test_a_refused_call_carries_name_and_retry_after_and_counts_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    breaker = supervisor.CircuitBreaker("db", failure_threshold=1, timeout=10.0)
    calls = 0

    @breaker
    async def query() -> int:
        nonlocal calls
        calls += 1
        raise OSError("down")

    with pytest.raises(OSError):
        await query()
    await trio.sleep(4)
    for _ in range(3):
        with pytest.raises(supervisor.CircuitOpenError) as info:
            await query()
        assert (info.value.name, info.value.retry_after) == ("db", 6.0)
        assert info.value.args == ("db", 6.0)
        assert "'db' is open" in str(info.value)
    assert calls == 1
    assert breaker.statistics().refused == 3
    await trio.sleep(6)  # half-open from exactly `timeout` after opening: a trial runs
    with pytest.raises(OSError):
        await query()
    assert calls == 2


def test_the_error_keeps_its_constructor_and_pickles() -> None:
    error = supervisor.CircuitOpenError("svc", -1.0)
    assert (error.name, error.retry_after, error.args) == ("svc", 0.0, ("svc", 0.0))
    copy = pickle.loads(pickle.dumps(supervisor.CircuitOpenError("svc", 2.5)))
    assert (type(copy), copy.name, copy.retry_after) == (supervisor.CircuitOpenError, "svc", 2.5)
    fast = supervisor.CircuitOpenError.refusing("svc", 2.5)
    assert (type(fast), fast.name, fast.retry_after, fast.args) == (
        supervisor.CircuitOpenError,
        "svc",
        2.5,
        ("svc", 2.5),
    )


def test_the_cores_refusal_counts_only_what_try_acquire_would_refuse() -> None:
    core = BreakerCore(name="c", failure_threshold=1, timeout=10.0, half_open_max_calls=1)
    assert core.refusal(0.0) is None  # closed
    permit = core.try_acquire(0.0)
    core.on_failure(permit, 0.0)  # type: ignore[arg-type]
    assert core.refusal(3.0) == 7.0
    assert core.refused == 1
    assert core.refusal(10.0) is None  # due to half-open: try_acquire takes the trial slot
    assert core.refused == 1
    assert isinstance(core.try_acquire(10.0), Permit)  # the one trial slot
    assert core.refusal(10.0) == 0.0  # half-open, every trial slot taken
    assert isinstance(core.try_acquire(10.0), Refusal)
    assert core.refused == 3
