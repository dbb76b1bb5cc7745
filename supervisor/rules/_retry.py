"""Retry delays as pure data: the policies of API.md and the :class:`RetrySchedule` that both
shells (the ``retry`` decorator and a guarded service) consult between attempts.
"""

from __future__ import annotations

import abc
import math
import random
from typing import Final

import attrs

from .._config import COUNT, DELAY_CAP, FACTOR, NON_NEGATIVE, UNSET, Unset
from .._errors import ConfigError, shown

_ENV_MAX_ATTEMPTS: Final = "RETRY_MAX_ATTEMPTS"
_ENV_INITIAL_DELAY: Final = "RETRY_INITIAL_DELAY"
_ENV_MAX_DELAY: Final = "RETRY_MAX_DELAY"
_ENV_BACKOFF_FACTOR: Final = "RETRY_BACKOFF_FACTOR"

_DEFAULT_MAX_ATTEMPTS: Final = 3
_DEFAULT_INITIAL_DELAY: Final = 1.0
_DEFAULT_MAX_DELAY: Final = 60.0
_DEFAULT_BACKOFF_FACTOR: Final = 2.0


def _check_attempt(attempt: int) -> None:
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ConfigError(f"`attempt` must be an integer >= 1 (got {shown(attempt)})")


def _exponential(initial_delay: float, factor: float, max_delay: float, attempt: int) -> float:
    """``min(max_delay, initial_delay * factor ** (attempt - 1))``, without overflowing."""
    try:
        grown = initial_delay * factor ** (attempt - 1)
    except OverflowError:
        return max_delay
    return min(max_delay, grown)


class RetryPolicy(abc.ABC):
    """How long to wait before each retry, and which errors to retry.

    Subclasses implement :meth:`get_delay`. A policy may also have a ``max_attempts`` attribute
    (an int: it then limits the attempts too, the smaller limit wins) and a ``max_delay``
    attribute (a number: a ``retry_after`` above it stops retrying).
    """

    @abc.abstractmethod
    def get_delay(self, attempt: int) -> float:
        """Seconds to sleep after failed attempt ``attempt`` (1 for the first call)."""

    def should_retry(self, exception: Exception) -> bool:
        """Whether ``exception`` may be retried (default: always ``True``)."""
        return True


