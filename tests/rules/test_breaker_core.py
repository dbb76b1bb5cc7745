"""The pure breaker core against a tiny model, under random calls, outcomes and time jumps."""

from __future__ import annotations

import math

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from supervisor.rules._breaker import (
    BreakerCore,
    ChangeReason,
    CircuitState,
    CircuitStateChange,
    Permit,
    Refusal,
)

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class BreakerMachine(RuleBasedStateMachine):
    """Drives a BreakerCore and a small model side by side."""

    permits = Bundle("permits")

    @initialize(
        failure_threshold=st.integers(1, 4),
        success_threshold=st.integers(1, 3),
        half_open_max_calls=st.integers(1, 3),
        timeout=st.sampled_from([0.5, 1.0, 3.0]),
    )
    def setup(
        self,
        failure_threshold: int,
        success_threshold: int,
        half_open_max_calls: int,
        timeout: float,
    ) -> None:
        self.core = BreakerCore(
            name="m",
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            half_open_max_calls=half_open_max_calls,
            timeout=timeout,
        )
        self.now = 0.0
        self.events: list[CircuitStateChange] = []
        # the model
        self.state = CLOSED
        self.forced = False
        self.run = 0
        self.trial_ok = 0
        self.trials: set[int] = set()  # ids of current-epoch trial permits out
        self.opened_at: float | None = None
        self.epoch_token = object()
        self.next_id = 0

    # -- model helpers -------------------------------------------------------------------------

    def _model_move(self, new: CircuitState) -> None:
        self.state = new
        self.epoch_token = object()
        self.trials = set()
        self.trial_ok = 0
        if new is CLOSED:
            self.run = 0
            self.opened_at = None
        elif new is OPEN:
            self.opened_at = self.now

    def _model_advance(self) -> None:
        if (
            self.state is OPEN
            and not self.forced
            and self.opened_at is not None
            and self.now >= self.opened_at + self.core.timeout
        ):
            self.state = HALF_OPEN
            self.epoch_token = object()
            self.trials = set()
            self.trial_ok = 0

    def _collect(self) -> None:
        self.events.extend(self.core.take_changes())

    # -- rules ---------------------------------------------------------------------------------

    @rule(dt=st.sampled_from([0.0, 0.25, 1.0, 5.0]))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @rule()
    def time_jumps_to_exactly_half_open(self) -> None:
        if self.state is OPEN and self.opened_at is not None:
            self.now = max(self.now, self.opened_at + self.core.timeout)

    @rule()
    def read_state(self) -> None:
        self._model_advance()
        assert self.core.state_at(self.now) is self.state
        self._collect()

    @rule(target=permits)
    def acquire(self) -> object:
        self._model_advance()
        decision = self.core.try_acquire(self.now)
        self._collect()
        if self.state is CLOSED:
            assert isinstance(decision, Permit)
            assert not decision.trial
        elif self.state is OPEN:
            assert isinstance(decision, Refusal)
            expected = math.inf if self.forced else self.opened_at + self.core.timeout - self.now  # type: ignore[operator]
            assert decision.retry_after == pytest.approx(expected)
            assert decision.retry_after > 0
        elif len(self.trials) >= self.core.half_open_max_calls:
            assert isinstance(decision, Refusal)
            assert decision.retry_after == 0.0
        else:
            assert isinstance(decision, Permit)
            assert decision.trial
        if isinstance(decision, Refusal):
            return None
        self.next_id += 1
        if decision.trial:
            self.trials.add(self.next_id)
        return (decision, self.next_id, self.epoch_token)

    @rule(held=consumes(permits))
    def succeed(self, held: tuple[Permit, int, object] | None) -> None:
        if held is None:
            return
        permit, ident, token = held
        self.core.on_success(permit, self.now)
        self._collect()
        if token is self.epoch_token:
            self.run = 0
            if permit.trial:
                self.trials.discard(ident)
                self.trial_ok += 1
                if self.trial_ok >= self.core.success_threshold:
                    self._model_move(CLOSED)

    @rule(held=consumes(permits))
    def fail(self, held: tuple[Permit, int, object] | None) -> None:
        if held is None:
            return
        permit, ident, token = held
        self.core.on_failure(permit, self.now)
        self._collect()
        if token is self.epoch_token:
            self.run += 1
            if permit.trial:
                self.trials.discard(ident)
                self._model_move(OPEN)
            elif self.run >= self.core.failure_threshold:
                self._model_move(OPEN)

    @rule(held=consumes(permits))
    def ignored_or_cancelled(self, held: tuple[Permit, int, object] | None) -> None:
        if held is None:
            return
        permit, ident, token = held
        self.core.release(permit)
        self._collect()
        if token is self.epoch_token:
            self.trials.discard(ident)

    @rule()
    def reset(self) -> None:
        self._model_advance()
        self.core.reset(self.now)
        self._collect()
        self.forced = False
        self._model_move(CLOSED)

    @rule()
    def force_open(self) -> None:
        self._model_advance()
        self.core.force_open(self.now)
        self._collect()
        self.forced = True
        self._model_move(OPEN)

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def counts_agree(self) -> None:
        assert self.core._state is self.state
        assert self.core.failure_count == self.run
        assert self.core.trials_in_flight == len(self.trials)
        assert self.core.trials_in_flight <= self.core.half_open_max_calls
        assert self.core.trial_successes == self.trial_ok
        assert self.core.forced_open is self.forced
        assert self.core.opened_at == self.opened_at

    @invariant()
    def events_chain(self) -> None:
        previous = CLOSED
        last_at = -math.inf
        for event in self.events:
            assert event.old_state is previous
            assert event.old_state is not event.new_state
            assert event.at >= last_at
            assert event.at <= self.now
            if event.new_state is HALF_OPEN:
                assert event.reason is ChangeReason.TIMEOUT_ELAPSED
            previous, last_at = event.new_state, event.at
        assert previous is self.core._state

    @invariant()
    def half_open_is_stamped_at_timeout(self) -> None:
        for before, event in zip(self.events, self.events[1:], strict=False):
            if event.new_state is HALF_OPEN:
                assert event.at == before.at + self.core.timeout


