"""Tests of the adaptive concurrency limit: the pure limit algorithm, the bulkhead core whose
slots it moves, and the AdaptiveBulkhead shell (MockClock), with a simulated backend."""

from __future__ import annotations

import random
import statistics

import pytest
import trio
import trio.testing
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from supervisor import AdaptiveBulkhead, BulkheadFullError, ConfigError, adaptive_bulkhead
from supervisor.cores import AdaptiveLimitCore, BulkheadCore, LimitAlgorithm

# -- the limit algorithm ---------------------------------------------------------------------


class LimitMachine(RuleBasedStateMachine):
    """Samples and failures against a small model: the average and baseline latencies, the
    probe's phases, and the direction each sample must move the limit."""

    def __init__(self) -> None:
        super().__init__()
        self._build(LimitAlgorithm.GRADIENT)

    def _build(self, algorithm: LimitAlgorithm) -> None:
        self.core = AdaptiveLimitCore(
            algorithm=algorithm,
            initial_limit=8,
            min_limit=2,
            max_limit=40,
            probe_interval=25,
            short_window=3,
        )
        self.short: float | None = None
        self.baseline: float | None = None
        self.normal = 0  # samples since the last probe began
        self.skip = 0
        self.measure = 0
        self.resume: float | None = None

    @rule(algorithm=st.sampled_from(LimitAlgorithm))
    def switch(self, algorithm: LimitAlgorithm) -> None:
        """Both algorithms obey the same model (the core is rebuilt with the other one)."""
        self._build(algorithm)

    def _average(self, latency: float) -> None:
        alpha = 2.0 / (3 + 1)
        self.short = latency if self.short is None else self.short + alpha * (latency - self.short)
        if self.baseline is None or self.short < self.baseline:
            self.baseline = self.short

    def _probe_step(self, latency: float, unchanged: bool) -> None:
        if self.skip > 0:
            self.skip -= 1
            if self.skip == 0:
                self.short = self.baseline = None
            assert unchanged
            return
        self._average(latency)
        self.measure -= 1
        if self.measure == 0:
            assert self.core.estimate == pytest.approx(self.resume)
            self.resume = None
        else:
            assert unchanged

    @rule(
        latency=st.sampled_from([0.01, 0.011, 0.015, 0.02, 0.05]),
        busy=st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5]),
    )
    def sample(self, latency: float, busy: float) -> None:
        """A success moves the limit as the model says; a probe starts exactly every 25 samples,
        skips the samples of the calls then in flight, measures for 3 and returns."""
        core = self.core
        before, estimate = core.limit, core.estimate
        in_flight = max(0, round(busy * before))
        after = core.on_sample(latency, in_flight=in_flight)
        assert after == core.limit
        if self.resume is not None:
            self._probe_step(latency, after == before)
            return
        self._average(latency)
        self.normal += 1
        if self.normal == 25:
            self.normal = 0
            self.resume, self.skip, self.measure = estimate, in_flight - 1, 3
            assert core.probing
            assert after == max(2, core.queue_size)
            return
        assert self.short is not None
        assert self.baseline is not None
        app_limited = in_flight * 2 < estimate
        if core.algorithm is LimitAlgorithm.GRADIENT:
            gradient = max(0.5, min(1.0, 1.2 * self.baseline / self.short))
            target = estimate * gradient + core.queue_size
            if app_limited and target > estimate:
                assert core.estimate == estimate
            elif target > estimate:
                assert core.estimate >= estimate
            else:
                assert core.estimate <= estimate
        elif self.short > 1.5 * self.baseline:
            assert core.estimate < estimate or estimate == 2.0
        elif app_limited:
            assert core.estimate == estimate
        else:
            assert core.estimate > estimate or estimate == 40.0

    @rule()
    def failure(self) -> None:
        """A failure never raises the limit: it multiplies it by 0.9, or during a probe the
        limit the probe returns to."""
        core = self.core
        before, estimate = core.limit, core.estimate
        after = core.on_failure()
        assert after <= before
        if self.resume is not None:
            self.resume = max(2.0, self.resume * 0.9)
            assert core.estimate == estimate
        else:
            assert core.estimate == pytest.approx(max(2.0, estimate * 0.9))

    @invariant()
    def matches_model(self) -> None:
        """The limit is an integer from min_limit to max_limit, the floor of the estimate; the
        latencies and the probe state are the model's."""
        core = self.core
        assert isinstance(core.limit, int)
        assert 2 <= core.limit <= 40
        assert core.limit == int(core.estimate)
        assert core.probing == (self.resume is not None)
        assert core.short == (None if self.short is None else pytest.approx(self.short))
        assert core.baseline == (None if self.baseline is None else pytest.approx(self.baseline))


