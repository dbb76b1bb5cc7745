"""The circuit breaker: a pure state machine (:class:`BreakerCore`) and its thin shell
(:class:`CircuitBreaker`, :func:`circuit_breaker`).

The core never reads a clock and never calls trio: every method that can change state takes the
current time as an argument and records the state changes it causes in an outbox that the owner
drains with :meth:`BreakerCore.take_changes`. The shell reads ``trio.current_time()`` only where a
decision needs it, so a call through a closed breaker costs a few attribute reads and no checkpoint.
The supervision tree drives the very same core from its actors.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar, overload

import attrs
import trio

from ._config import COUNT, DURATION, UNSET, Unset
from ._decorate import decorate, is_async_callable, qualname_of
from ._errors import CircuitOpenError, ConfigError
from ._listeners import Listeners

__all__ = [
    "BreakerCore",
    "ChangeReason",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerStatistics",
    "CircuitState",
    "CircuitStateChange",
    "Permit",
    "Refusal",
    "circuit_breaker",
]

P = ParamSpec("P")
R = TypeVar("R")

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
                f"`{param}` must be an exception class or a tuple of them (got {value!r})"
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


def _outside_trio_clock() -> float:
    # Only used when a breaker guards plain functions called outside trio: there is no trio
    # clock then, and a breaker cannot half-open without some monotonic time.
    return time.monotonic()


def _entry_key() -> object:
    try:
        return trio.lowlevel.current_task()
    except RuntimeError:
        return threading.get_ident()


class CircuitBreaker:
    """A circuit breaker around calls to one dependency.

    * CLOSED: a counted failure adds one to the run of consecutive failures, a success resets it to
      0; when the run reaches ``failure_threshold`` the breaker opens.
    * OPEN: calls are refused at once with :class:`~supervisor.CircuitOpenError` (its
      ``retry_after`` is the time left until half-open); the guarded function is not invoked.
      From exactly ``timeout`` seconds after opening the breaker is HALF_OPEN (``state`` says so
      with no call needed).
    * HALF_OPEN: at most ``half_open_max_calls`` trial calls run at once; others are refused with
      ``CircuitOpenError`` (``retry_after=0``). A counted failure reopens the breaker (its timer
      starts anew); ``success_threshold`` successful trials close it, with every count reset.

    A counted failure is an :class:`Exception` that is an instance of ``expected_exception``; any
    other exception propagates unchanged and counts as neither failure nor success. Cancellation
    (and any ``BaseException`` that is not an ``Exception``) counts as nothing and propagates.
    Every trial slot taken is given back, whatever the outcome. An outcome that arrives after the
    breaker changed state since its call was let in (e.g. the fourth of four concurrent failures
    with ``failure_threshold=3``) counts nothing.

    Forms: ``@breaker`` on an ``async def`` or plain function (one breaker for every caller);
    ``async with breaker:`` and ``with breaker:``; ``await breaker.call(fn, *args, **kwargs)``.
    None of them adds a checkpoint or a cancel scope of its own.

    Settings: explicit argument > ``config`` > environment variable (read here, at creation) >
    built-in default. ``failure_threshold`` (``CIRCUIT_BREAKER_FAILURE_THRESHOLD``, 5),
    ``success_threshold`` (``CIRCUIT_BREAKER_SUCCESS_THRESHOLD``, 2), ``timeout`` in seconds
    (``CIRCUIT_BREAKER_TIMEOUT``, 60.0), ``half_open_max_calls``
    (``CIRCUIT_BREAKER_HALF_OPEN_REQUESTS``, 3), ``expected_exception`` (``Exception``).

    Time: trio's clock (``trio.current_time()``) inside ``trio.run``. A breaker that guards plain
    functions called outside trio uses ``clock`` (default: the monotonic clock of :mod:`time`);
    use one breaker either inside trio or outside it, not both, as the two clocks differ.

    Raises:
        ConfigError: a bad argument, config field or environment value, at creation.
    """

    __slots__ = ("__weakref__", "_clock", "_core", "_entries", "_listeners")

    def __init__(
        self,
        name: str,
        failure_threshold: int | Unset = UNSET,
        success_threshold: int | Unset = UNSET,
        timeout: float | Unset = UNSET,
        expected_exception: ExceptionTypes | Unset = UNSET,
        *,
        half_open_max_calls: int | Unset = UNSET,
        config: CircuitBreakerConfig | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise ConfigError(f"`name` must be a string (got {name!r})")
        if config is not None and not isinstance(config, CircuitBreakerConfig):
            raise ConfigError(f"`config` must be a CircuitBreakerConfig (got {config!r})")
        if config is not None:
            failure_threshold = (
                config.failure_threshold if failure_threshold is UNSET else failure_threshold
            )
            success_threshold = (
                config.success_threshold if success_threshold is UNSET else success_threshold
            )
            timeout = config.timeout if timeout is UNSET else timeout
            if expected_exception is UNSET:
                expected_exception = config.expected_exception
        self._core = BreakerCore(
            name=name,
            failure_threshold=COUNT.resolve_int(
                "failure_threshold",
                failure_threshold,
                env=_ENV_FAILURE_THRESHOLD,
                default=_DEFAULT_FAILURE_THRESHOLD,
            ),
            success_threshold=COUNT.resolve_int(
                "success_threshold",
                success_threshold,
                env=_ENV_SUCCESS_THRESHOLD,
                default=_DEFAULT_SUCCESS_THRESHOLD,
            ),
            timeout=DURATION.resolve(
                "timeout", timeout, env=_ENV_TIMEOUT, default=_DEFAULT_TIMEOUT
            ),
            half_open_max_calls=COUNT.resolve_int(
                "half_open_max_calls",
                half_open_max_calls,
                env=_ENV_HALF_OPEN_REQUESTS,
                default=_DEFAULT_HALF_OPEN_MAX_CALLS,
            ),
            expected_exception=Exception if expected_exception is UNSET else expected_exception,
        )
        self._clock = _outside_trio_clock if clock is None else clock
        self._listeners: Listeners[CircuitStateChange] = Listeners()
        self._entries: dict[object, list[Permit]] = {}

    # -- settings and inspection --------------------------------------------------------------

    @property
    def name(self) -> str:
        """The breaker's name (a ``circuit_breaker`` one takes the function's ``__qualname__``)."""
        return self._core.name

    @property
    def core(self) -> BreakerCore:
        """The pure state machine behind this breaker (shared with the supervision tree)."""
        return self._core

    @property
    def failure_threshold(self) -> int:
        """Counted failures in a row that open the breaker."""
        return self._core.failure_threshold

    @property
    def success_threshold(self) -> int:
        """Successful trial calls that close a half-open breaker."""
        return self._core.success_threshold

    @property
    def timeout(self) -> float:
        """Seconds from opening until the breaker is half-open."""
        return self._core.timeout

    @property
    def half_open_max_calls(self) -> int:
        """Trial calls allowed at once while half-open."""
        return self._core.half_open_max_calls

    @property
    def expected_exception(self) -> tuple[type[BaseException], ...]:
        """The exception classes that count as failures."""
        return self._core.expected_exception

    def _now(self) -> float:
        try:
            return trio.current_time()
        except RuntimeError:
            return self._clock()

    def _publish(self) -> None:
        changes = self._core.take_changes()
        if self._listeners:
            for change in changes:
                self._listeners.emit(change)

    @property
    def state(self) -> CircuitState:
        """The state now. Reading it applies (and publishes) an OPEN -> HALF_OPEN change that fell
        due, so it says HALF_OPEN from exactly ``timeout`` after opening with no call needed."""
        core = self._core
        if core.free_permit is not None:
            return CircuitState.CLOSED
        state = core.state_at(self._now())
        if core.has_changes:
            self._publish()
        return state

    @property
    def failure_count(self) -> int:
        """The current run of consecutive counted failures (a success resets it; kept while open,
        cleared when the breaker closes)."""
        return self._core.failure_count

    def statistics(self) -> CircuitBreakerStatistics:
        """A snapshot of the breaker's state and totals (reading it may apply a due half-open)."""
        state = self.state
        core = self._core
        return CircuitBreakerStatistics(
            name=core.name,
            state=state,
            forced_open=core.forced_open,
            failure_count=core.failure_count,
            trial_successes=core.trial_successes,
            trials_in_flight=core.trials_in_flight,
            opened_at=core.opened_at,
            successes=core.successes,
            failures=core.failures,
            ignored=core.ignored,
            refused=core.refused,
        )

    def __repr__(self) -> str:
        core = self._core
        forced = " (forced)" if core.forced_open else ""
        return (
            f"<CircuitBreaker {core.name!r} {core._state.value}{forced}, "
            f"{core.failure_count}/{core.failure_threshold} failures, "
            f"{core.trials_in_flight}/{core.half_open_max_calls} trials>"
        )

    # -- control ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Close the breaker with every count cleared, lifting a ``force_open()`` hold. Calls let in
        before count nothing when they end."""
        self._core.reset(self._now())
        self._publish()

    def force_open(self) -> None:
        """Open the breaker and hold it open, refusing every call (``retry_after=inf``), until
        :meth:`reset`; it never turns half-open by itself. Calls let in before count nothing when
        they end."""
        self._core.force_open(self._now())
        self._publish()

    def add_listener(self, callback: Callable[[CircuitStateChange], object]) -> None:
        """Call ``callback(change)`` synchronously for every state change, in order.

        A listener that raises does not stop the others; its error propagates to whoever caused
        the change, after all listeners were called.
        """
        self._listeners.add(callback)

    def remove_listener(self, callback: Callable[[CircuitStateChange], object]) -> None:
        """Stop calling ``callback``; :class:`ValueError` if it was never added."""
        self._listeners.remove(callback)

    # -- the guard ----------------------------------------------------------------------------

    def _acquire(self) -> Permit:
        core = self._core
        try:
            now = trio.current_time()
        except RuntimeError:
            now = self._clock()
        decision = core.try_acquire(now)
        if core.has_changes:
            self._publish()
        if isinstance(decision, Refusal):
            raise CircuitOpenError(core.name, decision.retry_after)
        return decision

    def _settle(self, permit: Permit, error: BaseException | None) -> None:
        core = self._core
        if error is None:
            if permit.trial:
                core.on_success(permit, self._now())
            else:
                core.on_success(permit)
        elif core.is_counted(error):
            core.on_failure(permit, self._now())
        else:
            core.release(permit)
        if core.has_changes:
            self._publish()

    async def _guard_async(self, call: Callable[[], Awaitable[Any]]) -> Any:
        core = self._core
        permit = core.free_permit or self._acquire()
        try:
            result = await call()
        except BaseException as exc:
            self._settle(permit, exc)
            raise
        if permit.trial:
            self._settle(permit, None)
        else:
            core.on_success(permit)
        return result

    def _guard_sync(self, call: Callable[[], Any]) -> Any:
        core = self._core
        permit = core.free_permit or self._acquire()
        try:
            result = call()
        except BaseException as exc:
            self._settle(permit, exc)
            raise
        if permit.trial:
            self._settle(permit, None)
        else:
            core.on_success(permit)
        return result

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` (``async def`` or plain) so every call goes through this breaker; the
        wrapper exposes the breaker as ``.breaker``.

        Raises:
            TypeError: ``fn`` is not callable.
        """
        return decorate(
            fn,
            rule="circuit_breaker",
            around_async=self._guard_async,
            around_sync=self._guard_sync,
            extra={"breaker": self},
        )

    @overload
    async def call(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R: ...

    @overload
    async def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...

    async def call(self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Run ``fn(*args, **kwargs)`` (awaited if it is a coroutine function) through the breaker
        and return its result.

        Raises:
            CircuitOpenError: the breaker refused the call; ``fn`` was not invoked.
            Exception: whatever ``fn`` raised, unchanged.
        """
        if is_async_callable(fn):
            return await self._guard_async(lambda: fn(*args, **kwargs))
        return self._guard_sync(lambda: fn(*args, **kwargs))

    def call_sync(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the plain function ``fn(*args, **kwargs)`` through the breaker (see :meth:`call`)."""
        result: R = self._guard_sync(lambda: fn(*args, **kwargs))
        return result

    def _enter(self) -> None:
        core = self._core
        permit = core.free_permit or self._acquire()
        key = _entry_key()
        stack = self._entries.get(key)
        if stack is None:
            self._entries[key] = [permit]
        else:
            stack.append(permit)

    def _exit(self, exc: BaseException | None) -> None:
        key = _entry_key()
        stack = self._entries[key]
        permit = stack.pop()
        if not stack:
            del self._entries[key]
        self._settle(permit, exc)

    async def __aenter__(self) -> CircuitBreaker:
        """Ask the breaker's leave for the body (no checkpoint).

        Raises:
            CircuitOpenError: the breaker refused; the body does not run.
        """
        self._enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Record the body's outcome; its exception, if any, propagates unchanged."""
        self._exit(exc)

    def __enter__(self) -> CircuitBreaker:
        """The synchronous form of :meth:`__aenter__`, for plain code."""
        self._enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """The synchronous form of :meth:`__aexit__`."""
        self._exit(exc)


def circuit_breaker(
    failure_threshold: int | Unset = UNSET,
    success_threshold: int | Unset = UNSET,
    timeout: float | Unset = UNSET,
    expected_exception: ExceptionTypes | Unset = UNSET,
    *,
    half_open_max_calls: int | Unset = UNSET,
    config: CircuitBreakerConfig | None = None,
    name: str | None = None,
    clock: Callable[[], float] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator factory: each decorated function gets its own :class:`CircuitBreaker`, named after
    its ``__qualname__`` (or ``name``), shared by every caller and, for a method, every instance.

    Parameters are those of :class:`CircuitBreaker`; environment variables are read, and every value
    checked, when ``circuit_breaker(...)`` is called. The wrapper exposes its breaker as
    ``fn.breaker``.

    Raises:
        ConfigError: a bad argument, config field or environment value (at this call).
        TypeError: the decorated object is not callable.
    """
    template = CircuitBreaker(
        name or "<template>",
        failure_threshold,
        success_threshold,
        timeout,
        expected_exception,
        half_open_max_calls=half_open_max_calls,
        config=config,
        clock=clock,
    )
    settled: Sequence[Any] = (
        template.failure_threshold,
        template.success_threshold,
        template.timeout,
        template.expected_exception,
    )

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        breaker = CircuitBreaker(
            name or qualname_of(fn),
            *settled,
            half_open_max_calls=template.half_open_max_calls,
            clock=clock,
        )
        return breaker(fn)

    return decorator
