"""The circuit breaker's pure state machine (:class:`BreakerCore`), its states, its config and
the frozen values it hands out.

The core never reads a clock and never calls trio: every method that can change state takes the
current time as an argument and records the state changes it causes in an outbox that the owner
drains with :meth:`BreakerCore.take_changes`. Both shells (the decorator face in
``supervisor/guards`` and the guarded services of a tree) drive this same object.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Final

import attrs

from .._config import COUNT, DURATION, UNSET
from .._errors import ConfigError, shown
from ._outcome_window import WindowStatistics

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]

_ENV_FAILURE_THRESHOLD: Final = "CIRCUIT_BREAKER_FAILURE_THRESHOLD"
_ENV_SUCCESS_THRESHOLD: Final = "CIRCUIT_BREAKER_SUCCESS_THRESHOLD"
_ENV_TIMEOUT: Final = "CIRCUIT_BREAKER_TIMEOUT"
_ENV_HALF_OPEN_REQUESTS: Final = "CIRCUIT_BREAKER_HALF_OPEN_REQUESTS"

_DEFAULT_FAILURE_THRESHOLD: Final = 5
_DEFAULT_SUCCESS_THRESHOLD: Final = 2
_DEFAULT_TIMEOUT: Final = 60.0
_DEFAULT_HALF_OPEN_MAX_CALLS: Final = 3


class CircuitState(enum.Enum):
    """The state of a circuit breaker."""

    CLOSED = "closed"
    """Calls run; counted failures in a row are tallied."""
    OPEN = "open"
    """Calls are refused at once with :class:`~supervisor.CircuitOpenError`."""
    HALF_OPEN = "half_open"
    """A limited number of trial calls run; their outcome closes or reopens the breaker."""


# Read on every refusal: module globals, since reading a member off its enum class is an
# unspecialised attribute lookup in CPython 3.11 (about 85 ns, against 10 for a global).
_OPEN: Final = CircuitState.OPEN
_HALF_OPEN: Final = CircuitState.HALF_OPEN


class ChangeReason(enum.Enum):
    """Why a breaker changed state."""

    FAILURE_THRESHOLD = "failure_threshold"
    """CLOSED -> OPEN: the run of counted failures reached ``failure_threshold``."""
    TIMEOUT_ELAPSED = "timeout_elapsed"
    """OPEN -> HALF_OPEN: ``timeout`` seconds passed since the breaker opened."""
    TRIAL_FAILED = "trial_failed"
    """HALF_OPEN -> OPEN: a trial call failed."""
    TRIALS_SUCCEEDED = "trials_succeeded"
    """HALF_OPEN -> CLOSED: ``success_threshold`` trial calls succeeded."""
    RESET = "reset"
    """Any -> CLOSED: :meth:`CircuitBreaker.reset` was called."""
    FORCED_OPEN = "forced_open"
    """Any -> OPEN: :meth:`CircuitBreaker.force_open` was called."""
    FAILURE_RATE = "failure_rate"
    """CLOSED -> OPEN: the failure rate of a breaker's window reached its threshold."""
    SLOW_CALL_RATE = "slow_call_rate"
    """CLOSED -> OPEN: the slow-call rate of a breaker's window reached its threshold."""


@attrs.frozen(kw_only=True)
class CircuitStateChange:
    """One state change of a breaker, handed to every listener.

    Changes are published in the order they happen; the ``at`` of consecutive changes of one breaker
    never decreases.
    """

    name: str
    """The breaker's name."""
    old_state: CircuitState
    """The state before the change."""
    new_state: CircuitState
    """The state after the change."""
    at: float
    """The trio time of the change. For OPEN -> HALF_OPEN it is the moment the timeout ran out
    (``opened_at + timeout``), even when the change is noticed later."""
    reason: ChangeReason
    """Why the change happened."""


def _check_exception_types(param: str, value: object) -> tuple[type[BaseException], ...]:
    """``value`` as a tuple of exception classes; :class:`ConfigError` naming ``param`` if it is not
    an exception class or a tuple of them."""
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ConfigError(
                f"`{param}` must be an exception class or a tuple of them (got {shown(value)})"
            )
    return items


def _env_failure_threshold() -> int:
    return COUNT.resolve_int(
        "failure_threshold", UNSET, env=_ENV_FAILURE_THRESHOLD, default=_DEFAULT_FAILURE_THRESHOLD
    )


def _env_success_threshold() -> int:
    return COUNT.resolve_int(
        "success_threshold", UNSET, env=_ENV_SUCCESS_THRESHOLD, default=_DEFAULT_SUCCESS_THRESHOLD
    )


def _env_timeout() -> float:
    return DURATION.resolve("timeout", UNSET, env=_ENV_TIMEOUT, default=_DEFAULT_TIMEOUT)


