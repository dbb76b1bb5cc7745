"""The failure-rate breaker core against a small model, under random calls, outcomes, slow
calls, resets and time jumps; and its exact boundaries with explicit times."""

from __future__ import annotations

import math

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, rule

from supervisor import ConfigError
from supervisor.rules._breaker import ChangeReason, CircuitState, Permit, Refusal
from supervisor.rules._classify import Outcome, OutcomeClassifier
from supervisor.rules._outcome_window import OutcomeWindow
from supervisor.rules._rate_breaker import OpenBackoff, RateBreakerCore, RateWindow, TimedPermit

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
SUCCESS, FAILURE, IGNORED = Outcome.SUCCESS, Outcome.FAILURE, Outcome.IGNORED


class _Model:
    """What the core should do, written as plainly as possible."""

    def __init__(
        self,
        *,
        rate: RateWindow | None,
        backoff: OpenBackoff | None,
        failure_threshold: int,
        success_threshold: int,
        half_open_max_calls: int,
        timeout: float,
    ) -> None:
        self.rate, self.backoff = rate, backoff
        self.failure_threshold, self.success_threshold = failure_threshold, success_threshold
        self.half_open_max_calls, self.timeout = half_open_max_calls, timeout
        self.state, self.epoch, self.forced = CLOSED, 0, False
        self.half_open_at = math.inf
        self.reopens = 0
        self.run = 0
        self.window: list[tuple[float, bool, bool]] = []
        self.in_flight = self.ended = self.trial_failed = self.trial_slow = self.trial_ok = 0
        self.changes: list[tuple[CircuitState, CircuitState, float, ChangeReason]] = []

    def move(self, new: CircuitState, at: float, reason: ChangeReason) -> None:
        old = self.state
        reopen = old is HALF_OPEN and new is OPEN
        self.state = new
        self.epoch += 1
        self.window = []
        self.in_flight = self.ended = self.trial_failed = self.trial_slow = self.trial_ok = 0
        if new is CLOSED:
            self.run = 0
            self.reopens = 0
            self.half_open_at = math.inf
        elif new is OPEN:
            if self.forced:
                self.half_open_at = math.inf
            else:
                if self.backoff is not None and reopen:
                    self.reopens += 1
                wait = self.timeout
                if self.backoff is not None:
                    wait = min(
                        self.backoff.max_timeout, self.timeout * self.backoff.factor**self.reopens
                    )
                self.half_open_at = at + wait
        if old is not new:
            self.changes.append((old, new, at, reason))

    def advance(self, now: float) -> None:
        if self.state is OPEN and now >= self.half_open_at:
            self.move(HALF_OPEN, self.half_open_at, ChangeReason.TIMEOUT_ELAPSED)

    def acquire(self, now: float) -> tuple[int, bool] | None:
        if self.state is OPEN:
            self.advance(now)
            if self.state is OPEN:
                return None
        if self.state is CLOSED:
            return (self.epoch, False)
        taken = self.in_flight + (self.ended if self.rate is not None else 0)
        if taken >= self.half_open_max_calls:
            return None
        self.in_flight += 1
        return (self.epoch, True)

    def _windowed(self, now: float) -> list[tuple[float, bool, bool]]:
        rate = self.rate
        assert rate is not None
        if rate.duration is not None:
            return [entry for entry in self.window if entry[0] > now - rate.duration]
        return self.window[-rate.size :] if rate.size else self.window

    def _trips(self, failure_rate: float, slow_rate: float) -> ChangeReason | None:
        rate = self.rate
        assert rate is not None
        if rate.failure_rate is not None and failure_rate >= rate.failure_rate:
            return ChangeReason.FAILURE_RATE
        if rate.slow_call_rate is not None and slow_rate >= rate.slow_call_rate:
            return ChangeReason.SLOW_CALL_RATE
        return None

    def end(  # noqa: PLR0912 -- the model spells out every case on purpose
        self, permit: tuple[int, bool, float], outcome: Outcome, now: float
    ) -> None:
        epoch, trial, started = permit
        current = epoch == self.epoch
        if outcome is IGNORED:
            if trial and current:
                self.in_flight -= 1
            return
        if not current:
            return
        failed = outcome is FAILURE
        rate = self.rate
        if rate is None:
            if failed:
                self.run += 1
                if trial:
                    self.in_flight -= 1
                    self.move(OPEN, now, ChangeReason.TRIAL_FAILED)
                elif self.run >= self.failure_threshold:
                    self.move(OPEN, now, ChangeReason.FAILURE_THRESHOLD)
            else:
                self.run = 0
                if trial:
                    self.in_flight -= 1
                    self.trial_ok += 1
                    if self.trial_ok >= self.success_threshold:
                        self.move(CLOSED, now, ChangeReason.TRIALS_SUCCEEDED)
            return
        slow = rate.slow_call_duration is not None and now - started > rate.slow_call_duration
        if trial:
            self.in_flight -= 1
            self.ended += 1
            self.trial_failed += failed
            self.trial_slow += slow
            if self.ended >= self.half_open_max_calls:
                tripped = self._trips(self.trial_failed / self.ended, self.trial_slow / self.ended)
                if tripped is None:
                    self.move(CLOSED, now, ChangeReason.TRIALS_SUCCEEDED)
                else:
                    self.move(OPEN, now, ChangeReason.TRIAL_FAILED)
            return
        self.window.append((now, failed, slow))
        self.window = self._windowed(now)
        calls = len(self.window)
        if calls >= rate.calls_needed:
            failures = sum(1 for _, f, _ in self.window if f)
            slows = sum(1 for _, _, s in self.window if s)
            tripped = self._trips(failures / calls, slows / calls)
            if tripped is not None:
                self.move(OPEN, now, tripped)


