"""The retry plan against a small model of a retry loop, and its reasons for giving up."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from supervisor import ConfigError, RetryBudget, RetryBudgetConfig
from supervisor.rules._classify import Outcome, OutcomeClassifier
from supervisor.rules._retry import RetrySchedule
from supervisor.rules._retry_plan import GiveUpReason, RetryPlan


class _Transient(Exception):
    """Retried by the plans of the machine below."""


class _Fatal(Exception):
    """Never retried by them."""


class PlanMachine(RuleBasedStateMachine):
    """One retry loop after another, driven by a RetryPlan and by a model of what it decides."""

    @initialize(
        max_attempts=st.integers(1, 4),
        total_timeout=st.sampled_from([None, 1.5, 4.0]),
        deadline=st.sampled_from([math.inf, 3.0, 10.0]),
        by_result=st.booleans(),
    )
    def setup(
        self, max_attempts: int, total_timeout: float | None, deadline: float, by_result: bool
    ) -> None:
        schedule = RetrySchedule.build(
            max_attempts=max_attempts, initial_delay=0.5, backoff_factor=2.0, jitter=False
        )
        self.plan = RetryPlan.build(
            schedule,
            on=_Transient,
            retry_on_result=(lambda r: r == "again") if by_result else None,
            total_timeout=total_timeout,
        )
        self.max_attempts, self.total_timeout, self.by_result = (
            max_attempts,
            total_timeout,
            by_result,
        )
        self.deadline_gap = deadline
        self.rng = random.Random(0)
        self._new_call(0.0)

    def _new_call(self, now: float) -> None:
        self.now = self.started = now
        self.deadline = now + self.deadline_gap
        self.attempt = 1
        self.plan.start(now)

    def _expected(self, retryable: bool) -> float | GiveUpReason:
        if not retryable:
            return GiveUpReason.NOT_RETRYABLE
        if self.attempt >= self.max_attempts:
            return GiveUpReason.ATTEMPTS
        delay = 0.5 * 2.0 ** (self.attempt - 1)
        limit = math.inf if self.total_timeout is None else self.started + self.total_timeout
        if self.now + delay >= min(limit, self.deadline):
            return GiveUpReason.TIME_LIMIT if limit <= self.deadline else GiveUpReason.DEADLINE
        return delay

    def _follow(self, got: float | GiveUpReason | None, expected: float | GiveUpReason) -> None:
        assert got == expected
        if isinstance(got, float):
            self.now += got
            self.attempt += 1
        else:
            self._new_call(self.now + 1.0)

    @rule(took=st.sampled_from([0.0, 0.25, 1.0]), transient=st.booleans())
    def attempt_fails(self, took: float, transient: bool) -> None:
        self.now += took
        error = _Transient() if transient else _Fatal()
        got = self.plan.after_error(
            self.attempt,
            error,
            rng=self.rng,
            now=self.now,
            started=self.started,
            deadline=self.deadline,
        )
        self._follow(got, self._expected(transient))

    @rule(took=st.sampled_from([0.0, 0.25, 1.0]), again=st.booleans())
    def attempt_returns(self, took: float, again: bool) -> None:
        self.now += took
        got = self.plan.after_result(
            self.attempt,
            "again" if again else "done",
            rng=self.rng,
            now=self.now,
            started=self.started,
            deadline=self.deadline,
        )
        if not (again and self.by_result):
            assert got is None
            self._new_call(self.now + 1.0)
            return
        self._follow(got, self._expected(True))

    @invariant()
    def attempts_within_limit(self) -> None:
        if hasattr(self, "plan"):
            assert 1 <= self.attempt <= self.max_attempts


TestPlanMachine = PlanMachine.TestCase


@given(
    error=st.sampled_from([KeyError(), IndexError(), OSError("skip"), OSError(), ValueError()]),
    expected=st.sampled_from([(Exception,), (OSError,), (LookupError, OSError)]),
    excluded=st.booleans(),
)
def test_classifier_matches_its_definition(
    error: Exception, expected: tuple[type[BaseException], ...], excluded: bool
) -> None:
    """An error fails exactly when it is expected, not excluded, and the predicate says so."""
    exclude = [KeyError, lambda e: "skip" in str(e)] if excluded else []
    classifier = OutcomeClassifier.build(
        expected_exception=expected, exclude=exclude, is_failure=lambda e: type(e) is not ValueError
    )
    fails = (
        isinstance(error, expected)
        and not (excluded and (isinstance(error, KeyError) or "skip" in str(error)))
        and type(error) is not ValueError
    )
    assert classifier.of_error(error) is (Outcome.FAILURE if fails else Outcome.IGNORED)


def _plan(**options: object) -> RetryPlan:
    schedule = RetrySchedule.build(
        max_attempts=options.pop("max_attempts", 3),  # type: ignore[arg-type]
        initial_delay=1.0,
        backoff_factor=2.0,
        jitter=False,
        exceptions=options.pop("exceptions", (Exception,)),
    )
    return RetryPlan.build(schedule, **options)  # type: ignore[arg-type]


class _Later(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def test_plan_says_why_it_gives_up() -> None:
    """Each limit gives its own reason; the smaller of deadline and time limit wins."""
    rng = random.Random(0)
    decide = _plan(on=lambda e: "transient" in str(e), total_timeout=2.5).after_error
    assert decide(1, OSError("transient"), rng=rng, now=0.0, started=0.0) == 1.0
    assert decide(1, OSError("fatal"), rng=rng, now=0.0, started=0.0) is GiveUpReason.NOT_RETRYABLE
    assert decide(3, OSError("transient"), rng=rng, now=0.0, started=0.0) is GiveUpReason.ATTEMPTS
    # Sleeping 2 s from 0.5 would end at 2.5 = started + total_timeout: too late (half-open).
    assert decide(2, OSError("transient"), rng=rng, now=0.5, started=0.0) is GiveUpReason.TIME_LIMIT
    assert decide(2, OSError("transient"), rng=rng, now=0.4, started=0.0) == 2.0
    assert (
        decide(2, OSError("transient"), rng=rng, now=0.4, started=0.0, deadline=2.4)
        is GiveUpReason.DEADLINE
    )
    assert decide(1, _Later(120.0), rng=rng, now=0.0, started=0.0) is GiveUpReason.NOT_RETRYABLE
    later = _plan().after_error
    assert later(1, _Later(120.0), rng=rng, now=0.0, started=0.0) is GiveUpReason.RETRY_AFTER
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, window=1.0)
    spent = _plan(budget=budget).after_error
    assert spent(1, OSError(), rng=rng, now=0.0, started=0.0) is GiveUpReason.BUDGET
    assert budget.refused == 1


def test_plan_retries_results_and_filters_by_type_or_predicate() -> None:
    """`retry_on_result` retries a result like a failure; `on` mixes types and predicates."""
    rng = random.Random(0)
    plan = _plan(retry_on_result=lambda r: r is None, on=[KeyError, lambda e: e.args == ("x",)])
    assert plan.after_result(1, 5, rng=rng, now=0.0, started=0.0) is None
    assert plan.after_result(1, None, rng=rng, now=0.0, started=0.0) == 1.0
    assert plan.after_result(3, None, rng=rng, now=0.0, started=0.0) is GiveUpReason.ATTEMPTS
    assert plan.after_error(1, KeyError(), rng=rng, now=0.0, started=0.0) == 1.0
    assert plan.after_error(1, OSError("x"), rng=rng, now=0.0, started=0.0) == 1.0
    assert plan.after_error(1, OSError("y"), rng=rng, now=0.0, started=0.0) is (
        GiveUpReason.NOT_RETRYABLE
    )
    assert _plan().after_result(1, None, rng=rng, now=0.0, started=0.0) is None


def test_plan_bad_options_are_refused() -> None:
    """Bad plan options raise clear errors at build time."""
    with pytest.raises(ConfigError, match=r"`total_timeout` must be a number > 0 \(got 0\)"):
        _plan(total_timeout=0)
    with pytest.raises(ConfigError, match="`on` must be exception classes or predicates"):
        _plan(on=[5])
    with pytest.raises(TypeError, match="`budget` must be a RetryBudget or None"):
        _plan(budget=RetryBudgetConfig())
    with pytest.raises(TypeError, match="`retry_on_result` must be callable"):
        _plan(retry_on_result=3)