def _validate_count(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    COUNT.check(attribute.name, value)


def _validate_duration(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    DURATION.check(attribute.name, value)


def _validate_exceptions(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_exception_types(attribute.name, value)


@attrs.frozen(kw_only=True)
class CircuitBreakerConfig:
    """The settings of a breaker, as one value (e.g. loaded from a file and shared by several).

    A field not given takes its value from its environment variable, read when the config is
    created, else from the built-in default. Bad values raise
    :class:`~supervisor.ConfigError` naming the field (or the variable) and the value.
    """

    failure_threshold: int = attrs.field(factory=_env_failure_threshold, validator=_validate_count)
    """Counted failures in a row that open a closed breaker (``>= 1``; env
    ``CIRCUIT_BREAKER_FAILURE_THRESHOLD``; default 5)."""
    success_threshold: int = attrs.field(factory=_env_success_threshold, validator=_validate_count)
    """Successful trial calls that close a half-open breaker (``>= 1``; env
    ``CIRCUIT_BREAKER_SUCCESS_THRESHOLD``; default 2)."""
    timeout: float = attrs.field(factory=_env_timeout, validator=_validate_duration)
    """Seconds from opening until the breaker is half-open (``> 0``; env
    ``CIRCUIT_BREAKER_TIMEOUT``; default 60.0)."""
    expected_exception: ExceptionTypes = attrs.field(
        default=Exception, validator=_validate_exceptions
    )
    """The exception class(es) that count as failures (default ``Exception``)."""


@attrs.frozen(kw_only=True)
class CircuitBreakerStatistics:
    """A snapshot of a breaker (see :meth:`CircuitBreaker.statistics`)."""

    name: str
    """The breaker's name."""
    state: CircuitState
    """The state at the moment of the snapshot."""
    forced_open: bool
    """Whether the breaker is held open by ``force_open()``."""
    failure_count: int
    """The current run of consecutive counted failures."""
    trial_successes: int
    """Successful trial calls since the breaker last turned half-open."""
    trials_in_flight: int
    """Trial calls running now (at most ``half_open_max_calls``)."""
    opened_at: float | None
    """Trio time the breaker last opened, or ``None`` if it is not open or half-open."""
    successes: int
    """Calls that succeeded, in total."""
    failures: int
    """Calls that failed with a counted exception, in total."""
    ignored: int
    """Calls that ended with an uncounted exception or were cancelled, in total."""
    refused: int
    """Calls refused with :class:`~supervisor.CircuitOpenError`, in total."""
    window: WindowStatistics | None = None
    """The failure-rate window (calls, failures, slow calls and their rates), for a breaker
    with a ``window``; else ``None``."""


class Permit:
    """Leave to run one call, given by :meth:`BreakerCore.try_acquire`.

    Every permit must be handed back exactly once, through :meth:`BreakerCore.on_success`,
    :meth:`BreakerCore.on_failure` or :meth:`BreakerCore.release`. A permit outlives state changes:
    one handed back after the breaker changed state (its ``epoch`` is stale) counts nothing.
    """

    __slots__ = ("epoch", "trial")

    def __init__(self, epoch: int, trial: bool) -> None:
        self.epoch = epoch
        """The core's epoch (state period) the permit was given in."""
        self.trial = trial
        """Whether the permit holds one of the half-open trial slots."""

    def __repr__(self) -> str:
        return f"<Permit epoch={self.epoch}{' trial' if self.trial else ''}>"


class Refusal:
    """A refused call, given by :meth:`BreakerCore.try_acquire`."""

    __slots__ = ("retry_after",)

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        """Seconds until a trial call may be allowed: the rest of the open timeout, ``0.0`` when
        half-open with every trial slot taken, ``inf`` when forced open."""

    def __repr__(self) -> str:
        return f"<Refusal retry_after={self.retry_after}>"


class BreakerCore:
    """The pure state machine of a circuit breaker.

    No clock is read and trio is never called: ``now`` is passed in by the owner, and the state
    changes a method causes are appended, in order, to an outbox read with :meth:`take_changes`.

    Protocol: ask :meth:`try_acquire` before each call; a :class:`Permit` allows it, a
    :class:`Refusal` refuses it. Hand the permit back once with :meth:`on_success` (the call
    succeeded), :meth:`on_failure` (it raised a counted exception, see :meth:`is_counted`) or
    :meth:`release` (it raised something else, or was cancelled: nothing is counted). While the core
    is CLOSED, :attr:`free_permit` is the permit to use without any clock read.

    Transitions: CLOSED -> OPEN when the run of counted failures reaches ``failure_threshold``;
    OPEN -> HALF_OPEN exactly ``timeout`` after opening (noticed lazily, by :meth:`advance` or any
    method that takes ``now``, and stamped with the time it became due); HALF_OPEN -> OPEN on a
    failed trial (the timer starts anew); HALF_OPEN -> CLOSED after ``success_threshold``
    successful trials. :meth:`force_open` holds the core OPEN until :meth:`reset`.
    """

    __slots__ = (
        "_changes",
        "_epoch",
        "_failures",
        "_forced",
        "_half_open_at",
        "_opened_at",
        "_state",
        "_trial_successes",
        "_trials_in_flight",
        "expected_exception",
        "failure_threshold",
        "failures",
        "free_permit",
        "half_open_max_calls",
        "ignored",
        "name",
        "permit",
        "refused",
        "success_threshold",
        "successes",
        "timeout",
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
    ) -> None:
        """Make a closed core.

        Raises:
            ConfigError: a count is not an integer >= 1, ``timeout`` is not a number > 0, or
                ``expected_exception`` is not an exception class or a tuple of them.
        """
        self.name = name
        self.failure_threshold = int(COUNT.check("failure_threshold", failure_threshold))
        self.success_threshold = int(COUNT.check("success_threshold", success_threshold))
        self.timeout = float(DURATION.check("timeout", timeout))
        self.half_open_max_calls = int(COUNT.check("half_open_max_calls", half_open_max_calls))
        self.expected_exception = _check_exception_types("expected_exception", expected_exception)
        self._changes: list[CircuitStateChange] = []
        self._state = CircuitState.CLOSED
        self._forced = False
        self._epoch = 0
        self._failures = 0
        self._trial_successes = 0
        self._trials_in_flight = 0
        self._opened_at: float | None = None
        self._half_open_at = math.inf
        self.permit = Permit(0, trial=False)
        """The permit of the current epoch (a trial permit while HALF_OPEN)."""
        self.free_permit: Permit | None = self.permit
        """The permit every call may use without asking, while CLOSED; ``None`` otherwise."""
        self.successes = 0
        self.failures = 0
        self.ignored = 0
        self.refused = 0

    # -- inspection ---------------------------------------------------------------------------

    @property
    def failure_count(self) -> int:
        """The current run of consecutive counted failures (a success resets it)."""
        return self._failures

    @property
    def forced_open(self) -> bool:
        """Whether :meth:`force_open` holds the core open."""
        return self._forced

    @property
    def opened_at(self) -> float | None:
        """When the core last opened, while it is OPEN or HALF_OPEN; else ``None``."""
        return self._opened_at

    @property
    def half_open_at(self) -> float:
        """When the last open period ends (or ended, while HALF_OPEN): the opening time plus its
        open timeout; ``inf`` while CLOSED or forced open."""
        return self._half_open_at

    @property
    def trials_in_flight(self) -> int:
        """Trial slots taken now."""
        return self._trials_in_flight

    @property
    def trial_successes(self) -> int:
        """Successful trials since the core last turned half-open."""
        return self._trial_successes

    def state_at(self, now: float) -> CircuitState:
        """The state at ``now`` (applies a due OPEN -> HALF_OPEN change first, see
        :meth:`advance`)."""
        if self._state is CircuitState.OPEN:
            self.advance(now)
        return self._state

    def is_counted(self, error: BaseException) -> bool:
        """Whether ``error`` counts as a failure: an :class:`Exception` that is an instance of
        ``expected_exception``. Cancellation and other non-``Exception`` s never count."""
        return isinstance(error, Exception) and isinstance(error, self.expected_exception)

    def retry_after(self, now: float) -> float:
        """Seconds from ``now`` until a trial call may be allowed: 0 when CLOSED or HALF_OPEN,
        ``inf`` when forced open."""
        if self._state is not CircuitState.OPEN:
            return 0.0
        left = self._half_open_at - now
        return left if left > 0.0 else 0.0

    def take_changes(self) -> list[CircuitStateChange]:
        """Return the state changes recorded since the last call, oldest first, and forget them."""
        changes = self._changes
        self._changes = []
        return changes

    @property
    def has_changes(self) -> bool:
        """Whether state changes wait in the outbox."""
        return bool(self._changes)

    # -- transitions --------------------------------------------------------------------------

    def _move(self, new: CircuitState, at: float, reason: ChangeReason) -> None:
        old = self._state
        self._state = new
        self._epoch += 1
        self._trials_in_flight = 0
        self._trial_successes = 0
        if new is CircuitState.CLOSED:
            self._failures = 0
            self._opened_at = None
            self._half_open_at = math.inf
            self.permit = self.free_permit = Permit(self._epoch, trial=False)
        elif new is CircuitState.OPEN:
            self._opened_at = at
            self._half_open_at = math.inf if self._forced else at + self.timeout
            self.permit = Permit(self._epoch, trial=False)
            self.free_permit = None
        else:
            self.permit = Permit(self._epoch, trial=True)
            self.free_permit = None
        if old is not new:
            self._changes.append(
                CircuitStateChange(
                    name=self.name, old_state=old, new_state=new, at=at, reason=reason
                )
            )

    def advance(self, now: float) -> None:
        """Apply the OPEN -> HALF_OPEN change if it is due at ``now`` (from exactly ``timeout``
        after opening), stamped with the time it became due. Never half-opens a forced core."""
        if self._state is CircuitState.OPEN and now >= self._half_open_at:
            self._move(CircuitState.HALF_OPEN, self._half_open_at, ChangeReason.TIMEOUT_ELAPSED)

    def try_acquire(self, now: float) -> Permit | Refusal:
        """Ask leave to run one call at ``now``.

        Returns :attr:`free_permit` while CLOSED; while HALF_OPEN a trial permit if fewer than
        ``half_open_max_calls`` trials run, else a :class:`Refusal` with ``retry_after=0.0``; while
        OPEN a :class:`Refusal` with the seconds left until half-open (``inf`` if forced).
        """
        state = self._state
        if state is CircuitState.CLOSED:
            return self.permit
        if state is CircuitState.OPEN:
            if now < self._half_open_at:  # always, while forced: _half_open_at is inf
                self.refused += 1
                return Refusal(self._half_open_at - now)
            self.advance(now)
        if self._trials_in_flight >= self.half_open_max_calls:
            self.refused += 1
            return Refusal(0.0)
        self._trials_in_flight += 1
        return self.permit

    def refusal(self, now: float) -> float | None:
        """The refusing half of :meth:`try_acquire`, without allocating: if a call at ``now`` is
        refused (OPEN before its half-open time, or HALF_OPEN with every trial slot taken), count
        the refusal and return its ``retry_after``; else return ``None`` and change nothing (ask
        :meth:`try_acquire` for the permit)."""
        state = self._state
        if state is _OPEN:
            half_open_at = self._half_open_at
            if now < half_open_at:
                self.refused += 1
                return half_open_at - now
        elif state is _HALF_OPEN and (self._trials_in_flight >= self.half_open_max_calls):
            self.refused += 1
            return 0.0
        return None

    def on_success(self, permit: Permit, now: float | None = None) -> None:
        """The call allowed by ``permit`` succeeded.

        A current permit resets the failure run; a trial one also gives its slot back and counts
        towards ``success_threshold`` (reaching it closes the core at ``now``). A stale permit
        counts nothing. ``now`` may be omitted for a permit that is not a trial (such a success
        never changes state).

        Raises:
            ValueError: ``now`` is omitted for a trial permit.
        """
        self.successes += 1
        if permit.epoch != self._epoch:
            return
        self._failures = 0
        if permit.trial:
            if now is None:
                raise ValueError("`now` is needed to hand back a trial permit (got None)")
            self._trials_in_flight -= 1
            self._trial_successes += 1
            if self._trial_successes >= self.success_threshold:
                self._move(CircuitState.CLOSED, now, ChangeReason.TRIALS_SUCCEEDED)

    def on_failure(self, permit: Permit, now: float) -> None:
        """The call allowed by ``permit`` raised a counted exception at ``now``.

        A current permit adds one to the failure run (and gives back its trial slot); the core
        opens at ``now`` when the run reaches ``failure_threshold`` while CLOSED, or at once for a
        trial. A stale permit counts nothing.
        """
        self.failures += 1
        if permit.epoch != self._epoch:
            return
        self._failures += 1
        if permit.trial:
            self._trials_in_flight -= 1
            self._move(CircuitState.OPEN, now, ChangeReason.TRIAL_FAILED)
        elif self._failures >= self.failure_threshold:
            self._move(CircuitState.OPEN, now, ChangeReason.FAILURE_THRESHOLD)

    def release(self, permit: Permit) -> None:
        """The call allowed by ``permit`` ended with an uncounted exception or was cancelled: its
        trial slot (if any) is given back and nothing is counted."""
        self.ignored += 1
        if permit.trial and permit.epoch == self._epoch:
            self._trials_in_flight -= 1

    def reset(self, now: float) -> None:
        """Go to CLOSED at ``now`` with every count cleared and any forced hold lifted."""
        self.advance(now)
        self._forced = False
        self._move(CircuitState.CLOSED, now, ChangeReason.RESET)

    def force_open(self, now: float) -> None:
        """Go to OPEN at ``now`` and stay there, refusing every call, until :meth:`reset`.

        Permits given before are stale from now on. The failure run is kept."""
        self.advance(now)
        self._forced = True
        self._move(CircuitState.OPEN, now, ChangeReason.FORCED_OPEN)

    def __repr__(self) -> str:
        forced = " forced" if self._forced else ""
        return (
            f"<BreakerCore {self.name!r} {self._state.value}{forced}, "
            f"{self._failures}/{self.failure_threshold} failures>"
        )
