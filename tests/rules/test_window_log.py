"""The sliding window's array of start times against a plain list of them: same answers, through
expiry, cutting the expired prefix, growth and reset."""

from __future__ import annotations

import gc
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from supervisor import ConfigError
from supervisor.rules._window import SlidingWindowCore


class _Model:
    """The sliding log written the obvious way: every start time in a list."""

    def __init__(self, max_calls: int, period: float) -> None:
        self.max_calls, self.period = max_calls, period
        self.starts: list[float] = []

    def expire(self, now: float) -> None:
        self.starts = [t for t in self.starts if not t + self.period <= now]

    def try_admit(self, now: float, amount: int) -> float:
        self.expire(now)
        if len(self.starts) + amount <= self.max_calls:
            self.starts.extend([now] * amount)
            return 0.0
        return self.starts[len(self.starts) + amount - self.max_calls - 1] + self.period - now

    def next_admission(self, now: float, amount: int) -> float:
        self.expire(now)
        gone = len(self.starts) + amount - self.max_calls
        return now if gone <= 0 else self.starts[gone - 1] + self.period


class LogAgainstModel(RuleBasedStateMachine):
    """Random schedules of every operation: the core and the list agree on each answer."""

    @initialize(
        max_calls=st.sampled_from([1, 3, 16, 17, 24, 40]), period=st.sampled_from([1.0, 2.5, 10.0])
    )
    def start(self, max_calls: int, period: float) -> None:
        """A window small enough to fill, slide and be cut, and large enough to grow."""
        self.core = SlidingWindowCore(max_calls, period)
        self.model = _Model(max_calls, period)
        self.now = 0.0
        self.admitted = 0
        self.refused = 0

    @rule(step=st.sampled_from([0.0, 0.0, 0.1, 0.25, 1.0, 2.5, 10.0]))
    def advance(self, step: float) -> None:
        """Time moves on, often not at all (many starts at one time), sometimes by a period."""
        self.now += step

    @rule(amount=st.integers(1, 8))
    def try_admit(self, amount: int) -> None:
        """A weighted call: admitted, or refused with the model's exact retry_after."""
        amount = min(amount, self.model.max_calls)
        expected = self.model.try_admit(self.now, amount)
        assert self.core.try_admit(self.now, amount) == expected
        if expected == 0.0:
            self.admitted += amount
        else:
            self.refused += 1

    @rule(burst=st.integers(1, 12))
    def admit_if_room(self, burst: int) -> None:
        """The fast path admits exactly when a call of 1 would be, and counts no refusal."""
        for _ in range(burst):
            room = self.model.next_admission(self.now, 1) <= self.now
            assert self.core.admit_if_room(self.now) is room
            if room:
                self.model.try_admit(self.now, 1)
                self.admitted += 1

    @rule(amount=st.integers(1, 8))
    def next_admission(self, amount: int) -> None:
        """The earliest time a call of ``amount`` would be admitted, exactly the model's."""
        amount = min(amount, self.model.max_calls)
        expected = self.model.next_admission(self.now, amount)
        assert self.core.next_admission(self.now, amount) == expected

    @rule()
    def in_window(self) -> None:
        """The count in the window ending now."""
        self.model.expire(self.now)
        assert self.core.in_window(self.now) == len(self.model.starts)

    @precondition(lambda self: self.admitted % 7 == 3)
    @rule()
    def reset(self) -> None:
        """Forgetting everything leaves an empty window (the totals stay)."""
        self.core.reset()
        self.model.starts.clear()

    @invariant()
    def totals_and_recorded(self) -> None:
        """Totals match, and nothing expired is ever reported before a call expires it."""
        if not hasattr(self, "core"):
            return
        assert (self.core.admitted, self.core.refused) == (self.admitted, self.refused)
        assert self.core.recorded >= len(
            [t for t in self.model.starts if t + self.model.period > self.now]
        )


TestLogAgainstModel = LogAgainstModel.TestCase


@given(
    max_calls=st.integers(17, 64),
    schedule=st.lists(
        st.tuples(st.sampled_from([0.0, 1.0, 2.5, 4.0]), st.integers(1, 12)), max_size=40
    ),
)
def test_bursts_that_slide_and_grow(max_calls: int, schedule: list[tuple[float, int]]) -> None:
    """Bursts spread over more than a period: the oldest expire (the head moves on, the expired
    prefix is cut off) while newer ones make the array grow; every answer is still the model's."""
    core, model = SlidingWindowCore(max_calls, 10.0), _Model(max_calls, 10.0)
    now = 0.0
    for step, burst in schedule:
        now += step
        for _ in range(burst):
            room = model.next_admission(now, 1) <= now
            assert core.admit_if_room(now) is room
            if room:
                model.try_admit(now, 1)
        assert core.try_admit(now) == model.try_admit(now, 1)
        assert core.next_admission(now, 5) == model.next_admission(now, 5)
        assert core.in_window(now) == len(model.starts)


def test_cutting_the_expired_prefix_keeps_the_order() -> None:
    """Once more starts have expired than remain, the expired ones are cut off; the rest keep
    their order and their answers."""
    core = SlidingWindowCore(100, 100.0)
    for t in range(16):
        assert core.admit_if_room(float(t))
    assert core.in_window(105.5) == 10  # starts 0..5 expired: the head moved past them
    assert len(core._times) == 16
    assert core.in_window(110.5) == 5  # 0..10 expired, more than remain: cut off
    assert len(core._times) == 5
    for _ in range(12):
        assert core.admit_if_room(110.5)
    expected = [11.0, 12.0, 13.0, 14.0, 15.0, *[110.5] * 12]
    found = [core.next_admission(110.5, 100 - 17 + k + 1) - 100.0 for k in range(17)]
    assert found == expected
    assert core.in_window(1000.0) == 0
    assert len(core._times) == 0


def test_storage_is_untracked_doubles() -> None:
    """The start times are C doubles the garbage collector never walks: no object per start."""
    core = SlidingWindowCore(10**9, 3600.0)
    for t in range(1000):
        core.admit_if_room(float(t))
    assert isinstance(core._times, array)
    assert core._times.typecode == "d"
    assert gc.get_referents(core._times) == [array]  # its type, and no float to walk
    assert len(core._times) == 1000  # one slot per start, nothing preallocated to max_calls
    core.reset()
    assert len(core._times) == 0
    assert core.recorded == 0


@pytest.mark.parametrize("amount", [0, -1, 4, 1.5])
def test_bad_weighted_amounts_raise(amount: int) -> None:
    """An amount the window could never hold is refused with ConfigError, not a wrong answer."""
    core = SlidingWindowCore(3, 1.0)
    with pytest.raises(ConfigError, match="`amount`"):
        core.try_admit(0.0, amount)
    with pytest.raises(ConfigError, match="`amount`"):
        core.next_admission(0.0, amount)
    assert core.recorded == 0
