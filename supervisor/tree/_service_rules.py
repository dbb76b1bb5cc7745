"""The steps of a guarded service's request path that drive the rules beyond API.md: a breaker
with a rate window, open backoff or classifiers (a
:class:`~supervisor.rules._rate_breaker.RateBreakerCore`), and retrying by a
:class:`~supervisor.rules._retry_plan.RetryPlan` (error and result predicates, a total time
limit, a retry budget, and the give-up event).

``tree/_request_path.py`` calls these at its steps; each is a plain function of the service's state,
so the request path there still reads top to bottom.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from .._errors import RetryableResult
from ..guards._retry_ext import testing_overrides
from ..observe._events import RetryGaveUp
from ..rules._breaker import BreakerCore, Permit
from ..rules._rate_breaker import RateBreakerCore
from ..rules._retry import RetrySchedule
from ..rules._retry_budget import RetryBudget
from ..rules._retry_plan import GiveUpReason, RetryPlan

if TYPE_CHECKING:
    from ..observe._bus import EventBus
    from ._rule_specs import BreakerSpec, RetrySpec

__all__ = ["RetryStep", "breaker_options", "retry_plan", "settle_error", "settle_result"]


def breaker_options(spec: BreakerSpec) -> dict[str, Any]:
    """The keyword options of :class:`~supervisor.CircuitBreaker` beyond API.md, from a spec."""
    return {
        "window": spec.window,
        "open_backoff": spec.open_backoff,
        "exclude": spec.exclude,
        "is_failure": spec.is_failure,
        "is_failure_result": spec.is_failure_result,
    }


def retry_plan(spec: RetrySpec) -> RetryPlan:
    """The service's retry plan (with its own budget, if the spec has one).

    Raises:
        ConfigError: a bad value (the spec checked most already).
    """
    schedule = RetrySchedule.build(
        max_attempts=spec.max_attempts,
        initial_delay=spec.initial_delay,
        max_delay=spec.max_delay,
        backoff_factor=spec.backoff_factor,
        jitter=spec.jitter,
        exceptions=spec.exceptions,
    )
    return RetryPlan.build(
        schedule,
        on=spec.on,
        retry_on_result=spec.retry_on_result,
        total_timeout=spec.total_timeout,
        budget=None if spec.budget is None else RetryBudget(spec.budget),
    )


def settle_result(core: BreakerCore, permit: Permit, result: Any, now: float) -> None:
    """Hand a measured core the permit of an attempt that returned ``result`` at ``now``."""
    if isinstance(core, RateBreakerCore):
        core.record(permit, now, core.classify_result(result))


def settle_error(core: BreakerCore, permit: Permit, error: Exception, now: float) -> None:
    """Hand a measured core the permit of an attempt that failed with ``error`` at ``now``."""
    if isinstance(core, RateBreakerCore):
        core.record(permit, now, core.classify_error(error))


class RetryStep:
    """A service's retry plan (with its own budget, if its spec has one), bound to where its
    give-ups are published and to the service's jitter source.

    Raises:
        ConfigError: a bad value (the spec checked most already).
    """

    __slots__ = ("_bus", "_path", "_rng", "by_result", "counts_starts", "plan")

    def __init__(
        self, spec: RetrySpec, *, bus: EventBus[Any], path: str, rng: random.Random
    ) -> None:
        self.plan = retry_plan(spec)
        """The pure plan."""
        self._bus, self._path, self._rng = bus, path, rng
        # Read on every request: plain attributes, not properties (the plan never changes).
        self.by_result = self.plan.retry_on_result is not None
        """Whether replies may be retried (the spec has ``retry_on_result``)."""
        self.counts_starts = self.plan.budget is not None
        """Whether :meth:`start` counts anything (the plan has a budget)."""

    @property
    def refused(self) -> int:
        """Retries the budget refused, in total (0 without a budget)."""
        budget = self.plan.budget
        return 0 if budget is None else budget.refused

    def start(self, now: float) -> None:
        """A request's first attempt starts at ``now`` (the budget counts it)."""
        self.plan.start(now)

    def _gave_up(
        self, now: float, attempt: int, reason: GiveUpReason, error: BaseException | None
    ) -> None:
        self._bus.publish(
            RetryGaveUp(path=self._path, at=now, attempts=attempt, reason=reason, error=error)
        )

    def after_error(
        self, attempt: int, error: Exception, now: float, *, started: float, deadline: float
    ) -> float | None:
        """Seconds before the next attempt after ``error``, or ``None`` to give up (after
        publishing :class:`~supervisor.RetryGaveUp` with the reason)."""
        decision = self.plan.after_error(
            attempt,
            error,
            rng=self._rng,
            now=now,
            started=started,
            deadline=deadline,
            **testing_overrides(),
        )
        if type(decision) is GiveUpReason:
            self._gave_up(now, attempt, decision, error)
            return None
        return decision  # type: ignore[return-value]

    def after_result(
        self, attempt: int, result: Any, now: float, *, started: float, deadline: float
    ) -> tuple[float, RetryableResult] | None:
        """After an attempt returned ``result``: ``None`` to answer with it (accepted, or
        retrying stopped: then :class:`~supervisor.RetryGaveUp` is published first), else the
        delay before the next attempt and the error that stands for the result in the attempt's
        events."""
        decision = self.plan.after_result(
            attempt,
            result,
            rng=self._rng,
            now=now,
            started=started,
            deadline=deadline,
            **testing_overrides(),
        )
        if decision is None:
            return None
        if type(decision) is GiveUpReason:
            self._gave_up(now, attempt, decision, None)
            return None
        return decision, RetryableResult(result)  # type: ignore[return-value]
