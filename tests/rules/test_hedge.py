"""Tests of hedging: the pure policy and per-call state, and the trio shell (MockClock)."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from supervisor import ConfigError, Hedge, hedge
from supervisor.cores import HedgeCore, HedgeLaunched, HedgeRun, HedgeSettled, Verdict

# -- the pure core ---------------------------------------------------------------------------


class HedgeRunMachine(RuleBasedStateMachine):
    """Launches, skips, successes, failures and cancellations of one call against a model."""

    def __init__(self) -> None:
        super().__init__()
        self.core = HedgeCore(delay=1.0, max_hedges=3)
        self.deadline = 7.5
        self.now = 0.0
        self.run: HedgeRun = self.core.start(0.0, deadline=self.deadline)
        self.running = {0}
        self.used = 0  # hedges launched or skipped
        self.last = 0.0  # latest launch or skip
        self.owed: float | None = None
        self.winner: int | None = None
        self.ended: set[int] = set()

    def _expected_due(self) -> float:
        if self.winner is not None or self.used >= 3:
            return math.inf
        if self.owed is not None:
            return self.owed
        if not self.running:
            return math.inf
        due = self.last + 1.0
        return due if due < self.deadline else math.inf

    @rule(step=st.sampled_from([0.25, 0.5, 1.0, 2.0]))
    def advance(self, step: float) -> None:
        """Time moves on."""
        self.now += step

    @precondition(lambda self: self._expected_due() <= self.now)
    @rule(admitted=st.booleans())
    def due(self, admitted: bool) -> None:
        """A due hedge is launched (numbered in order) or skipped; either uses up a place."""
        if admitted:
            number = self.run.launch(self.now)
            assert number == len(self.run.launched) - 1
            self.running.add(number)
        else:
            self.run.skip(self.now)
        self.used += 1
        self.last = self.now
        self.owed = None

    @precondition(lambda self: self.running)
    @rule(data=st.data(), outcome=st.sampled_from(["success", "failure", "cancelled"]))
    def end(self, data: st.DataObject, outcome: str) -> None:
        """A running attempt ends: the first success wins and names the others to cancel; a
        failure owes a hedge at once while one is left and the deadline has not passed."""
        attempt = data.draw(st.sampled_from(sorted(self.running)))
        self.running.remove(attempt)
        self.ended.add(attempt)
        if outcome == "cancelled" or (outcome == "success" and self.winner is not None):
            self.run.cancelled(attempt)
        elif outcome == "success":
            assert self.run.succeeded(attempt, self.now) == frozenset(self.running)
            self.winner = attempt
        else:
            verdict = self.run.failed(attempt, self.now)
            if self.winner is None and self.used < 3 and self.now < self.deadline:
                assert verdict is Verdict.LAUNCH
                self.owed = self.now
            elif self.running or self.winner is not None:
                assert verdict is Verdict.WAIT
            else:
                assert verdict is Verdict.GIVE_UP

    @invariant()
    def matches_model(self) -> None:
        """The due time, the running set, the bound and the outcome are the model's."""
        run = self.run
        assert run.next_due() == self._expected_due()
        assert run.running == self.running
        assert run.winner == self.winner
        assert run.hedges <= 3
        assert run.owed == (self.owed is not None)
        assert run.gave_up == (
            self.winner is None and not self.running and self._expected_due() == math.inf
        )
        for attempt in self.ended:
            with pytest.raises(RuntimeError):
                run.cancelled(attempt)  # an attempt ends once


TestHedgeRun = HedgeRunMachine.TestCase