class ExponentialBackoff(RetryPolicy):
    """``get_delay(n) = min(max_delay, initial_delay * factor ** (n - 1))``; with ``jitter=True``
    the delay is drawn uniformly from ``[0, that]`` ("full jitter").

    Omitted values come from ``RETRY_INITIAL_DELAY`` (default 1.0), ``RETRY_MAX_DELAY`` (60.0) and
    ``RETRY_BACKOFF_FACTOR`` (2.0), read at creation. ``max_delay=math.inf`` means no cap (a
    delay beyond the float range is then ``inf``); no other value accepts inf, none accepts NaN.
    ``rng`` (keyword-only) is the random source of the jitter (default: a fresh
    :class:`random.Random`).

    Raises:
        ConfigError: ``initial_delay`` or ``max_delay`` < 0, ``factor`` < 1, or a bad environment
            value.
    """

    __slots__ = ("factor", "initial_delay", "jitter", "max_delay", "rng")

    def __init__(
        self,
        initial_delay: float | Unset = UNSET,
        max_delay: float | Unset = UNSET,
        factor: float | Unset = UNSET,
        jitter: bool = True,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.initial_delay = NON_NEGATIVE.resolve(
            "initial_delay", initial_delay, env=_ENV_INITIAL_DELAY, default=_DEFAULT_INITIAL_DELAY
        )
        self.max_delay = DELAY_CAP.resolve(
            "max_delay", max_delay, env=_ENV_MAX_DELAY, default=_DEFAULT_MAX_DELAY
        )
        self.factor = FACTOR.resolve(
            "factor", factor, env=_ENV_BACKOFF_FACTOR, default=_DEFAULT_BACKOFF_FACTOR
        )
        self.jitter = bool(jitter)
        self.rng = random.Random() if rng is None else rng

    def get_delay(self, attempt: int) -> float:
        """The delay after failed attempt ``attempt`` (see the class docstring).

        Raises:
            ConfigError: ``attempt`` is not an integer >= 1.
        """
        _check_attempt(attempt)
        ceiling = _exponential(self.initial_delay, self.factor, self.max_delay, attempt)
        return self.rng.uniform(0.0, ceiling) if self.jitter and ceiling < math.inf else ceiling

    def __repr__(self) -> str:
        return (
            f"ExponentialBackoff(initial_delay={self.initial_delay}, max_delay={self.max_delay}, "
            f"factor={self.factor}, jitter={self.jitter})"
        )


class LinearBackoff(RetryPolicy):
    """``get_delay(n) = delay * n``; also limits the attempts to ``max_attempts`` (first call
    included).

    Raises:
        ConfigError: ``delay`` < 0 or ``max_attempts`` not an integer >= 1.
    """

    __slots__ = ("delay", "max_attempts")

    def __init__(self, delay: float = 5.0, max_attempts: int = 3) -> None:
        self.delay = NON_NEGATIVE.check("delay", delay)
        self.max_attempts = int(COUNT.check("max_attempts", max_attempts))

    def get_delay(self, attempt: int) -> float:
        """``delay * attempt``.

        Raises:
            ConfigError: ``attempt`` is not an integer >= 1.
        """
        _check_attempt(attempt)
        return self.delay * attempt

    def __repr__(self) -> str:
        return f"LinearBackoff(delay={self.delay}, max_attempts={self.max_attempts})"


def _check_exceptions(value: object) -> tuple[type[BaseException], ...]:
    items = value if isinstance(value, tuple) else (value,)
    if not items or not all(isinstance(t, type) and issubclass(t, BaseException) for t in items):
        raise ConfigError(
            "`exceptions` must be an exception class or a non-empty tuple of them "
            f"(got {shown(value)})"
        )
    return items


def _check_policy(policy: object) -> RetryPolicy | None:
    if policy is None:
        return None
    if not callable(getattr(policy, "get_delay", None)):
        raise TypeError(f"`policy` must be a RetryPolicy (got {shown(policy)})")
    return policy  # type: ignore[return-value]


def _numeric(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range: as good as infinite
        number = math.inf if value > 0 else -math.inf
    return None if math.isnan(number) else number


@attrs.frozen(kw_only=True)
class RetrySchedule:
    """The pure decision of a retry loop: after a failed attempt, sleep how long, or give up?

    Built once by :func:`retry` / :class:`Retrier`; holds no per-call state, so one schedule
    serves every concurrent call.
    """

    max_attempts: int
    """Calls at most, the first included (already the smaller of the caller's and the policy's)."""
    initial_delay: float = _DEFAULT_INITIAL_DELAY
    """Delay after the first failed attempt (built-in formula)."""
    max_delay: float = _DEFAULT_MAX_DELAY
    """Ceiling of the built-in formula's delay, and the cap on ``retry_after`` without a policy."""
    backoff_factor: float = _DEFAULT_BACKOFF_FACTOR
    """Growth of the built-in formula's delay per attempt."""
    jitter: bool = True
    """Full jitter for the built-in formula (ignored with a policy)."""
    exceptions: tuple[type[BaseException], ...] = (Exception,)
    """Only errors that are instances of these are retried."""
    policy: RetryPolicy | None = None
    """Where given, decides each delay, filters errors with ``should_retry``, and caps
    ``retry_after`` with its ``max_delay`` attribute (no cap if it has none)."""

    @classmethod
    def build(
        cls,
        *,
        max_attempts: int,
        initial_delay: float = _DEFAULT_INITIAL_DELAY,
        max_delay: float = _DEFAULT_MAX_DELAY,
        backoff_factor: float = _DEFAULT_BACKOFF_FACTOR,
        jitter: bool = True,
        exceptions: object = (Exception,),
        policy: object = None,
    ) -> RetrySchedule:
        """Check every value and fold the policy's own ``max_attempts`` into ``max_attempts``.

        Raises:
            ConfigError: a bad count, delay, factor or ``exceptions``.
            TypeError: ``policy`` has no ``get_delay``.
        """
        attempts = int(COUNT.check("max_attempts", max_attempts))
        checked_policy = _check_policy(policy)
        own = getattr(checked_policy, "max_attempts", None)
        if isinstance(own, int) and not isinstance(own, bool):
            attempts = min(attempts, own)
        return cls(
            max_attempts=attempts,
            initial_delay=NON_NEGATIVE.check("initial_delay", initial_delay),
            max_delay=DELAY_CAP.check("max_delay", max_delay),
            backoff_factor=FACTOR.check("backoff_factor", backoff_factor),
            jitter=bool(jitter),
            exceptions=_check_exceptions(exceptions),
            policy=checked_policy,
        )

    def retryable(self, error: BaseException) -> bool:
        """Whether ``error`` may be retried at all: an :class:`Exception` (never a cancellation),
        an instance of ``exceptions``, and accepted by ``policy.should_retry``."""
        if not isinstance(error, Exception) or not isinstance(error, self.exceptions):
            return False
        return self.policy is None or bool(self.policy.should_retry(error))

    def base_delay(self, attempt: int, rng: random.Random) -> float:
        """The delay after failed attempt ``attempt`` before ``retry_after`` is considered: the
        policy's ``get_delay(attempt)``, else ``min(max_delay, initial_delay * backoff_factor **
        (attempt - 1))``, drawn uniformly from ``[0, that]`` when ``jitter``."""
        if self.policy is not None:
            return max(0.0, float(self.policy.get_delay(attempt)))
        ceiling = _exponential(self.initial_delay, self.backoff_factor, self.max_delay, attempt)
        return rng.uniform(0.0, ceiling) if self.jitter and ceiling < math.inf else ceiling

    @property
    def retry_after_cap(self) -> float | None:
        """The largest ``retry_after`` still waited for: ``max_delay``, the policy's ``max_delay``
        with a policy that has one, else ``None`` (no cap)."""
        if self.policy is None:
            return self.max_delay
        return _numeric(getattr(self.policy, "max_delay", None))

    def next_delay(
        self,
        attempt: int,
        error: BaseException,
        *,
        rng: random.Random,
        deadline: float = math.inf,
        now: float = 0.0,
    ) -> float | None:
        """Seconds to sleep after failed attempt ``attempt`` (1 for the first call) raised
        ``error`` at ``now``, or ``None`` to give up and re-raise ``error``.

        Gives up when: ``error`` is not :meth:`retryable`; ``attempt >= max_attempts``; ``error``
        has a numeric ``retry_after`` above :attr:`retry_after_cap`; or the sleep would not end
        before ``deadline`` (``now + delay >= deadline``: the deadline would cancel it). A numeric
        ``retry_after`` otherwise raises the delay to ``max(delay, retry_after)``.
        """
        if attempt >= self.max_attempts or not self.retryable(error):
            return None
        delay = self.base_delay(attempt, rng)
        retry_after = _numeric(getattr(error, "retry_after", None))
        if retry_after is not None:
            cap = self.retry_after_cap
            if cap is not None and retry_after > cap:
                return None
            delay = max(delay, retry_after)
        if now + delay >= deadline:
            return None
        return delay