class RateBreakerMachine(RuleBasedStateMachine):
    """Drives a RateBreakerCore and the model side by side."""

    permits = Bundle("permits")

    @initialize(
        kind=st.sampled_from(["count", "time", "consecutive"]),
        size=st.integers(1, 5),
        duration=st.sampled_from([1.0, 2.5]),
        failure_rate=st.sampled_from([None, 0.25, 0.5, 1.0]),
        slow=st.booleans(),
        minimum_calls=st.integers(1, 3),
        backoff=st.booleans(),
        half_open_max_calls=st.integers(1, 3),
        failure_threshold=st.integers(1, 3),
        success_threshold=st.integers(1, 2),
        timeout=st.sampled_from([0.5, 1.0]),
    )
    def setup(  # noqa: PLR0917 -- one positional per hypothesis strategy
        self,
        kind: str,
        size: int,
        duration: float,
        failure_rate: float | None,
        slow: bool,
        minimum_calls: int,
        backoff: bool,
        half_open_max_calls: int,
        failure_threshold: int,
        success_threshold: int,
        timeout: float,
    ) -> None:
        if failure_rate is None:
            slow = True
        rate = (
            None
            if kind == "consecutive"
            else RateWindow(
                size=size if kind == "count" else None,
                duration=duration if kind == "time" else None,
                failure_rate=failure_rate,
                slow_call_rate=0.5 if slow else None,
                slow_call_duration=0.25 if slow else None,
                minimum_calls=min(minimum_calls, size) if kind == "count" else minimum_calls,
            )
        )
        open_backoff = OpenBackoff(factor=2.0, max_timeout=timeout * 4) if backoff else None
        self.now = 0.0
        self.core = RateBreakerCore(
            name="svc",
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            timeout=timeout,
            half_open_max_calls=half_open_max_calls,
            window=rate,
            open_backoff=open_backoff,
        )
        self.model = _Model(
            rate=rate,
            backoff=open_backoff,
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            half_open_max_calls=half_open_max_calls,
            timeout=timeout,
        )

    @rule(dt=st.sampled_from([0.0, 0.125, 0.25, 0.5, 1.0, 2.0]))
    def wait(self, dt: float) -> None:
        self.now += dt

    @rule(early=st.sampled_from([0.0, 0.125]))
    def wait_for_half_open(self, early: float) -> None:
        """Jump to (or just before) the moment the open timeout ends."""
        if self.model.state is OPEN and self.model.half_open_at < math.inf:
            self.now = max(self.now, self.model.half_open_at - early)

    @rule(target=permits)
    def acquire(self) -> object:
        expected = self.model.acquire(self.now)
        decision = self.core.try_acquire(self.now)
        if expected is None:
            assert isinstance(decision, Refusal)
            return None
        assert isinstance(decision, Permit)
        assert decision.trial is expected[1]
        if self.model.rate is not None:  # a window needs every call's start
            assert isinstance(decision, TimedPermit)
            assert decision.started == self.now
        else:  # else a closed breaker's permit is its free one
            assert (decision is self.core.free_permit) is (self.model.state is CLOSED)
        return (decision, (expected[0], expected[1], self.now))

    @rule(
        outcome=st.sampled_from([SUCCESS, FAILURE, IGNORED]),
        took=st.sampled_from([0.0, 0.25, 0.5]),
    )
    def call(self, outcome: Outcome, took: float) -> None:
        """A whole call: let in, run for `took` seconds, end."""
        held = self.acquire()
        self.now += took
        self.end(held, outcome)

    @rule(held=consumes(permits), outcome=st.sampled_from([SUCCESS, FAILURE, IGNORED]))
    def end(self, held: object, outcome: Outcome) -> None:
        if held is None:
            return
        permit, modelled = held  # type: ignore[misc]
        self.core.record(permit, self.now, outcome)
        self.model.end(modelled, outcome, self.now)

    @rule(dice=st.integers(0, 5))
    def reset(self, dice: int) -> None:
        if dice:  # rarely: resets and forced opens would hide the rest
            return
        self.core.reset(self.now)
        self.model.advance(self.now)
        self.model.forced = False
        self.model.move(CLOSED, self.now, ChangeReason.RESET)

    @rule(dice=st.integers(0, 5))
    def force_open(self, dice: int) -> None:
        if dice:
            return
        self.core.force_open(self.now)
        self.model.advance(self.now)
        self.model.forced = True
        self.model.move(OPEN, self.now, ChangeReason.FORCED_OPEN)

    @invariant()
    def same_state_and_changes(self) -> None:
        if not hasattr(self, "core"):
            return
        self.model.advance(self.now)
        assert self.core.state_at(self.now) is self.model.state
        changes = [(c.old_state, c.new_state, c.at, c.reason) for c in self.core.take_changes()]
        assert changes == self.model.changes
        self.model.changes = []
        assert self.core.half_open_at == self.model.half_open_at

    @invariant()
    def same_window(self) -> None:
        if not hasattr(self, "core") or self.model.rate is None:
            return
        stats = self.core.window_statistics(self.now)
        assert stats is not None
        seen = self.model._windowed(self.now) if self.model.state is CLOSED else []
        assert stats.calls == len(seen)
        assert stats.failures == sum(1 for _, f, _ in seen if f)
        assert stats.slow_calls == sum(1 for _, _, s in seen if s)


