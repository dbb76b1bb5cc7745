"""The retry budget: retries stay under a share of recent first attempts plus a floor, against a
model, with exact (half-open) window boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from supervisor import ConfigError, RetryBudget, RetryBudgetConfig

_EVENTS = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0, 2.5]),  # time since the previous event
        st.sampled_from(["first", "retry", "retry", "retry"]),
    ),
    max_size=120,
)


@given(
    events=_EVENTS,
    ratio=st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0]),
    min_per_second=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    window=st.sampled_from([1.0, 2.0, 5.0]),
)
def test_retries_never_exceed_ratio_times_first_attempts_plus_floor(
    events: list[tuple[float, str]], ratio: float, min_per_second: float, window: float
) -> None:
    """Over every window that ends at a retry, retries <= ratio x first attempts + floor; and
    over any window at all, retries <= ratio x the first attempts of it and the window before +
    floor."""
    budget = RetryBudget(ratio=ratio, min_per_second=min_per_second, window=window)
    floor = min_per_second * window
    now = 0.0
    firsts: list[float] = []
    retries: list[float] = []
    for gap, kind in events:
        now += gap
        if kind == "first":
            budget.record_first(now)
            firsts.append(now)
        elif budget.try_retry(now):
            retries.append(now)

    def within(times: list[float], start: float, end: float) -> int:
        return sum(1 for t in times if start < t <= end)

    for end in retries:
        assert (
            within(retries, end - window, end) <= ratio * within(firsts, end - window, end) + floor
        )
    for end in {*firsts, *retries, now}:
        assert within(retries, end - window, end) <= (
            ratio * within(firsts, end - 2 * window, end) + floor
        )


class BudgetMachine(RuleBasedStateMachine):
    """RetryBudget against the list of every attempt."""

    @initialize(
        ratio=st.sampled_from([0.0, 0.2, 0.5]),
        min_per_second=st.sampled_from([0.0, 1.0]),
        window=st.sampled_from([1.0, 3.0]),
    )
    def setup(self, ratio: float, min_per_second: float, window: float) -> None:
        self.config = RetryBudgetConfig(ratio=ratio, min_per_second=min_per_second, window=window)
        self.budget = RetryBudget(self.config)
        self.now = 0.0
        self.firsts: list[float] = []
        self.retries: list[float] = []
        self.refused = 0

    def _count(self, times: list[float]) -> int:
        return sum(1 for t in times if t > self.now - self.config.window)

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 3.0]))
    def wait(self, dt: float) -> None:
        self.now += dt

    @rule(n=st.integers(1, 6))
    def first_attempts(self, n: int) -> None:
        for _ in range(n):
            self.budget.record_first(self.now)
            self.firsts.append(self.now)

    @rule()
    def retry(self) -> None:
        allowed = self._count(self.retries) + 1 <= (
            self.config.ratio * self._count(self.firsts) + self.config.floor
        )
        assert self.budget.try_retry(self.now) is allowed
        if allowed:
            self.retries.append(self.now)
        else:
            self.refused += 1

    @invariant()
    def same_counts(self) -> None:
        if not hasattr(self, "budget"):
            return
        stats = self.budget.statistics(self.now)
        assert stats.first_attempts == self._count(self.firsts)
        assert stats.retries == self._count(self.retries)
        assert stats.refused == self.refused
        assert stats.spent == len(self.retries)
        expected = self.config.ratio * stats.first_attempts + self.config.floor - stats.retries
        assert stats.allowance == max(0.0, expected)


TestBudgetMachine = BudgetMachine.TestCase


def test_window_boundary_is_half_open() -> None:
    """First attempts exactly `window` seconds old no longer pay for retries."""
    budget = RetryBudget(ratio=0.5, min_per_second=0.0, window=10.0)
    for _ in range(4):
        budget.record_first(0.0)
    assert budget.try_retry(9.0)
    assert budget.try_retry(9.5)
    assert not budget.try_retry(9.75)  # 2 retries = 0.5 x 4
    assert budget.allowance(9.999) == 0.0
    assert budget.allowance(10.0) == 0.0  # the 4 first attempts left at 10.0
    budget.record_first(19.0)
    budget.record_first(19.0)
    assert not budget.try_retry(19.0)  # the retry of 9.0 has left, the one of 9.5 not yet
    assert budget.try_retry(19.5)  # and now it has
    assert budget.statistics(19.5).refused == 2


def test_the_floor_allows_retries_without_traffic() -> None:
    """`min_per_second * window` retries are allowed per window even with no first attempts."""
    budget = RetryBudget(ratio=0.2, min_per_second=0.5, window=4.0)
    assert [budget.try_retry(1.0) for _ in range(3)] == [True, True, False]


def test_bad_settings_name_the_field() -> None:
    """Bad budget values raise ConfigError naming the field and value."""
    with pytest.raises(ConfigError, match=r"`ratio` must be a number in \[0, 1\] \(got 1.5\)"):
        RetryBudget(ratio=1.5)
    with pytest.raises(ConfigError, match=r"`min_per_second` must be a number >= 0 \(got -1\)"):
        RetryBudgetConfig(min_per_second=-1)
    with pytest.raises(ConfigError, match=r"`window` must be a number > 0 \(got 0\)"):
        RetryBudgetConfig(window=0)
    with pytest.raises(TypeError, match="give `config` or settings, not both"):
        RetryBudget(RetryBudgetConfig(), ratio=0.1)
