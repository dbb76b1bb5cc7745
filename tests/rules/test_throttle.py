"""Tests of the throttle rule: the pure sliding window and its trio shell."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from supervisor import ConfigError, RateLimitExceeded, bulkhead, throttle
from supervisor.guards._throttle import Throttle
from supervisor.rules._window import SlidingWindowCore


class SlidingWindowMachine(RuleBasedStateMachine):
    """Random call schedules against a model that keeps every admission time."""

    def __init__(self) -> None:
        super().__init__()
        self.max_calls = 3
        self.period = 10.0
        self.core = SlidingWindowCore(self.max_calls, self.period)
        self.now = 0.0
        self.admitted: list[float] = []

    @rule(step=st.sampled_from([0.0, 0.5, 1.0, 2.5, 5.0, 10.0]))
    def advance(self, step: float) -> None:
        """Time moves on (sometimes by exactly one period, to hit the boundary)."""
        self.now += step

    @rule()
    def call(self) -> None:
        """A call arrives: it is admitted exactly when the model's half-open window has room."""
        in_window = [t for t in self.admitted if t + self.period > self.now]
        retry_after = self.core.try_admit(self.now)
        if len(in_window) < self.max_calls:
            assert retry_after == 0.0
            self.admitted.append(self.now)
        else:
            assert retry_after == min(in_window) + self.period - self.now
            assert retry_after > 0
            # Retrying after exactly retry_after would be admitted (checked on a copy).
            copy = SlidingWindowCore(self.max_calls, self.period)
            for t in self.admitted:
                copy.try_admit(t)
            assert copy.try_admit(self.now + retry_after) == 0.0

    @invariant()
    def never_more_than_max_calls_per_window(self) -> None:
        """No half-open window of `period` holds more than `max_calls` admissions."""
        for start in self.admitted:
            inside = [t for t in self.admitted if start <= t < start + self.period]
            assert len(inside) <= self.max_calls


TestSlidingWindow = SlidingWindowMachine.TestCase


def test_core_boundary_is_half_open() -> None:
    """A call admitted exactly `period` ago no longer counts."""
    core = SlidingWindowCore(1, 5.0)
    assert core.try_admit(0.0) == 0.0
    assert core.try_admit(4.999) == pytest.approx(0.001)
    assert core.try_admit(5.0) == 0.0