TestRateBreakerMachine = RateBreakerMachine.TestCase


def _core(**options: object) -> RateBreakerCore:
    options.setdefault("name", "svc")
    return RateBreakerCore(**options)  # type: ignore[arg-type]


def _call(core: RateBreakerCore, start: float, end: float, outcome: Outcome) -> None:
    permit = core.try_acquire(start)
    assert isinstance(permit, Permit)
    core.record(permit, end, outcome)


def test_count_window_opens_at_the_call_that_reaches_the_rate() -> None:
    """With the last 4 calls and a 50% threshold, the second failure among 4 calls opens it."""
    core = _core(window=RateWindow(size=4, failure_rate=0.5), timeout=10.0)
    for outcome in (FAILURE, SUCCESS, SUCCESS):
        _call(core, 0.0, 0.0, outcome)
    assert core.state_at(0.0) is CLOSED  # 3 calls < minimum_calls (4)
    _call(core, 1.0, 1.0, SUCCESS)
    assert core.state_at(1.0) is CLOSED  # 1 of 4 failed
    _call(core, 2.0, 2.0, FAILURE)  # the window is now S S S F: 25%
    assert core.state_at(2.0) is CLOSED
    _call(core, 3.0, 3.0, FAILURE)  # S S F F: 50%
    assert core.state_at(3.0) is OPEN
    assert [c.reason for c in core.take_changes()] == [ChangeReason.FAILURE_RATE]


