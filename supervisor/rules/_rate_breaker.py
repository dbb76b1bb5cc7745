"""The breaker's options beyond API.md, as one pure core: :class:`RateBreakerCore`.

It is a :class:`~supervisor.cores.BreakerCore` (same states, permits, refusals and outbox) that
adds, each only where asked for:

* a failure-rate and slow-call-rate window (:class:`RateWindow`, resilience4j's sliding
  windows) in place of the run of consecutive failures, with half-open trials decided as a rate;
* an exponential open timeout (:class:`OpenBackoff`, Akka's ``exponentialBackoff``);
* an :class:`~supervisor.rules._classify.OutcomeClassifier` (``exclude``, an error predicate, a
  result predicate).

A plain breaker keeps the plain core, so none of this costs the default path anything.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from .._config import COUNT, DURATION, FACTOR
from .._errors import ConfigError, shown
from ._breaker import (
    _DEFAULT_FAILURE_THRESHOLD,
    _DEFAULT_HALF_OPEN_MAX_CALLS,
    _DEFAULT_SUCCESS_THRESHOLD,
    _DEFAULT_TIMEOUT,
    BreakerCore,
    ChangeReason,
    CircuitState,
    ExceptionTypes,
    Permit,
    Refusal,
)
from ._classify import Outcome, OutcomeClassifier
from ._outcome_window import OutcomeWindow, WindowStatistics

__all__ = ["OpenBackoff", "RateBreakerCore", "RateWindow", "TimedPermit"]

_TIME_WINDOW_MINIMUM_CALLS: Final = 10


def _rate(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.0 < value <= 1.0  # also false for NaN; no float() of a huge integer
    ):
        raise ConfigError(
            f"`{attribute.name}` must be a rate in (0, 1] (got {shown(value)})",
            field=attribute.name,
        )


def _optional(bound: Any) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            bound.check(attribute.name, value)

    return check


@attrs.frozen(kw_only=True)
class RateWindow:
    """Open the breaker on the failure rate (or the slow-call rate) of recent calls, instead of
    on a run of consecutive failures (resilience4j's ``slidingWindowType``, ``slidingWindowSize``,
    ``failureRateThreshold``, ``slowCallRateThreshold``, ``slowCallDurationThreshold``,
    ``minimumNumberOfCalls``).

    * The window holds the last ``size`` calls (count-based) or the calls that ended within the
      last ``duration`` seconds (time-based; half-open: a call that ended exactly ``duration``
      ago is out). Exactly one of the two is given.
    * A call is *slow* when it took longer than ``slow_call_duration`` seconds (a slow failure is
      both slow and a failure). Ignored outcomes (excluded errors, cancellations) are not
      recorded.
    * After each recorded call, once the window holds at least ``minimum_calls``, the breaker
      opens when the failure rate reaches ``failure_rate`` or the slow-call rate reaches
      ``slow_call_rate`` (``>=``).
    * HALF_OPEN: exactly ``half_open_max_calls`` trial calls are let in per half-open period (at
      most that many at once; one that is ignored gives its place back); once all of them ended,
      their failure and slow-call rates decide, with the same thresholds: OPEN again if either
      reaches its threshold, else CLOSED. ``failure_threshold`` and ``success_threshold`` do not
      apply to a breaker with a window.

    Raises:
        ConfigError: both or neither of ``size`` and ``duration``; a rate outside (0, 1]; neither
            rate given; ``slow_call_rate`` without ``slow_call_duration`` or the other way round;
            ``minimum_calls`` above ``size``.
    """

    size: int | None = attrs.field(default=None, validator=_optional(COUNT))
    """Count-based: the window is the last ``size`` calls."""
    duration: float | None = attrs.field(default=None, validator=_optional(DURATION))
    """Time-based: the window is the calls that ended within the last ``duration`` seconds."""
    failure_rate: float | None = attrs.field(default=0.5, validator=_rate)
    """The failure rate (0 to 1) that opens the breaker; ``None``: failures alone never do."""
    slow_call_rate: float | None = attrs.field(default=None, validator=_rate)
    """The slow-call rate (0 to 1) that opens the breaker; ``None``: slowness never does."""
    slow_call_duration: float | None = attrs.field(default=None, validator=_optional(DURATION))
    """Calls that take longer than this many seconds are slow."""
    minimum_calls: int | None = attrs.field(default=None, validator=_optional(COUNT))
    """Calls the window must hold before a rate may open the breaker; ``None``: ``size`` for a
    count-based window, 10 for a time-based one."""

    def __attrs_post_init__(self) -> None:
        if (self.size is None) == (self.duration is None):
            raise ConfigError(
                "a rate window needs exactly one of `size` and `duration` "
                f"(got size={shown(self.size)}, duration={shown(self.duration)})",
                field="size",
            )
        if self.failure_rate is None and self.slow_call_rate is None:
            raise ConfigError(
                "a rate window needs `failure_rate` or `slow_call_rate` (got none)",
                field="failure_rate",
            )
        if (self.slow_call_rate is None) != (self.slow_call_duration is None):
            raise ConfigError(
                "`slow_call_rate` and `slow_call_duration` go together (got "
                f"slow_call_rate={shown(self.slow_call_rate)}, "
                f"slow_call_duration={shown(self.slow_call_duration)})",
                field="slow_call_duration",
            )
        if (
            self.size is not None
            and self.minimum_calls is not None
            and self.minimum_calls > self.size
        ):
            raise ConfigError(
                f"`minimum_calls` must be at most `size` ({shown(self.size)}) "
                f"(got {shown(self.minimum_calls)})",
                field="minimum_calls",
            )

    @property
    def calls_needed(self) -> int:
        """``minimum_calls`` with its default applied."""
        if self.minimum_calls is not None:
            return self.minimum_calls
        return self.size if self.size is not None else _TIME_WINDOW_MINIMUM_CALLS

    def trips(self, failure_rate: float, slow_call_rate: float) -> ChangeReason | None:
        """Which threshold the two rates reach (the failure rate is looked at first), if any."""
        if self.failure_rate is not None and failure_rate >= self.failure_rate:
            return ChangeReason.FAILURE_RATE
        if self.slow_call_rate is not None and slow_call_rate >= self.slow_call_rate:
            return ChangeReason.SLOW_CALL_RATE
        return None


@attrs.frozen(kw_only=True)
class OpenBackoff:
    """Each reopening after a failed half-open trial waits longer (Akka's
    ``withExponentialBackoff``, resilience4j's ``IntervalFunction``).

    The open timeout after the ``n``-th failed trial in a row (counted since the breaker last
    closed) is ``min(max_timeout, timeout * factor ** n)``; the first opening waits ``timeout``.
    Closing (or ``reset()``) starts the count again.

    Raises:
        ConfigError: ``factor`` < 1 or ``max_timeout`` not a number > 0.
    """

    factor: float = attrs.field(default=2.0, validator=lambda _s, a, v: FACTOR.check(a.name, v))
    """Growth of the open timeout per failed trial (>= 1)."""
    max_timeout: float = attrs.field(
        default=600.0, validator=lambda _s, a, v: DURATION.check(a.name, v)
    )
    """The longest open timeout, in seconds."""

    def timeout_after(self, timeout: float, reopens: int) -> float:
        """The open timeout after ``reopens`` failed trials in a row."""
        try:
            grown = timeout * self.factor**reopens
        except OverflowError:
            return self.max_timeout
        return min(self.max_timeout, grown)


class TimedPermit(Permit):
    """A :class:`~supervisor.cores.Permit` for one call, stamped with when it was given (the
    start of the call, for the slow-call threshold)."""

    __slots__ = ("started",)

    def __init__(self, epoch: int, trial: bool, started: float) -> None:
        # Set here rather than through Permit.__init__: one call less on every call's way in.
        self.epoch = epoch
        self.trial = trial
        self.started = started
        """The time the permit was given."""


class RateBreakerCore(BreakerCore):
    """A :class:`~supervisor.cores.BreakerCore` with the options of :class:`RateWindow`,
    :class:`OpenBackoff` and :class:`~supervisor.rules._classify.OutcomeClassifier`.

    Protocol: every call asks :meth:`try_acquire` and hands its permit back once with
    :meth:`record`, passing the :class:`~supervisor.rules._classify.Outcome` that
    :meth:`classify_error` or :meth:`classify_result` gave. With a ``window`` each permit is a
    :class:`TimedPermit` (each call needs its start time) and there is no :attr:`free_permit`.
    Without one the core counts consecutive failures exactly as the plain core does, and while
    CLOSED :attr:`free_permit` may be used without asking (a success may then also be handed
    back with ``on_success(permit)``, with no time).

    Raises:
        ConfigError: a bad count or duration (as the plain core), or ``open_backoff.max_timeout``
            below ``timeout``.
        TypeError: ``window``, ``open_backoff`` or ``classifier`` of the wrong type.
    """

    __slots__ = (
        "_calls_needed",
        "_reopens",
        "_trial_ended",
        "_trial_failures",
        "_trial_slow",
        "classifier",
        "open_backoff",
        "rate",
        "slow_calls",
        "window",
    )

    def __init__(
        self,
        *,
        name: str,
        failure_threshold: int = _DEFAULT_FAILURE_THRESHOLD,
        success_threshold: int = _DEFAULT_SUCCESS_THRESHOLD,
        timeout: float = _DEFAULT_TIMEOUT,
        half_open_max_calls: int = _DEFAULT_HALF_OPEN_MAX_CALLS,
        expected_exception: ExceptionTypes = Exception,
        window: RateWindow | None = None,
        open_backoff: OpenBackoff | None = None,
        classifier: OutcomeClassifier | None = None,
    ) -> None:
        for param, value, kind in (
            ("window", window, RateWindow),
            ("open_backoff", open_backoff, OpenBackoff),
            ("classifier", classifier, OutcomeClassifier),
        ):
            if value is not None and not isinstance(value, kind):
                raise TypeError(f"`{param}` must be a {kind.__name__} or None (got {shown(value)})")
        self.rate = window
        """The rate settings, or ``None`` (consecutive failures decide)."""
        self._calls_needed = 0 if window is None else window.calls_needed
        self.window = (
            None if window is None else OutcomeWindow(size=window.size, duration=window.duration)
        )
        """The outcomes of recent calls while CLOSED, or ``None``."""
        self.open_backoff = open_backoff
        """The open timeout's growth per failed trial, or ``None`` (always ``timeout``)."""
        self._reopens = 0
        self._trial_ended = self._trial_failures = self._trial_slow = 0
        self.slow_calls = 0
        """Calls that took longer than the slow-call duration, in total."""
        super().__init__(
            name=name,
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            timeout=timeout,
            half_open_max_calls=half_open_max_calls,
            expected_exception=expected_exception,
        )
        self.classifier = classifier or OutcomeClassifier(
            expected_exception=self.expected_exception
        )
        """How outcomes are counted."""
        if open_backoff is not None and open_backoff.max_timeout < self.timeout:
            raise ConfigError(
                f"`max_timeout` must be at least `timeout` ({self.timeout}) "
                f"(got {shown(open_backoff.max_timeout)})",
                field="max_timeout",
            )
        if window is not None:
            self.free_permit = None

    # -- inspection ---------------------------------------------------------------------------

    @property
    def open_timeout(self) -> float:
        """The open timeout the next opening would wait (grows after failed trials)."""
        backoff = self.open_backoff
        return (
            self.timeout if backoff is None else backoff.timeout_after(self.timeout, self._reopens)
        )

    def window_statistics(self, now: float) -> WindowStatistics | None:
        """The window at ``now`` (empty while OPEN or HALF_OPEN), or ``None`` without one."""
        window, rate = self.window, self.rate
        if window is None or rate is None:
            return None
        return window.statistics(now, rate.calls_needed)

    def classify_error(self, error: BaseException) -> Outcome:
        """What a call that raised ``error`` counts as (see the classifier)."""
        return self.classifier.of_error(error)

    def classify_result(self, result: Any) -> Outcome:
        """What a call that returned ``result`` counts as (see the classifier)."""
        return self.classifier.of_result(result)

    def is_counted(self, error: BaseException) -> bool:
        """Whether ``error`` counts as a failure (the classifier's verdict)."""
        return self.classifier.of_error(error) is Outcome.FAILURE

    # -- transitions --------------------------------------------------------------------------

    def _move(self, new: CircuitState, at: float, reason: ChangeReason) -> None:
        reopen = self._state is CircuitState.HALF_OPEN and new is CircuitState.OPEN
        super()._move(new, at, reason)
        if self.window is not None:
            self.free_permit = None
        self._trial_ended = self._trial_failures = self._trial_slow = 0
        if self.window is not None:
            self.window.clear()
        if new is CircuitState.CLOSED:
            self._reopens = 0
        elif new is CircuitState.OPEN and self.open_backoff is not None and not self._forced:
            if reopen:
                self._reopens += 1
            self._half_open_at = at + self.open_timeout

    def try_acquire(self, now: float) -> Permit | Refusal:
        """As the plain core, but every permit is a fresh :class:`TimedPermit` stamped ``now``;
        with a window, a half-open period lets in ``half_open_max_calls`` trials in all."""
        if self._state is CircuitState.CLOSED:  # the common case, without the plain core's call
            return self.permit if self.rate is None else TimedPermit(self._epoch, False, now)
        decision = super().try_acquire(now)
        if not isinstance(decision, Permit):
            return decision
        trial = decision.trial
        if (
            trial
            and self.rate is not None
            and self._trials_in_flight + self._trial_ended > self.half_open_max_calls
        ):
            self._trials_in_flight -= 1
            self.refused += 1
            return Refusal(0.0)
        return TimedPermit(decision.epoch, trial, now)

    def record(self, permit: Permit, now: float, outcome: Outcome) -> None:
        """Hand back ``permit`` for a call that ended at ``now`` with ``outcome``.

        IGNORED gives the trial slot back and counts nothing. Without a window, SUCCESS and
        FAILURE act exactly as the plain core's ``on_success`` / ``on_failure``. With one, the
        call (failed or not, slow or not) is added to the window while CLOSED, or to the trials'
        tally while HALF_OPEN, and the thresholds are checked (see :class:`RateWindow`). A stale
        permit counts nothing.
        """
        if outcome is Outcome.IGNORED:
            self.release(permit)
            return
        failed = outcome is Outcome.FAILURE
        rate = self.rate
        if rate is None:
            if failed:
                self.on_failure(permit, now)
            else:
                self.on_success(permit, now)
            return
        limit = rate.slow_call_duration
        started = getattr(permit, "started", now)
        slow = limit is not None and now - started > limit
        if failed:
            self.failures += 1
        else:
            self.successes += 1
        if slow:
            self.slow_calls += 1
        if permit.epoch != self._epoch:
            return
        self._failures = self._failures + 1 if failed else 0
        if permit.trial:
            self._record_trial(rate, now, failed=failed, slow=slow)
            return
        window = self.window
        if window is None:  # pragma: no cover - a rate always has a window
            return
        window.record(now, failed=failed, slow=slow)
        calls, needed = window.calls, self._calls_needed
        # In a count window a quick success cannot raise either rate (the call it pushes out
        # was already counted in the last check): it can trip only by bringing the window to
        # `minimum_calls`. In a time window, calls that left it may have raised the rates.
        if (failed or slow or calls == needed or window.size is None) and calls >= needed:
            tripped = rate.trips(window.failure_rate, window.slow_call_rate)
            if tripped is not None:
                self._move(CircuitState.OPEN, now, tripped)

    def _record_trial(self, rate: RateWindow, now: float, *, failed: bool, slow: bool) -> None:
        # A half-open trial ended: once all of the period's trials have, their rates decide.
        self._trials_in_flight -= 1
        self._trial_ended += 1
        self._trial_failures += failed
        self._trial_slow += slow
        if not failed:
            self._trial_successes += 1
        ended = self._trial_ended
        if ended >= self.half_open_max_calls:
            tripped = rate.trips(self._trial_failures / ended, self._trial_slow / ended)
            if tripped is None:
                self._move(CircuitState.CLOSED, now, ChangeReason.TRIALS_SUCCEEDED)
            else:
                self._move(CircuitState.OPEN, now, ChangeReason.TRIAL_FAILED)

    def __repr__(self) -> str:
        forced = " forced" if self._forced else ""
        window = self.window
        seen = "" if window is None else f", {window.calls} calls in window"
        return (
            f"<RateBreakerCore {self.name!r} {self._state.value}{forced}, "
            f"{self._failures} failures in a row{seen}>"
        )
