"""The retry options beyond API.md, as one pure decision: :class:`RetryPlan`.

A plan wraps a :class:`~supervisor.cores.RetrySchedule` and adds, each only where asked for: an
error predicate (stamina's ``on=``), retrying on a result (tenacity's ``retry_if_result``,
backoff's ``on_predicate``), a total time limit for all attempts (tenacity's
``stop_after_delay``, stamina's ``timeout``) and a :class:`~supervisor.rules._retry_budget.
RetryBudget`. Its decisions say *why* retrying stops (:class:`GiveUpReason`), which the hooks and
the events carry as frozen :class:`RetryDetails`. Pure: the time is an argument.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from typing import Any

import attrs

from .._config import DURATION
from .._errors import shown
from ._classify import Matcher, matcher
from ._retry import RetrySchedule
from ._retry_budget import RetryBudget

__all__ = ["GiveUpReason", "RetryDetails", "RetryPlan"]


class GiveUpReason(enum.Enum):
    """Why retrying stopped."""

    NOT_RETRYABLE = "not_retryable"
    """The error is not one to retry (``exceptions``, ``on``, ``policy.should_retry``)."""
    ATTEMPTS = "attempts"
    """``max_attempts`` attempts were made."""
    RETRY_AFTER = "retry_after"
    """The error's ``retry_after`` is above the cap (``max_delay``)."""
    DEADLINE = "deadline"
    """The next sleep would not end before the caller's deadline."""
    TIME_LIMIT = "time_limit"
    """The next sleep would not end before ``total_timeout`` from the first attempt."""
    BUDGET = "budget"
    """The retry budget is spent: retrying now would add to a retry storm."""


@attrs.frozen(kw_only=True)
class RetryDetails:
    """What a retry hook is told (stamina's ``RetryDetails``): one frozen value per call of a
    hook. ``before_sleep`` gets it before each sleep, ``on_giveup`` when retrying stops on a
    failure (or on a result still to be retried), ``on_success`` when a call succeeds."""

    name: str
    """The decorated function's ``__qualname__``, the block's or service's name."""
    attempt: int
    """The attempt that just ended (1 for the first)."""
    elapsed: float
    """Seconds since the first attempt started."""
    delay: float = 0.0
    """``before_sleep``: the sleep about to start; else 0."""
    error: BaseException | None = None
    """The attempt's error, or ``None`` when it returned."""
    result: Any = None
    """The attempt's result, when it returned."""
    reason: GiveUpReason | None = None
    """``on_giveup``: why retrying stopped; else ``None``."""


def _budget(value: object) -> RetryBudget | None:
    if value is not None and not isinstance(value, RetryBudget):
        raise TypeError(f"`budget` must be a RetryBudget or None (got {shown(value)})")
    return value


