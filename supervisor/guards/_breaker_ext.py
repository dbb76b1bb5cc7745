"""The breaker shell's measured guard: how :class:`~supervisor.CircuitBreaker` drives a
:class:`~supervisor.rules._rate_breaker.RateBreakerCore` (a failure-rate window, an exponential
open timeout, or outcome classifiers).

Every call reads the clock when it starts and when it ends (for the window and the slow-call
threshold) and classifies its error or its result. A breaker without these options never
comes here: its guard stays the plain one, with no clock read on a closed success.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._errors import CircuitOpenError
from ..rules._breaker import BreakerCore, Permit, Refusal
from ..rules._classify import Outcome, OutcomeClassifier
from ..rules._rate_breaker import OpenBackoff, RateBreakerCore, RateWindow

if TYPE_CHECKING:
    from ._breaker import CircuitBreaker

__all__ = ["MeasuredGuard", "measured_core"]


class MeasuredGuard:
    """Runs calls through one breaker's :class:`RateBreakerCore`.

    A classifier predicate that raises gives the call's permit back (nothing is counted) and
    its error propagates (chained to the call's own error, if any).
    """

    __slots__ = ("_breaker", "_core", "_timed")

    def __init__(self, breaker: CircuitBreaker, core: RateBreakerCore) -> None:
        self._breaker = breaker
        self._core = core
        # Without a window only failures and trials need the time (as in the plain guard).
        self._timed = core.window is not None

    def acquire(self) -> Permit:
        """A permit stamped with the start time, or :class:`CircuitOpenError`."""
        core = self._core
        decision = core.try_acquire(self._breaker._now())
        if core.has_changes:
            self._breaker._publish()
        if type(decision) is Refusal:
            raise CircuitOpenError(core.name, decision.retry_after)
        return decision  # type: ignore[return-value]

    def _record(self, permit: Permit, outcome: Outcome) -> None:
        core = self._core
        core.record(permit, self._breaker._now(), outcome)
        if core.has_changes:
            self._breaker._publish()

    def settle(self, permit: Permit, error: BaseException | None) -> None:
        """Hand back the permit of a call (or ``with`` body) that raised ``error`` (``None``: it
        ended without one, a success)."""
        if error is None:
            self._record(permit, Outcome.SUCCESS)
            return
        try:
            outcome = self._core.classify_error(error)
        except BaseException:
            self._core.release(permit)
            raise
        self._record(permit, outcome)

    def settle_result(self, permit: Permit, result: Any) -> None:
        """Hand back the permit of a call that returned ``result``."""
        core = self._core
        try:
            outcome = core.classify_result(result)
        except BaseException:
            core.release(permit)
            raise
        if outcome is Outcome.SUCCESS and not self._timed and not permit.trial:
            core.on_success(permit)
            return
        self._record(permit, outcome)

    async def guard_async(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run the coroutine function ``call`` through the breaker."""
        permit = self._core.free_permit or self.acquire()
        try:
            result = await call()
        except BaseException as exc:
            self.settle(permit, exc)
            raise
        self.settle_result(permit, result)
        return result

    def guard_sync(self, call: Callable[[], Any]) -> Any:
        """Run the plain function ``call`` through the breaker."""
        permit = self._core.free_permit or self.acquire()
        try:
            result = call()
        except BaseException as exc:
            self.settle(permit, exc)
            raise
        self.settle_result(permit, result)
        return result


def measured_core(
    plain: BreakerCore,
    *,
    window: RateWindow | None,
    open_backoff: OpenBackoff | None,
    exclude: object,
    is_failure: object,
    is_failure_result: object,
) -> RateBreakerCore | None:
    """The :class:`RateBreakerCore` with ``plain``'s settings and these options, or ``None``
    when none of them is given (the plain core then stays).

    Raises:
        ConfigError: a bad option (see :class:`RateBreakerCore`, :class:`OutcomeClassifier`).
        TypeError: ``window`` or ``open_backoff`` of the wrong type.
    """
    if (
        window is None
        and open_backoff is None
        and (exclude is None or (isinstance(exclude, tuple | list) and not exclude))
        and is_failure is None
        and is_failure_result is None
    ):
        return None
    return RateBreakerCore(
        name=plain.name,
        failure_threshold=plain.failure_threshold,
        success_threshold=plain.success_threshold,
        timeout=plain.timeout,
        half_open_max_calls=plain.half_open_max_calls,
        expected_exception=plain.expected_exception,
        window=window,
        open_backoff=open_backoff,
        classifier=OutcomeClassifier.build(
            expected_exception=plain.expected_exception,
            exclude=() if exclude is None else exclude,
            is_failure=is_failure,
            is_failure_result=is_failure_result,
        ),
    )