def test_percentile_delay_after_min_samples() -> None:
    """The delay is fixed until min_samples winners were seen, then their nearest-rank
    percentile over the last `samples` of them."""
    core = HedgeCore(delay=0.5, percentile=0.9, min_samples=5, samples=10)
    for latency in (0.1, 0.2, 0.3, 0.4):
        core.record(latency)
    assert core.hedge_delay() == 0.5
    core.record(0.05)
    assert core.hedge_delay() == 0.4  # ceil(0.9 * 5) = 5th smallest of 5
    for _ in range(10):
        core.record(0.01)  # the older samples leave the window of 10
    assert core.hedge_delay() == 0.01
    run = core.start(3.0)
    assert run.next_due() == 3.01
    assert "p90" in repr(core)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"delay": -1.0}, "`delay` must be a number >= 0 (got -1.0)"),
        ({"delay": 1.0, "max_hedges": 0}, "`max_hedges` must be an integer >= 1 (got 0)"),
        ({"delay": 1.0, "percentile": 1.0}, "`percentile` must be a number > 0 and < 1"),
        ({"delay": 1.0, "percentile": True}, "`percentile`"),
        ({"delay": 1.0, "min_samples": 0}, "`min_samples`"),
        ({"delay": 1.0, "samples": 0}, "`samples`"),
    ],
)
def test_core_validates(kwargs: dict[str, object], needle: str) -> None:
    """Bad options raise ConfigError naming the option and the value."""
    with pytest.raises(ConfigError) as info:
        HedgeCore(**kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_shell_validates_at_once() -> None:
    """hedge(...) checks its options when called; plain functions are refused."""
    with pytest.raises(ConfigError, match="max_hedges"):
        hedge(0.1, max_hedges=0)
    with pytest.raises(TypeError, match="exceptions"):
        hedge(0.1, exceptions=KeyboardInterrupt)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`name`"):
        Hedge(3, 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="async def"):

        @hedge(0.1)
        def plain() -> None:
            pass


# -- the shell -------------------------------------------------------------------------------


class Backend:
    """Answers attempt n after latencies[n] seconds (or raises errors[n]); counts entries and
    exits so that leaks show."""

    def __init__(self, latencies: list[float], errors: dict[int, Exception] | None = None):
        self.latencies = latencies
        self.errors = errors or {}
        self.starts: list[float] = []
        self.active = 0
        self.cancelled = 0

    async def __call__(self, tag: str = "") -> tuple[int, str]:
        n = len(self.starts)
        self.starts.append(trio.current_time())
        self.active += 1
        try:
            await trio.sleep(self.latencies[n])
            if n in self.errors:
                raise self.errors[n]
            return n, tag
        except trio.Cancelled:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1


async def test_slow_primary_loses_to_the_hedge(autojump_clock: trio.testing.MockClock) -> None:
    """The hedge starts exactly `delay` after the primary and answers first at 0.35; the
    primary is cancelled and the events say so."""
    backend = Backend([5.0, 0.25])
    hedged = Hedge("search", 0.1)
    events: list[object] = []
    hedged.add_listener(events.append)
    assert await hedged.call(backend, "q") == (1, "q")
    assert trio.current_time() == pytest.approx(0.35)
    assert backend.starts == [0.0, pytest.approx(0.1)]
    assert (backend.active, backend.cancelled) == (0, 1)
    launched, settled = events
    assert isinstance(launched, HedgeLaunched)
    assert (launched.name, launched.hedge, launched.reason) == ("search", 1, "delay")
    assert launched.at == launched.after == pytest.approx(0.1)
    assert settled == HedgeSettled(
        name="search", at=pytest.approx(0.35), hedges=1, winner=1, cancelled=1, failed=0
    )
    stats = hedged.statistics()
    assert (stats.calls, stats.hedged_calls, stats.hedges, stats.hedge_wins) == (1, 1, 1, 1)


async def test_fast_primary_launches_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """A primary that answers before the delay is the only attempt; no event is published."""
    backend = Backend([0.1])
    hedged = Hedge("fast", 0.1)
    events: list[object] = []
    hedged.add_listener(events.append)
    assert await hedged.call(backend) == (0, "")
    assert backend.starts == [0.0]
    assert events == []
    assert hedged.statistics().hedges == 0


async def test_hedges_are_bounded_and_spaced(autojump_clock: trio.testing.MockClock) -> None:
    """With max_hedges=2 and every attempt slow, hedges start at 1.0 and 2.0 and no more; the
    primary, still the first to answer at 10.0, wins."""
    backend = Backend([10.0, 10.0, 10.0, 10.0])

    @hedge(1.0, max_hedges=2)
    async def slow() -> tuple[int, str]:
        return await backend()

    assert await slow() == (0, "")
    assert backend.starts == [0.0, 1.0, 2.0]
    assert backend.cancelled == 2
    assert slow.hedge.statistics().hedge_wins == 0  # type: ignore[attr-defined]


async def test_failure_launches_the_next_hedge_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A primary failing at 0.02 starts the hedge then, not at the delay; when every attempt
    fails the last failure is raised."""
    backend = Backend([0.02, 0.5], errors={0: ConnectionError("a"), 1: ConnectionError("b")})
    hedged = Hedge("flaky", 1.0)
    events: list[object] = []
    hedged.add_listener(events.append)
    with pytest.raises(ConnectionError, match="b"):
        await hedged.call(backend)
    assert backend.starts == [0.0, 0.02]
    assert [getattr(e, "reason", None) for e in events] == ["failure", None]
    assert events[-1] == HedgeSettled(
        name="flaky", at=pytest.approx(0.52), hedges=1, winner=None, cancelled=0, failed=2
    )


async def test_unhandled_exception_ends_the_call_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An exception outside `exceptions` is raised unchanged and cancels the other attempts."""
    backend = Backend([5.0, 0.5], errors={1: KeyError("gone")})
    hedged = Hedge("lookup", 0.1, exceptions=OSError)
    with pytest.raises(KeyError, match="gone"):
        await hedged.call(backend)
    assert trio.current_time() == pytest.approx(0.6)
    assert (backend.active, backend.cancelled) == (0, 1)


async def test_no_hedge_at_or_after_the_deadline(autojump_clock: trio.testing.MockClock) -> None:
    """A hedge due exactly at the caller's deadline is not started."""
    backend = Backend([5.0, 5.0])
    hedged = Hedge("late", 1.0)
    with trio.move_on_after(1.0):
        await hedged.call(backend)
    assert backend.starts == [0.0]
    assert backend.active == 0


async def test_cancellation_propagates_as_itself(autojump_clock: trio.testing.MockClock) -> None:
    """Cancelling the caller cancels every attempt; trio.Cancelled arrives as itself, not in an
    exception group, and no settled event is published."""
    backend = Backend([5.0, 5.0])
    hedged = Hedge("cancel", 0.1)
    events: list[object] = []
    hedged.add_listener(events.append)
    seen: list[BaseException] = []
    with trio.move_on_after(0.5):
        try:
            await hedged.call(backend)
        except BaseException as exc:
            seen.append(exc)
            raise
    assert len(seen) == 1
    assert type(seen[0]) is trio.Cancelled
    assert (backend.active, backend.cancelled) == (0, 2)
    assert [type(e) for e in events] == [HedgeLaunched]
    assert hedged.statistics().cancelled == 2


async def test_keyboard_interrupt_is_not_swallowed(autojump_clock: trio.testing.MockClock) -> None:
    """A KeyboardInterrupt in a hedge propagates unchanged, the primary cancelled."""
    backend = Backend([5.0, 0.5], errors={1: KeyboardInterrupt()})  # type: ignore[dict-item]
    with pytest.raises(KeyboardInterrupt):
        await Hedge("ki", 0.1).call(backend)
    assert backend.active == 0


async def test_listener_error_cancels_attempts_and_propagates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A listener that raises on a launch makes the call raise its error; nothing leaks."""
    backend = Backend([5.0, 5.0])
    hedged = Hedge("loud", 0.1)

    def broken(event: object) -> None:
        raise RuntimeError("listener broke")

    hedged.add_listener(broken)
    with pytest.raises(RuntimeError, match="listener broke"):
        await hedged.call(backend)
    assert backend.active == 0


async def test_many_concurrent_callers_get_one_outcome_each(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two hundred callers share one Hedge over a backend where every third attempt is slow and
    every seventh fails: each caller gets exactly one outcome, the winner is always the first
    attempt to answer, and no attempt is left running."""
    active = 0
    attempts = 0
    hedged = Hedge("shared", 0.05, max_hedges=2, exceptions=ConnectionError)

    async def attempt(caller: int) -> tuple[int, float]:
        nonlocal active, attempts
        n = attempts
        attempts += 1
        active += 1
        try:
            await trio.sleep(1.0 if n % 3 == 0 else 0.01 + (n % 5) / 1000)
            if n % 7 == 0:
                raise ConnectionError(n)
            return caller, trio.current_time()
        finally:
            active -= 1

    outcomes: dict[int, list[object]] = {i: [] for i in range(200)}

    async def caller(i: int) -> None:
        try:
            outcomes[i].append(await hedged.call(attempt, i))
        except ConnectionError as exc:
            outcomes[i].append(exc)

    async with trio.open_nursery() as nursery:
        for i in range(200):
            nursery.start_soon(caller, i)
    assert all(len(got) == 1 for got in outcomes.values())
    answered = {i: got[0] for i, got in outcomes.items() if isinstance(got[0], tuple)}
    assert all(who == i for i, (who, _) in answered.items())  # each got its own answer
    assert active == 0
    stats = hedged.statistics()
    assert stats.calls == 200
    assert stats.hedges >= 60  # every primary that is slow (one in three) is hedged
    fast = [at for _, at in answered.values() if at < 0.2]
    assert len(fast) >= 0.9 * len(answered)  # hedging cut the slow third off
    assert stats.hedges + 200 == attempts
    assert "launched" in repr(hedged)


async def test_no_hedge_can_fall_due_so_the_attempt_runs_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With a deadline before the first hedge would be due, the attempt runs in the caller's own
    task (no nursery): its failure is raised unchanged and counted as the call's."""
    hedged = Hedge("short", 2.0)
    seen: list[object] = []

    async def attempt() -> object:
        seen.append(trio.lowlevel.current_task())
        raise ConnectionError("down")

    with trio.fail_after(1.0), pytest.raises(ConnectionError, match="down"):
        await hedged.call(attempt)
    assert seen == [trio.lowlevel.current_task()]
    with trio.fail_after(1.0):
        assert await hedged.call(Backend([0.5])) == (0, "")
    assert hedged.statistics().calls == 2