TestLimit = LimitMachine.TestCase


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"min_limit": 0}, "`min_limit` must be an integer >= 1 (got 0)"),
        ({"initial_limit": 50, "max_limit": 20}, "`initial_limit`"),
        ({"min_limit": 5, "initial_limit": 3}, "`min_limit` <= `initial_limit`"),
        ({"tolerance": 0.5}, "`tolerance` must be a number >= 1 (got 0.5)"),
        ({"backoff_ratio": 0.0}, "`backoff_ratio`"),
        ({"backoff_ratio": 1.5}, "`backoff_ratio`"),
        ({"smoothing": 0}, "`smoothing`"),
        ({"queue_size": 0}, "`queue_size`"),
        ({"probe_interval": 0}, "`probe_interval`"),
        ({"algorithm": "vegas"}, '`algorithm` must be "gradient" or "aimd" (got \'vegas\')'),
    ],
)
def test_core_validates(kwargs: dict[str, object], needle: str) -> None:
    """Every bad option raises ConfigError naming it and its value."""
    with pytest.raises(ConfigError) as info:
        AdaptiveLimitCore(**kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_core_samples_validate() -> None:
    """A sample needs a latency > 0 and an in-flight count >= 0."""
    core = AdaptiveLimitCore()
    with pytest.raises(ConfigError, match="`latency`"):
        core.on_sample(0.0, in_flight=1)
    with pytest.raises(ConfigError, match="`in_flight`"):
        core.on_sample(0.1, in_flight=-1)


def test_gradient_grows_while_latency_is_stable_and_shrinks_when_it_rises() -> None:
    """Steady latency with the limit in use grows it; doubled latency shrinks it; failures
    shrink it by backoff_ratio each."""
    core = AdaptiveLimitCore(initial_limit=10, max_limit=100, probe_interval=None)
    for _ in range(400):
        core.on_sample(0.01, in_flight=core.limit)
    grown = core.limit
    assert grown > 25
    for _ in range(400):
        core.on_sample(0.02, in_flight=core.limit)
    assert core.limit < grown * 0.75
    before = core.estimate
    core.on_failure()
    assert core.estimate == pytest.approx(before * 0.9)
    assert core.statistics().failures == 1
    assert repr(core).startswith("<AdaptiveLimitCore gradient limit ")


def test_app_limited_samples_do_not_grow_the_limit() -> None:
    """Calls that use less than half the limit say nothing about the service's capacity."""
    core = AdaptiveLimitCore(algorithm="aimd", initial_limit=10, probe_interval=None)
    for _ in range(100):
        core.on_sample(0.01, in_flight=4)
    assert core.limit == 10


def test_probe_skips_stale_samples_and_returns() -> None:
    """At the probe the limit drops to queue_size; the in-flight calls' samples are skipped,
    the baseline is measured again over short_window samples, then the limit is restored."""
    core = AdaptiveLimitCore(
        initial_limit=20, max_limit=20, probe_interval=3, short_window=2, queue_size=4
    )
    for _ in range(2):
        core.on_sample(0.01, in_flight=20)
    assert core.on_sample(0.01, in_flight=20) == 4  # the third sample starts a probe
    assert core.probing
    for _ in range(19):  # the other 19 calls in flight
        assert core.on_sample(0.5, in_flight=4) == 4
    assert core.baseline is None
    assert core.on_sample(0.03, in_flight=4) == 4
    assert core.on_sample(0.03, in_flight=4) == 20  # back, with the new baseline
    assert core.baseline == pytest.approx(0.03)
    assert not core.probing


# -- the bulkhead core with a moving limit --------------------------------------------------


class MovingSlotsMachine(RuleBasedStateMachine):
    """Arrivals, departures and limit changes against a model of slots and a FIFO queue."""

    def __init__(self) -> None:
        super().__init__()
        self.core: BulkheadCore[int] = BulkheadCore(2, 4)
        self.limit = 2
        self.running: set[int] = set()
        self.queue: list[int] = []
        self.next = 0

    @rule()
    def arrive(self) -> None:
        """A call runs if fewer than `limit` run and nobody waits, else queues, else is
        refused."""
        ticket, self.next = self.next, self.next + 1
        self.core.offer(ticket)
        if len(self.running) < self.limit and not self.queue:
            self.running.add(ticket)
        elif len(self.queue) < 4:
            self.queue.append(ticket)

    @precondition(lambda self: self.running)
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        """A call ends: its slot goes to the oldest waiter only while no more than `limit` run."""
        self.running.remove(data.draw(st.sampled_from(sorted(self.running))))
        woken = self.core.leave()
        if self.queue and len(self.running) < self.limit:
            assert woken == self.queue.pop(0)
            self.running.add(woken)
        else:
            assert woken is None

    @rule(limit=st.integers(1, 6))
    def resize(self, limit: int) -> None:
        """Growing hands the new slots to the oldest waiters; shrinking takes none away."""
        self.limit = limit
        woken = self.core.set_limit(limit)
        expect = []
        while self.queue and len(self.running) < limit:
            expect.append(self.queue.pop(0))
            self.running.add(expect[-1])
        assert woken == expect

    @invariant()
    def matches_model(self) -> None:
        """Counts match, and a ticket waits only while at least `limit` run."""
        assert self.core.running == len(self.running)
        assert list(self.core.waiting()) == self.queue
        if self.queue:
            assert len(self.running) >= self.limit


TestMovingSlots = MovingSlotsMachine.TestCase


# -- the shell ------------------------------------------------------------------------------


async def test_limit_grows_and_wakes_waiters_at_exact_times(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two slots, six 1-second calls: two start at 0, and as the limit grows with steady
    latency the waiters are handed the new slots when the first calls end, at exactly 1.0."""
    pool = AdaptiveBulkhead(
        "db", initial_limit=2, max_limit=3, max_queued=10, smoothing=1.0, probe_interval=None
    )
    starts: list[float] = []

    @pool
    async def query() -> None:
        starts.append(trio.current_time())
        await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(query)
    assert starts == [0.0, 0.0, 1.0, 1.0, 1.0, 2.0]
    assert pool.limit == 3
    assert pool.statistics().max_concurrent == 3


async def test_failures_shrink_and_cancellation_counts_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each failure multiplies the limit by backoff_ratio; a cancelled call and an exception
    outside `exceptions` count nothing; every slot is given back."""
    pool = AdaptiveBulkhead("api", initial_limit=10, backoff_ratio=0.5, exceptions=OSError)

    @pool
    async def call(kind: str) -> None:
        await trio.sleep(0.1)
        if kind == "down":
            raise ConnectionError(kind)
        if kind == "bad":
            raise ValueError(kind)

    with pytest.raises(ConnectionError):
        await call("down")
    assert pool.limit == 5
    with pytest.raises(ValueError, match="bad"):
        await call("bad")
    with trio.move_on_after(0.05):
        await call("ok")
    assert pool.limit == 5
    stats = pool.limit_statistics()
    assert (stats.samples, stats.failures) == (0, 1)
    assert pool.core.running == 0
    async with pool:
        await trio.sleep(0.1)
    assert pool.limit_statistics().samples == 1
    with pytest.raises(ConnectionError):
        async with pool:
            raise ConnectionError("boom")
    assert pool.limit == 2
    assert "limit 1..200" in repr(pool)


async def test_full_queue_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    """Beyond the limit and the queue a call is refused at once, as by any bulkhead."""

    @adaptive_bulkhead(initial_limit=1, max_queued=0)
    async def slow() -> None:
        await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(slow)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(BulkheadFullError) as info:
            await slow()
    assert info.value.name.endswith("slow")
    assert slow.bulkhead.limit == 1  # type: ignore[attr-defined]


def test_decorator_factory_validates_at_once() -> None:
    """Bad options fail when adaptive_bulkhead(...) is called, not at the first call."""
    with pytest.raises(ConfigError, match="max_limit"):
        adaptive_bulkhead(max_limit=0)
    with pytest.raises(TypeError, match="exceptions"):
        adaptive_bulkhead(exceptions=(KeyboardInterrupt,))
    with pytest.raises(TypeError):
        adaptive_bulkhead(colour="red")


def _simulate(*, knee: int, jitter: float, calls: int, **options: object) -> list[int]:
    """A backend whose latency is 10 ms up to `knee` calls at once and grows in proportion to
    the concurrency beyond it, driven by 200 callers through an AdaptiveBulkhead."""
    rng = random.Random(7)

    async def main() -> list[int]:
        pool = AdaptiveBulkhead(
            "backend", initial_limit=5, max_limit=500, max_queued=200, **options
        )  # type: ignore[arg-type]
        running = 0
        done = 0
        limits: list[int] = []

        @pool
        async def backend() -> None:
            nonlocal running
            running += 1
            noise = 1.0 + jitter * (2.0 * rng.random() - 1.0)
            try:
                await trio.sleep(0.010 * max(1.0, running / knee) * noise)
            finally:
                running -= 1

        async def caller() -> None:
            nonlocal done
            while done < calls:
                await backend()
                done += 1
                limits.append(pool.limit)

        async with trio.open_nursery() as nursery:
            for _ in range(200):
                nursery.start_soon(caller)
        return limits

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


@pytest.mark.parametrize(
    ("options", "jitter", "low", "high"),
    [
        # gradient, tolerance 1: settles at knee + queue_size = 36 (+12.5%)
        ({"tolerance": 1.0}, 0.0, 0.95, 1.15),
        # with +-10% latency noise: within +-10% of the knee
        ({"tolerance": 1.0}, 0.1, 0.9, 1.1),
        # default gradient (tolerance 1.2), +-10% noise: within +-30%
        ({}, 0.1, 0.95, 1.3),
        # AIMD, tolerance 1.2: within +-20%
        ({"algorithm": "aimd", "tolerance": 1.2}, 0.0, 0.9, 1.2),
    ],
)
def test_converges_near_the_knee(
    options: dict[str, object], jitter: float, low: float, high: float
) -> None:
    """After 4000 calls the limit (its median over the last 2000, probes included) is within
    [low, high] times the backend's knee of 32 calls, starting from 5."""
    limits = _simulate(knee=32, jitter=jitter, calls=4000, **options)
    median = statistics.median(limits[-2000:])
    assert low * 32 <= median <= high * 32, (median, limits[::250])
    assert low * 32 <= limits[-1] <= high * 32