def test_time_window_is_half_open() -> None:
    """A call that ended exactly `duration` ago has left the window."""
    core = _core(window=RateWindow(duration=10.0, failure_rate=0.5, minimum_calls=2))
    _call(core, 0.0, 0.0, FAILURE)
    _call(core, 9.0, 10.0, SUCCESS)  # the failure at 0 is out at 10: 1 call, below minimum
    assert core.window_statistics(10.0).calls == 1  # type: ignore[union-attr]
    assert core.state_at(10.0) is CLOSED
    _call(core, 10.0, 10.0, FAILURE)  # S@10, F@10: 50% of 2
    assert core.state_at(10.0) is OPEN


def test_a_quick_success_can_trip_a_time_window() -> None:
    """Quick calls that leave a time window can raise its slow rate: a quick success then
    opens the breaker."""
    window = RateWindow(
        duration=2.5,
        failure_rate=None,
        slow_call_rate=0.5,
        slow_call_duration=0.25,
        minimum_calls=1,
    )
    core = _core(window=window)
    _call(core, 0.0, 0.0, SUCCESS)
    _call(core, 0.0, 0.0, SUCCESS)
    _call(core, 0.0, 0.5, SUCCESS)  # slow: 1 of 3
    assert core.state_at(0.5) is CLOSED
    _call(core, 2.5, 2.5, SUCCESS)  # the two at 0.0 left: slow 1 of 2
    assert core.state_at(2.5) is OPEN


def test_slow_calls_open_on_the_slow_rate() -> None:
    """Calls longer than `slow_call_duration` (not equal to it) count as slow."""
    window = RateWindow(size=2, failure_rate=None, slow_call_rate=1.0, slow_call_duration=1.0)
    core = _core(window=window)
    _call(core, 0.0, 1.0, SUCCESS)  # exactly 1 s: not slow
    _call(core, 1.0, 2.5, SUCCESS)  # 1.5 s: slow; 1 of 2
    assert core.state_at(2.5) is CLOSED
    _call(core, 3.0, 4.5, FAILURE)  # slow too: 2 of 2
    assert core.state_at(4.5) is OPEN
    assert core.take_changes()[-1].reason is ChangeReason.SLOW_CALL_RATE
    assert core.slow_calls == 2


def test_half_open_trials_decide_as_a_rate() -> None:
    """Half-open lets in exactly `half_open_max_calls` trials, and their rate decides."""
    core = _core(window=RateWindow(size=1, failure_rate=0.5), timeout=1.0, half_open_max_calls=3)
    _call(core, 0.0, 0.0, FAILURE)
    trials = [core.try_acquire(1.0) for _ in range(4)]
    assert [type(t) for t in trials] == [TimedPermit] * 3 + [Refusal]
    core.record(trials[0], 1.0, IGNORED)  # type: ignore[arg-type]  # gives its place back
    again = core.try_acquire(1.0)
    assert isinstance(again, TimedPermit)
    core.record(trials[1], 1.5, SUCCESS)  # type: ignore[arg-type]
    core.record(trials[2], 1.5, FAILURE)  # type: ignore[arg-type]
    assert core.state_at(1.5) is HALF_OPEN
    assert isinstance(core.try_acquire(1.5), Refusal)  # all 3 places were given
    core.record(again, 2.0, SUCCESS)  # 1 of 3 failed: 33% < 50%
    assert core.state_at(2.0) is CLOSED


def test_open_backoff_grows_per_failed_trial_and_resets_on_close() -> None:
    """Open timeouts 1, 2, 4, 5 (capped), then 1 again after closing."""
    core = _core(
        failure_threshold=1,
        success_threshold=1,
        half_open_max_calls=1,
        timeout=1.0,
        open_backoff=OpenBackoff(factor=2.0, max_timeout=5.0),
    )
    _call(core, 0.0, 0.0, FAILURE)
    now, waits = 0.0, []
    for _ in range(4):
        waits.append(core.half_open_at - now)
        now = core.half_open_at
        assert core.state_at(now - 1e-9) is OPEN
        _call(core, now, now, FAILURE)
    assert waits == [1.0, 2.0, 4.0, 5.0]
    now = core.half_open_at
    _call(core, now, now, SUCCESS)
    assert core.state_at(now) is CLOSED
    _call(core, now, now, FAILURE)
    assert core.half_open_at - now == 1.0


