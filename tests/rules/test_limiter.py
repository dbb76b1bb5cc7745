"""Tests of the standalone rate limiter: weighted admissions in the sliding window, and its
`async with` / `acquire(amount)` shell."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from supervisor import ConfigError, RateLimiter, RateLimitExceeded
from supervisor.guards._throttle import Throttle
from supervisor.rules._window import SlidingWindowCore


class WeightedWindowMachine(RuleBasedStateMachine):
    """Weighted admissions against a model that keeps every admission time with its weight."""

    def __init__(self) -> None:
        super().__init__()
        self.max_calls = 5
        self.period = 10.0
        self.core = SlidingWindowCore(self.max_calls, self.period)
        self.now = 0.0
        self.admitted: list[tuple[float, int]] = []

    def _in_window(self, at: float) -> int:
        return sum(n for t, n in self.admitted if t + self.period > at)

    @rule(step=st.sampled_from([0.0, 0.5, 2.5, 5.0, 10.0]))
    def advance(self, step: float) -> None:
        """Time moves on (sometimes by exactly one period, to hit the boundary)."""
        self.now += step

    @rule(amount=st.integers(1, 5))
    def call(self, amount: int) -> None:
        """A call of `amount` is admitted exactly when the half-open window has room for all of
        it; otherwise `retry_after` is the first time it would have room."""
        due = self.core.next_admission(self.now, amount)
        retry_after = self.core.try_admit(self.now, amount)
        if self._in_window(self.now) + amount <= self.max_calls:
            assert retry_after == 0.0
            assert due == self.now
            self.admitted.append((self.now, amount))
        else:
            assert retry_after > 0
            assert due == self.now + retry_after
            # The model's earliest time with room: a start time + period, and none earlier.
            at = self.now + retry_after
            assert self._in_window(at) + amount <= self.max_calls
            earlier = [t + self.period for t, _ in self.admitted if self.now < t + self.period < at]
            assert all(self._in_window(e) + amount > self.max_calls for e in earlier)

    @invariant()
    def never_more_than_max_calls_per_window(self) -> None:
        """No half-open window of `period` holds more than `max_calls` admissions."""
        for start, _ in self.admitted:
            inside = sum(n for t, n in self.admitted if start <= t < start + self.period)
            assert inside <= self.max_calls


TestWeightedWindow = WeightedWindowMachine.TestCase


def test_core_checks_amount() -> None:
    """An amount must be an integer from 1 to max_calls: a larger one could never be admitted."""
    core = SlidingWindowCore(3, 1.0)
    assert core.check_amount(3) == 3
    for bad in (0, 4, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="`amount`"):
            core.check_amount(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs", "needle"),
    [
        ((0,), {}, "`max_rate` must be an integer >= 1 (got 0)"),
        ((1, 0.0), {}, "`time_period` must be a number > 0 (got 0.0)"),
        ((1,), {"on_limit": "drop"}, "on_limit"),
    ],
)
def test_bad_parameters(args: tuple[object, ...], kwargs: dict[str, object], needle: str) -> None:
    """Bad numbers raise ConfigError naming the parameter, at creation."""
    with pytest.raises(ConfigError) as info:
        RateLimiter(*args, **kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_bad_name_is_a_type_error() -> None:
    """The name must be a string."""
    with pytest.raises(TypeError, match="`name`"):
        RateLimiter(1, name=5)  # type: ignore[arg-type]


async def test_async_with_waits_exactly(autojump_clock: trio.testing.MockClock) -> None:
    """`async with` takes one admission; the third of 2-per-second starts exactly at 1.0."""
    limiter = RateLimiter(2, 1.0)
    starts = []
    for _ in range(5):
        async with limiter:
            starts.append(trio.current_time())
    assert starts == [0.0, 0.0, 1.0, 1.0, 2.0]
    assert (limiter.max_rate, limiter.time_period) == (2, 1.0)


async def test_acquire_amount_waits_for_room_for_all(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """acquire(3) on 4 per 10 s after one admission at 0 and one at 4 waits until 10.0, when the
    first leaves the window (half-open) and room for three exists; 14.0 frees the other."""
    limiter = RateLimiter(4, 10.0)
    await limiter.acquire()
    await trio.sleep(4.0)
    await limiter.acquire(amount=1)
    await limiter.acquire(3)
    assert trio.current_time() == 10.0
    await limiter.acquire(1)  # 4 in the window until the start at 4.0 leaves, at 14.0
    assert trio.current_time() == 14.0


async def test_raise_mode_and_has_capacity(autojump_clock: trio.testing.MockClock) -> None:
    """on_limit="raise" refuses with the exact retry_after; has_capacity says so beforehand."""
    limiter = RateLimiter(3, 5.0, on_limit="raise", name="sms")
    await limiter.acquire(2)
    assert limiter.has_capacity(1)
    assert not limiter.has_capacity(2)
    await trio.sleep(1.0)
    with pytest.raises(RateLimitExceeded) as info:
        await limiter.acquire(2)
    assert info.value.retry_after == 4.0  # the two admissions at 0.0 leave at 5.0
    await trio.sleep(4.0)
    assert limiter.has_capacity(3)
    with pytest.raises(ConfigError):
        limiter.has_capacity(4)
    with pytest.raises(ConfigError):
        await limiter.acquire(0)
    assert repr(limiter) == "<RateLimiter 'sms' 0/3 per 5.0s, 0 waiting, on_limit='raise'>"


async def test_many_waiters_first_come_first_served(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Thirty tasks through 5 per second start in arrival order, five per whole second; a waiter
    cancelled in the queue takes nothing."""
    limiter = RateLimiter(5, 1.0)
    started: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        async with limiter:
            started.append((i, trio.current_time()))

    async with trio.open_nursery() as nursery:
        for i in range(30):
            nursery.start_soon(one, i)
            await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0.5):
            await one(99)  # queued behind 25 others: cancelled before its turn
    assert [i for i, _ in started] == list(range(30))
    assert [t for _, t in started] == [float(i // 5) for i in range(30)]
    assert limiter.statistics().admitted == 30


async def test_decorates_like_a_throttle(autojump_clock: trio.testing.MockClock) -> None:
    """Used as a decorator, every call takes one admission from the shared window."""
    limiter = RateLimiter(1, 2.0)

    @limiter
    async def ping() -> float:
        return trio.current_time()

    assert [await ping(), await ping()] == [0.0, 2.0]
    assert ping.throttle is limiter  # type: ignore[attr-defined]


def test_a_weighted_amount_needs_a_local_window() -> None:
    """A shared store's fleet admits one start at a time: a weighted acquire is refused there,
    naming `amount`, rather than counted as one."""
    throttle = Throttle("t", 5, 1.0)
    throttle._fleet = object()  # type: ignore[assignment]  # stands in for a store's fleet
    with pytest.raises(ConfigError, match="`amount` must be 1 with a shared store's fleet"):
        throttle._check_amount(2)
    throttle._check_amount(1)