def test_core_validates() -> None:
    """The core checks its own numbers."""
    with pytest.raises(ConfigError, match="max_calls"):
        SlidingWindowCore(0, 1.0)
    with pytest.raises(ConfigError, match="period"):
        SlidingWindowCore(1, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"max_calls": 0}, "`max_calls` must be an integer >= 1 (got 0)"),
        ({"max_calls": 1.5}, "max_calls"),
        ({"period": 0}, "`period` must be a number > 0 (got 0)"),
        ({"period": -1.0}, "period"),
        ({"on_limit": "drop"}, '`on_limit` must be "wait" or "raise" (got \'drop\')'),
    ],
)
def test_bad_parameters_raise_config_error_at_creation(
    kwargs: dict[str, object], needle: str
) -> None:
    """Bad values are refused when `throttle(...)` is called, naming the parameter and value."""
    with pytest.raises(ConfigError) as info:
        throttle(**kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_plain_function_is_refused() -> None:
    """A throttle needs trio to wait, so decorating a plain function raises TypeError."""

    def plain() -> None:
        pass

    with pytest.raises(TypeError):
        throttle()(plain)


async def test_raise_mode_gives_exact_retry_after(autojump_clock: trio.testing.MockClock) -> None:
    """Over the limit, raise mode refuses with the retry_after that would have admitted it."""

    @throttle(max_calls=2, period=10.0, on_limit="raise")
    async def call() -> float:
        return trio.current_time()

    assert await call() == 0.0
    await trio.sleep(3)
    assert await call() == 3.0
    await trio.sleep(4)
    with pytest.raises(RateLimitExceeded) as info:
        await call()
    assert info.value.retry_after == 3.0
    assert info.value.name == call.__qualname__
    await trio.sleep(info.value.retry_after)
    assert await call() == 10.0  # the call of t=0 is exactly `period` old: out of the window
    with pytest.raises(RateLimitExceeded) as info:
        await call()
    assert info.value.retry_after == 3.0


async def test_wait_mode_waits_exactly(autojump_clock: trio.testing.MockClock) -> None:
    """Wait mode starts each call at the first moment the window has room."""

    @throttle(max_calls=2, period=5.0)
    async def call() -> float:
        return trio.current_time()

    starts = [await call() for _ in range(5)]
    assert starts == [0.0, 0.0, 5.0, 5.0, 10.0]


async def test_wait_mode_is_fifo_and_cancelled_waiter_takes_no_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Waiters start in arrival order; one cancelled while waiting leaves no gap in the schedule."""

    @throttle(max_calls=1, period=1.0)
    async def call(i: int) -> None:
        order.append((i, trio.current_time()))

    order: list[tuple[int, float]] = []
    scopes: dict[int, trio.CancelScope] = {}

    async def caller(i: int) -> None:
        with trio.CancelScope() as scope:
            scopes[i] = scope
            await call(i)

    async with trio.open_nursery() as nursery:
        for i in range(6):
            nursery.start_soon(caller, i)
            await trio.testing.wait_all_tasks_blocked()
        assert call.throttle.statistics().waiting == 5  # type: ignore[attr-defined]
        scopes[1].cancel()  # the head waiter
        scopes[3].cancel()
    assert order == [(0, 0.0), (2, 1.0), (4, 2.0), (5, 3.0)]


async def test_many_callers_share_one_window(autojump_clock: trio.testing.MockClock) -> None:
    """150 concurrent callers, 20 of them cancelled, never exceed max_calls per period."""

    @throttle(max_calls=10, period=2.0)
    async def call() -> None:
        starts.append(trio.current_time())

    starts: list[float] = []
    cancelled = 0

    async def caller(i: int) -> None:
        nonlocal cancelled
        with trio.move_on_after(3.0 if i % 7 == 0 else 1000.0) as scope:
            await call()
        if scope.cancelled_caught:
            cancelled += 1

    async with trio.open_nursery() as nursery:
        for i in range(150):
            nursery.start_soon(caller, i)
    assert len(starts) + cancelled == 150
    for s in starts:
        assert sum(1 for t in starts if s <= t < s + 2.0) <= 10
    # Cancelled waiters take no slot: the schedule is dense, 10 starts at every even second.
    assert starts == sorted(starts)
    assert [starts.count(t) for t in sorted(set(starts))][:-1] == [10] * (len(set(starts)) - 1)


async def test_state_is_shared_across_instances(autojump_clock: trio.testing.MockClock) -> None:
    """A throttled method shares one window between all instances, and keeps its metadata."""

    class Client:
        @throttle(max_calls=1, period=10.0, on_limit="raise")
        async def fetch(self) -> str:
            """Fetch something."""
            return "ok"

    assert Client.fetch.__name__ == "fetch"
    assert Client.fetch.__doc__ == "Fetch something."
    assert await Client().fetch() == "ok"
    with pytest.raises(RateLimitExceeded):
        await Client().fetch()


async def test_each_decorated_function_has_its_own_state(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One `throttle(...)` applied to two functions gives them separate windows."""
    limit = throttle(max_calls=1, period=10.0, on_limit="raise")

    @limit
    async def a() -> None:
        pass

    @limit
    async def b() -> None:
        pass

    await a()
    await b()
    with pytest.raises(RateLimitExceeded):
        await a()


async def test_fast_path_does_not_checkpoint() -> None:
    """An admitted call adds no checkpoint: a cancelled caller still runs a non-blocking body."""

    @throttle(max_calls=5, period=1.0)
    async def call() -> str:
        return "ran"

    with trio.CancelScope() as scope:
        scope.cancel()
        assert await call() == "ran"


async def test_shell_repr_and_statistics(autojump_clock: trio.testing.MockClock) -> None:
    """The shell reports its window, waiters and counts."""
    limiter = Throttle("api", 2, 5.0, on_limit="raise")
    await limiter.acquire()
    await limiter.acquire()
    with pytest.raises(RateLimitExceeded):
        await limiter.acquire()
    stats = limiter.statistics()
    assert (stats.in_window, stats.admitted, stats.refused) == (2, 2, 1)
    assert repr(limiter) == "<Throttle 'api' 2/2 per 5.0s, 0 waiting, on_limit='raise'>"


def test_new_run_starts_with_an_empty_window() -> None:
    """trio times of separate runs are unrelated, so a new trio.run starts a fresh window."""

    @throttle(max_calls=1, period=100.0, on_limit="raise")
    async def call() -> None:
        pass

    for _ in range(2):
        trio.run(call, clock=trio.testing.MockClock())


def test_each_run_is_timed_by_its_own_clock() -> None:
    """A throttle used from a second trio.run measures its window on that run's clock."""

    @throttle(max_calls=1, period=100.0, on_limit="raise")
    async def call() -> None:
        pass

    async def twice_a_period_apart() -> None:
        await call()
        await trio.sleep(100.0)
        await call()  # a period later by this run's clock: admitted

    for _ in range(2):
        trio.run(twice_a_period_apart, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_composes_with_bulkhead(autojump_clock: trio.testing.MockClock) -> None:
    """throttle and bulkhead stack in either order."""

    @throttle(max_calls=2, period=1.0)
    @bulkhead(max_concurrent=1, max_queued=10)
    async def a(x: int) -> int:
        await trio.sleep(0.25)
        return x

    @bulkhead(max_concurrent=1, max_queued=10)
    @throttle(max_calls=2, period=1.0)
    async def b(x: int) -> int:
        await trio.sleep(0.25)
        return x

    for fn in (a, b):
        results: list[int] = []
        async with trio.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(_append, fn, i, results)
        assert sorted(results) == [0, 1, 2, 3]


async def _append(fn: object, i: int, results: list[int]) -> None:
    results.append(await fn(i))  # type: ignore[operator]


def test_admit_if_room_admits_like_try_admit_and_records_nothing_when_full() -> None:
    """The fast admission: the same half-open window as try_admit, no refusal counted."""
    core = SlidingWindowCore(2, 10.0)
    assert core.admit_if_room(0.0)
    assert core.admit_if_room(5.0)
    assert not core.admit_if_room(9.99)
    assert (core.admitted, core.refused) == (2, 0)
    assert core.admit_if_room(10.0)  # the start at 0.0 is out from exactly `period` later
    assert core.in_window(10.0) == 2
    assert core.try_admit(14.0) == 1.0  # the start at 5.0 leaves at 15.0
    assert (core.admitted, core.refused) == (3, 1)