def test_classifier_excludes_and_decides() -> None:
    """Excluded errors and errors the predicate rejects count as nothing; results can fail."""
    classifier = OutcomeClassifier.build(
        exclude=[KeyError, lambda e: "ignore" in str(e)],
        is_failure=lambda e: not isinstance(e, LookupError) or isinstance(e, IndexError),
        is_failure_result=lambda r: r == 503,
    )
    assert classifier.of_error(KeyError("x")) is IGNORED
    assert classifier.of_error(OSError("please ignore")) is IGNORED
    assert classifier.of_error(IndexError()) is FAILURE
    assert classifier.of_error(LookupError()) is IGNORED
    assert classifier.of_error(OSError()) is FAILURE
    assert classifier.of_result(503) is FAILURE
    assert classifier.of_result(200) is SUCCESS


def test_bad_settings_name_the_field() -> None:
    """Bad window and backoff values raise ConfigError naming the field and value."""
    with pytest.raises(ConfigError, match=r"`failure_rate` must be a rate in \(0, 1\] \(got 1.5\)"):
        RateWindow(size=3, failure_rate=1.5)
    with pytest.raises(ConfigError, match="exactly one of `size` and `duration`"):
        RateWindow(size=3, duration=1.0)
    with pytest.raises(ConfigError, match="`slow_call_rate` and `slow_call_duration` go together"):
        RateWindow(size=3, slow_call_rate=0.5)
    with pytest.raises(
        ConfigError, match=r"`minimum_calls` must be at most `size` \(3\) \(got 4\)"
    ):
        RateWindow(size=3, minimum_calls=4)
    with pytest.raises(ConfigError, match="needs `failure_rate` or `slow_call_rate`"):
        RateWindow(size=3, failure_rate=None)
    with pytest.raises(ConfigError, match=r"`factor` must be a number >= 1 \(got 0.5\)"):
        OpenBackoff(factor=0.5)
    with pytest.raises(ConfigError, match=r"`max_timeout` must be at least `timeout` \(60.0\)"):
        _core(timeout=60.0, open_backoff=OpenBackoff(max_timeout=30.0))
    with pytest.raises(ConfigError, match="`exclude` must be exception classes or predicates"):
        OutcomeClassifier.build(exclude=[3])
    with pytest.raises(ConfigError, match=r"`size` must be an integer >= 1 \(got 0\)"):
        OutcomeWindow(size=0)


class WindowMachine(RuleBasedStateMachine):
    """OutcomeWindow against a list of every call."""

    @initialize(kind=st.sampled_from(["count", "time"]), size=st.integers(1, 4))
    def setup(self, kind: str, size: int) -> None:
        self.kind, self.size, self.duration = kind, size, float(size)
        self.window = (
            OutcomeWindow(size=size) if kind == "count" else OutcomeWindow(duration=float(size))
        )
        self.calls: list[tuple[float, bool, bool]] = []
        self.now = 0.0

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 3.0]))
    def wait(self, dt: float) -> None:
        self.now += dt

    @rule(failed=st.booleans(), slow=st.booleans())
    def record(self, failed: bool, slow: bool) -> None:
        self.window.record(self.now, failed=failed, slow=slow)
        self.calls.append((self.now, failed, slow))

    @invariant()
    def same_totals(self) -> None:
        if not hasattr(self, "window"):
            return
        if self.kind == "count":
            seen = self.calls[-self.size :]
        else:
            seen = [c for c in self.calls if c[0] > self.now - self.duration]
        stats = self.window.statistics(self.now, 1)
        assert (stats.calls, stats.failures, stats.slow_calls) == (
            len(seen),
            sum(1 for c in seen if c[1]),
            sum(1 for c in seen if c[2]),
        )


TestWindowMachine = WindowMachine.TestCase