@attrs.frozen(kw_only=True)
class RetryPlan:
    """A retry schedule plus the options beyond API.md (see the module docstring).

    Build with :meth:`build`. A plan holds no per-call state (the budget it points to is shared
    state of its own), so one plan serves every concurrent call.
    """

    schedule: RetrySchedule
    """Attempts, delays, the ``exceptions`` filter, the policy and the ``retry_after`` cap."""
    on: Matcher | None = None
    """Where given, an error is retried only if it also matches this."""
    retry_on_result: Callable[[Any], object] | None = None
    """Where given, a result for which it returns true is retried like a failure."""
    total_timeout: float | None = None
    """Where given, no sleep may end at or after this many seconds from the first attempt."""
    budget: RetryBudget | None = attrs.field(default=None, eq=False)
    """Where given, each retry must be allowed by this budget (shared by whoever holds it)."""

    @classmethod
    def build(
        cls,
        schedule: RetrySchedule,
        *,
        on: object = None,
        retry_on_result: object = None,
        total_timeout: float | None = None,
        budget: object = None,
    ) -> RetryPlan:
        """Check every option.

        Raises:
            ConfigError: ``on`` is not exception classes or predicates, or ``total_timeout`` is
                not a number > 0.
            TypeError: ``retry_on_result`` is not callable, ``budget`` not a RetryBudget.
        """
        if retry_on_result is not None and not callable(retry_on_result):
            raise TypeError(f"`retry_on_result` must be callable (got {shown(retry_on_result)})")
        return cls(
            schedule=schedule,
            on=None if on is None else matcher("on", on),
            retry_on_result=retry_on_result,
            total_timeout=None
            if total_timeout is None
            else float(DURATION.check("total_timeout", total_timeout)),
            budget=_budget(budget),
        )

    def start(self, now: float) -> None:
        """A call's first attempt starts at ``now`` (the budget counts it)."""
        if self.budget is not None:
            self.budget.record_first(now)

    def _fit(
        self, delay: float, now: float, started: float, deadline: float
    ) -> float | GiveUpReason:
        limit = math.inf if self.total_timeout is None else started + self.total_timeout
        if now + delay >= min(deadline, limit):
            return GiveUpReason.TIME_LIMIT if limit <= deadline else GiveUpReason.DEADLINE
        if self.budget is not None and not self.budget.try_retry(now):
            return GiveUpReason.BUDGET
        return delay

    def after_error(
        self,
        attempt: int,
        error: BaseException,
        *,
        rng: random.Random,
        now: float,
        started: float,
        deadline: float = math.inf,
        cap: int | None = None,
        fixed_delay: float | None = None,
    ) -> float | GiveUpReason:
        """After attempt ``attempt`` (1 for the first, started at ``started``) raised ``error``
        at ``now``: the seconds to sleep before the next attempt, or why to give up.

        In order: not retryable (``exceptions``, ``on``, the policy); ``max_attempts`` (or
        ``cap``, where smaller) reached; ``retry_after`` above the cap; the sleep (``fixed_delay``
        in place of the schedule's, where given) would not end before the smaller of
        ``deadline`` and ``started + total_timeout``; the budget refuses (only then is a retry
        counted against it). A predicate's own error propagates. ``cap`` and ``fixed_delay`` are
        how a testing mode (:func:`supervisor.testing`) speeds retries up.
        """
        schedule = self.schedule
        if not schedule.retryable(error) or (self.on is not None and not self.on(error)):
            return GiveUpReason.NOT_RETRYABLE
        if attempt >= schedule.max_attempts or (cap is not None and attempt >= cap):
            return GiveUpReason.ATTEMPTS
        delay = schedule.next_delay(attempt, error, rng=rng)
        if delay is None:
            return GiveUpReason.RETRY_AFTER
        return self._fit(delay if fixed_delay is None else fixed_delay, now, started, deadline)

    def after_result(
        self,
        attempt: int,
        result: Any,
        *,
        rng: random.Random,
        now: float,
        started: float,
        deadline: float = math.inf,
        cap: int | None = None,
        fixed_delay: float | None = None,
    ) -> float | GiveUpReason | None:
        """After attempt ``attempt`` returned ``result`` at ``now``: ``None`` to accept it (no
        ``retry_on_result``, or it returned false), else the seconds to sleep before trying
        again, or why to give up (then the result is returned as it is). The same limits as
        :meth:`after_error` apply, except the error filters and ``retry_after``."""
        predicate = self.retry_on_result
        if predicate is None or not predicate(result):
            return None
        return self.result_retry(
            attempt,
            rng=rng,
            now=now,
            started=started,
            deadline=deadline,
            cap=cap,
            fixed_delay=fixed_delay,
        )

    def result_retry(
        self,
        attempt: int,
        *,
        rng: random.Random,
        now: float,
        started: float,
        deadline: float = math.inf,
        cap: int | None = None,
        fixed_delay: float | None = None,
    ) -> float | GiveUpReason:
        """:meth:`after_result` for a result ``retry_on_result`` already rejected (for a shell
        that asked the predicate itself, so as to read no clock for an accepted result)."""
        if attempt >= self.schedule.max_attempts or (cap is not None and attempt >= cap):
            return GiveUpReason.ATTEMPTS
        delay = self.schedule.base_delay(attempt, rng) if fixed_delay is None else fixed_delay
        return self._fit(delay, now, started, deadline)
