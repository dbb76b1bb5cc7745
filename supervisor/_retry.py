"""Retrying: backoff policies, the pure schedule that decides each delay
(:class:`RetrySchedule`), and its thin shells (:func:`retry`, :class:`Retrier`).

The schedule never reads a clock and never sleeps: it is told the attempt number, the error, the
current time and the caller's deadline, and answers with the next delay or ``None`` (give up). The
shells read ``trio.current_time()`` and ``trio.current_effective_deadline()`` only after a failure,
so a call that succeeds at once costs one ``try``.
"""

from __future__ import annotations

import abc
import inspect
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, ParamSpec, TypeVar, overload

import attrs
import trio

from ._config import COUNT, FACTOR, NON_NEGATIVE, UNSET, Unset
from ._decorate import decorate
from ._errors import ConfigError

__all__ = [
    "ExponentialBackoff",
    "LinearBackoff",
    "Retrier",
    "RetryPolicy",
    "RetrySchedule",
    "retry",
]

P = ParamSpec("P")
R = TypeVar("R")

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
        raise ConfigError(f"`attempt` must be an integer >= 1 (got {attempt!r})")


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
    ``RETRY_BACKOFF_FACTOR`` (2.0), read at creation. ``rng`` (keyword-only) is the random source
    of the jitter (default: a fresh :class:`random.Random`).

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
        self.max_delay = NON_NEGATIVE.resolve(
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
        return self.rng.uniform(0.0, ceiling) if self.jitter else ceiling

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
            f"`exceptions` must be an exception class or a non-empty tuple of them (got {value!r})"
        )
    return items


def _check_policy(policy: object) -> RetryPolicy | None:
    if policy is None:
        return None
    if not callable(getattr(policy, "get_delay", None)):
        raise TypeError(f"`policy` must be a RetryPolicy (got {policy!r})")
    return policy  # type: ignore[return-value]