TestBreakerCore = BreakerMachine.TestCase


def test_trial_success_needs_now() -> None:
    """Handing back a trial permit without the time is refused."""
    core = BreakerCore(name="x", failure_threshold=1, timeout=1.0)
    core.on_failure(core.permit, 0.0)
    permit = core.try_acquire(1.0)
    assert isinstance(permit, Permit)
    with pytest.raises(ValueError, match="`now`"):
        core.on_success(permit)


def test_free_permit_only_while_closed() -> None:
    """The clock-free permit exists only while the core is closed."""
    core = BreakerCore(name="x", failure_threshold=1, timeout=1.0)
    assert core.free_permit is core.try_acquire(0.0)
    core.on_failure(core.permit, 0.0)
    assert core.free_permit is None
    assert core.retry_after(0.25) == 0.75
    assert repr(core) == "<BreakerCore 'x' open, 1/1 failures>"


@pytest.mark.parametrize("settle", ["release", "success", "failure"])
def test_stale_trial_permit_counts_nothing(settle: str) -> None:
    """A trial permit handed back after the core reopened neither frees a slot nor counts."""
    core = BreakerCore(name="x", failure_threshold=1, timeout=1.0, half_open_max_calls=2)
    core.on_failure(core.permit, 0.0)
    first, second = core.try_acquire(1.0), core.try_acquire(1.0)
    assert isinstance(first, Permit)
    assert isinstance(second, Permit)
    core.on_failure(second, 1.5)
    assert core.state_at(1.5) is OPEN
    if settle == "release":
        core.release(first)
    elif settle == "success":
        core.on_success(first, 1.6)
    else:
        core.on_failure(first, 1.6)
    assert core.trials_in_flight == 0
    assert core.opened_at == 1.5
    assert core.state_at(2.5) is HALF_OPEN
    assert [c.new_state for c in core.take_changes()] == [OPEN, HALF_OPEN, OPEN, HALF_OPEN]
