"""The pure retry schedule: every delay within the contract's bounds, every give-up rule."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from supervisor import ExponentialBackoff, LinearBackoff, RateLimitExceeded
from supervisor.rules._retry import RetrySchedule


class Boom(Exception):
    """A retryable failure."""


delays = st.floats(0.0, 100.0)
factors = st.floats(1.0, 5.0)


@given(
    initial=delays,
    cap=delays,
    factor=factors,
    attempt=st.integers(1, 60),
    jitter=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_delay_within_bounds(  # noqa: PLR0917 -- one positional per hypothesis strategy
    initial: float, cap: float, factor: float, attempt: int, jitter: bool, seed: int
) -> None:
    """The delay never exceeds min(max_delay, initial * factor**(n-1)); exact without jitter."""
    schedule = RetrySchedule.build(
        max_attempts=attempt + 1,
        initial_delay=initial,
        max_delay=cap,
        backoff_factor=factor,
        jitter=jitter,
    )
    delay = schedule.next_delay(attempt, Boom(), rng=random.Random(seed))
    assert delay is not None
    ceiling = min(cap, initial * factor ** (attempt - 1))
    if not jitter:
        assert delay == ceiling
    else:
        assert 0.0 <= delay <= ceiling


@given(max_attempts=st.integers(1, 10), attempt=st.integers(1, 12))
def test_gives_up_when_attempts_run_out(max_attempts: int, attempt: int) -> None:
    """The schedule gives up exactly from attempt max_attempts on."""
    schedule = RetrySchedule.build(max_attempts=max_attempts, initial_delay=0.0)
    delay = schedule.next_delay(attempt, Boom(), rng=random.Random(0))
    assert (delay is None) == (attempt >= max_attempts)


@given(
    retry_after=st.floats(0.0, 200.0),
    cap=st.floats(0.0, 100.0),
    initial=st.floats(0.0, 100.0),
)
def test_retry_after_bounds(retry_after: float, cap: float, initial: float) -> None:
    """retry_after raises the delay to at least itself, and stops retrying above the cap."""
    schedule = RetrySchedule.build(
        max_attempts=5, initial_delay=initial, max_delay=cap, jitter=False
    )
    delay = schedule.next_delay(1, RateLimitExceeded(retry_after), rng=random.Random(0))
    if retry_after > cap:
        assert delay is None
    else:
        assert delay == max(min(cap, initial), retry_after)


@given(now=st.floats(0.0, 1000.0), budget=st.floats(0.0, 50.0), initial=st.floats(0.0, 40.0))
def test_deadline_awareness(now: float, budget: float, initial: float) -> None:
    """A delay is offered only if the sleep ends strictly before the deadline."""
    schedule = RetrySchedule.build(max_attempts=5, initial_delay=initial, jitter=False)
    deadline = now + budget
    delay = schedule.next_delay(1, Boom(), rng=random.Random(0), deadline=deadline, now=now)
    if now + initial >= deadline:
        assert delay is None
    else:
        assert delay == initial


@given(attempt=st.integers(1, 30), seed=st.integers(0, 1000))
def test_policy_decides_alone(attempt: int, seed: int) -> None:
    """With a policy, the delay is the policy's, jitter off or on."""
    policy = ExponentialBackoff(0.1, 30.0, 1.5, jitter=True, rng=random.Random(seed))
    twin = ExponentialBackoff(0.1, 30.0, 1.5, jitter=True, rng=random.Random(seed))
    schedule = RetrySchedule.build(max_attempts=100, policy=policy, jitter=False)
    assert schedule.next_delay(attempt, Boom(), rng=random.Random(0)) == twin.get_delay(attempt)
    linear = RetrySchedule.build(max_attempts=100, policy=LinearBackoff(0.5, max_attempts=40))
    assert linear.max_attempts == 40
    assert linear.next_delay(attempt, Boom(), rng=random.Random(0)) == 0.5 * attempt


def test_non_exceptions_are_never_retryable() -> None:
    """Cancellation-like BaseExceptions are never retryable, whatever `exceptions` says."""
    schedule = RetrySchedule.build(max_attempts=3, exceptions=(BaseException,))
    assert not schedule.retryable(KeyboardInterrupt())
    assert schedule.retryable(Boom())


def test_infinite_retry_after_without_cap_gives_up() -> None:
    """An infinite retry_after is never slept, even without a cap."""
    schedule = RetrySchedule.build(max_attempts=3, policy=LinearBackoff(1.0))
    assert schedule.retry_after_cap is None
    assert schedule.next_delay(1, RateLimitExceeded(math.inf), rng=random.Random(0)) is None