def _numeric(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if math.isnan(value):
        return None
    return float(value)


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
            max_delay=NON_NEGATIVE.check("max_delay", max_delay),
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
        return rng.uniform(0.0, ceiling) if self.jitter else ceiling

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


def _note_no_sleep(error: BaseException, delay: float) -> None:
    error.add_note(
        f"retry: gave up instead of sleeping {delay:.3f}s: a plain (non-async) function called "
        "inside trio cannot sleep on trio's clock; decorate an `async def` function to retry here"
    )


async def _run_async(
    schedule: RetrySchedule, rng: random.Random, call: Callable[[], Awaitable[Any]]
) -> Any:
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as exc:
            delay = schedule.next_delay(
                attempt,
                exc,
                rng=rng,
                deadline=trio.current_effective_deadline(),
                now=trio.current_time(),
            )
            if delay is None:
                raise
        await trio.sleep(delay)


def _run_sync(schedule: RetrySchedule, rng: random.Random, call: Callable[[], Any]) -> Any:
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:
            in_trio = trio.lowlevel.in_trio_run()
            if in_trio:
                now, deadline = trio.current_time(), trio.current_effective_deadline()
            else:
                now, deadline = 0.0, math.inf
            delay = schedule.next_delay(attempt, exc, rng=rng, deadline=deadline, now=now)
            if delay is None:
                raise
            if in_trio and delay > 0:
                _note_no_sleep(exc, delay)
                raise
        if delay > 0:
            time.sleep(delay)


def retry(
    max_attempts: int | Unset = UNSET,
    backoff_factor: float | Unset = UNSET,
    exceptions: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
    *,
    initial_delay: float | Unset = UNSET,
    max_delay: float | Unset = UNSET,
    jitter: bool = True,
    policy: RetryPolicy | None = None,
    rng: random.Random | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: call the function again when it fails, sleeping between attempts.

    * ``max_attempts`` counts every call, the first included (env ``RETRY_MAX_ATTEMPTS``,
      default 3).
    * Only errors that are instances of ``exceptions`` (and that ``policy.should_retry`` accepts)
      are retried; any other propagates at once. Cancellation, ``KeyboardInterrupt`` and other
      non-``Exception`` s are never caught.
    * The delay after failed attempt ``n`` is ``min(max_delay, initial_delay * backoff_factor **
      (n - 1))`` (env ``RETRY_INITIAL_DELAY`` 1.0, ``RETRY_MAX_DELAY`` 60.0,
      ``RETRY_BACKOFF_FACTOR`` 2.0); with ``jitter`` the sleep is drawn uniformly from
      ``[0, that]`` (from ``rng``, keyword-only, default a fresh :class:`random.Random`).
      A ``policy`` replaces the formula with ``policy.get_delay(n)`` (``jitter`` is then ignored),
      and its own ``max_attempts``, if any, also limits the attempts (the smaller wins).
    * An error with a numeric ``retry_after`` makes the delay ``max(delay, retry_after)``; where
      ``retry_after`` is above ``max_delay`` (the policy's ``max_delay`` with a policy; no cap if it
      has none), retrying stops.
    * Where the next sleep would not end before the caller's trio deadline
      (``trio.current_effective_deadline()``), retrying stops at once.
    * When retrying stops, the last error itself is re-raised (not wrapped).

    Environment variables are read, and every value checked, when ``retry(...)`` is called.

    Plain functions: outside trio the sleeps use :func:`time.sleep`. A plain function called inside
    trio cannot sleep on trio's clock without blocking the run: its retries happen only where the
    delay is 0; where a positive delay is due, retrying stops and the last error is re-raised with a
    note saying why.

    Cancellation: a cancelled sleep or attempt propagates ``trio.Cancelled`` at once; nothing more
    is tried.

    Raises:
        ConfigError: a bad count, delay, factor, ``exceptions`` or environment value.
        TypeError: ``policy`` has no ``get_delay``; the decorated object is not callable.
    """
    schedule = RetrySchedule.build(
        max_attempts=COUNT.resolve_int(
            "max_attempts", max_attempts, env=_ENV_MAX_ATTEMPTS, default=_DEFAULT_MAX_ATTEMPTS
        ),
        initial_delay=NON_NEGATIVE.resolve(
            "initial_delay", initial_delay, env=_ENV_INITIAL_DELAY, default=_DEFAULT_INITIAL_DELAY
        ),
        max_delay=NON_NEGATIVE.resolve(
            "max_delay", max_delay, env=_ENV_MAX_DELAY, default=_DEFAULT_MAX_DELAY
        ),
        backoff_factor=FACTOR.resolve(
            "backoff_factor",
            backoff_factor,
            env=_ENV_BACKOFF_FACTOR,
            default=_DEFAULT_BACKOFF_FACTOR,
        ),
        jitter=jitter,
        exceptions=exceptions,
        policy=policy,
    )
    source = random.Random() if rng is None else rng

    async def around_async(call: Callable[[], Awaitable[Any]]) -> Any:
        return await _run_async(schedule, source, call)

    def around_sync(call: Callable[[], Any]) -> Any:
        return _run_sync(schedule, source, call)

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        return decorate(
            fn,
            rule="retry",
            around_async=around_async,
            around_sync=around_sync,
            extra={"retry_schedule": schedule},
        )

    return decorator


class Retrier:
    """Runs operations under a :class:`RetryPolicy`, with the rules of :func:`retry`.

    At most ``max_attempts`` calls per operation (the first included; default 5), or the policy's
    own ``max_attempts`` where it has a smaller one. ``exceptions`` and ``rng`` (keyword-only) are
    as in :func:`retry`.

    Raises:
        ConfigError: ``max_attempts`` not an integer >= 1, or bad ``exceptions``.
        TypeError: ``policy`` has no ``get_delay``.
    """

    __slots__ = ("_rng", "_schedule")

    def __init__(
        self,
        policy: RetryPolicy,
        max_attempts: int = 5,
        *,
        exceptions: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        rng: random.Random | None = None,
    ) -> None:
        if policy is None:
            raise TypeError("`policy` must be a RetryPolicy (got None)")
        self._schedule = RetrySchedule.build(
            max_attempts=max_attempts, exceptions=exceptions, policy=policy
        )
        self._rng = random.Random() if rng is None else rng

    @property
    def policy(self) -> RetryPolicy:
        """The policy deciding each delay."""
        policy = self._schedule.policy
        if policy is None:  # pragma: no cover -- __init__ refuses None
            raise RuntimeError("a Retrier always has a policy")
        return policy

    @property
    def max_attempts(self) -> int:
        """Calls at most per operation: the smaller of the given and the policy's limit."""
        return self._schedule.max_attempts

    @property
    def schedule(self) -> RetrySchedule:
        """The pure schedule this retrier follows."""
        return self._schedule

    @overload
    async def execute(
        self, operation: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R: ...

    @overload
    async def execute(
        self, operation: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R: ...

    async def execute(
        self, operation: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> Any:
        """Call ``operation(*args, **kwargs)`` (awaiting the result if it is awaitable) until it
        succeeds or retrying stops, sleeping with ``trio.sleep`` between attempts; return its
        result.

        Raises:
            Exception: the last error, re-raised unchanged, once retrying stops.
            trio.Cancelled: at once, when the caller is cancelled.
        """

        async def call() -> Any:
            result = operation(*args, **kwargs)
            if inspect.isawaitable(result):
                return await result
            return result

        return await _run_async(self._schedule, self._rng, call)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate an ``async def`` function (or a plain one, see :func:`retry`) with this
        retrier's rules."""
        schedule, rng = self._schedule, self._rng

        async def around_async(call: Callable[[], Awaitable[Any]]) -> Any:
            return await _run_async(schedule, rng, call)

        def around_sync(call: Callable[[], Any]) -> Any:
            return _run_sync(schedule, rng, call)

        return decorate(fn, rule="Retrier", around_async=around_async, around_sync=around_sync)

    def __repr__(self) -> str:
        return f"<Retrier {self._schedule.policy!r}, max_attempts={self.max_attempts}>"
