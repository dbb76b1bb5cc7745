"""Retrying's trio shells: :func:`retry` and :class:`Retrier`.

Both consult the pure :class:`~supervisor.cores.RetrySchedule` after each failure; they read
``trio.current_time()`` and ``trio.current_effective_deadline()`` only after a failure, so a call
that succeeds at once costs one ``try``.
"""

from __future__ import annotations

import functools
import inspect
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, ParamSpec, TypeVar, overload

import trio

from .._config import COUNT, DELAY_CAP, FACTOR, NON_NEGATIVE, UNSET, Unset
from .._errors import shown
from ..rules._retry import (
    _DEFAULT_BACKOFF_FACTOR,
    _DEFAULT_INITIAL_DELAY,
    _DEFAULT_MAX_ATTEMPTS,
    _DEFAULT_MAX_DELAY,
    _ENV_BACKOFF_FACTOR,
    _ENV_INITIAL_DELAY,
    _ENV_MAX_ATTEMPTS,
    _ENV_MAX_DELAY,
    RetryPolicy,
    RetrySchedule,
)
from ..rules._retry_budget import RetryBudget
from ..rules._retry_plan import RetryPlan
from . import _testing
from ._decorate import decorate, qualname_of
from ._generators import UntilFirstItem, generator_kind
from ._retry_ext import Hook, Hooks, Retrying, _note_no_sleep, plan_decorator, run_plan_async

P = ParamSpec("P")
R = TypeVar("R")

ErrorFilter = type[BaseException] | Callable[[Exception], object] | tuple[Any, ...] | list[Any]
"""Which errors to retry: exception classes, predicates ``(error) -> bool``, or a mix."""


async def _run_async(
    schedule: RetrySchedule, rng: random.Random, call: Callable[[], Awaitable[Any]]
) -> Any:
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as exc:
            delay = _testing.next_delay(
                schedule,
                attempt,
                exc,
                rng=rng,
                deadline=trio.current_effective_deadline(),
                now=trio.current_time(),
            )
            if delay is None:
                raise
        await trio.sleep(delay)


async def _retry_after_first(
    schedule: RetrySchedule,
    rng: random.Random,
    call: Callable[[], Awaitable[Any]],
    error: Exception,
) -> Any:
    # ``_run_async`` from the first failure on (the fast wrappers make the first attempt
    # themselves, with no partial and no frame of their own).
    attempt = 1
    while True:
        delay = _testing.next_delay(
            schedule,
            attempt,
            error,
            rng=rng,
            deadline=trio.current_effective_deadline(),
            now=trio.current_time(),
        )
        if delay is None:
            raise error
        await trio.sleep(delay)
        attempt += 1
        try:
            return await call()
        except Exception as exc:
            error = exc


def _wrapper(
    schedule: RetrySchedule, rng: random.Random
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    def wrap(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def retried(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                error = exc
            return await _retry_after_first(
                schedule, rng, functools.partial(fn, *args, **kwargs), error
            )

        return retried

    return wrap


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
            delay = _testing.next_delay(schedule, attempt, exc, rng=rng, deadline=deadline, now=now)
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
    on: ErrorFilter | None = None,
    retry_on_result: Callable[[Any], object] | None = None,
    total_timeout: float | None = None,
    budget: RetryBudget | None = None,
    before_sleep: Hook | None = None,
    on_giveup: Hook | None = None,
    on_success: Hook | None = None,
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
      ``max_delay=math.inf`` (or ``RETRY_MAX_DELAY=inf``) means no cap; it is the only
      parameter that accepts inf, and NaN is refused everywhere.
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

    Generator functions (plain or async): the wrapper is a generator function of the same kind;
    an attempt is starting the iteration up to its first item, so a generator that fails before
    its first item is made anew and retried; once an item was handed out, an error propagates
    unretried (the items cannot be taken back).

    Cancellation: a cancelled sleep or attempt propagates ``trio.Cancelled`` at once; nothing more
    is tried.

    Beyond API.md (keyword-only; each off by default, and a ``retry`` without any of them keeps
    the plain loop): ``on`` (exception classes and/or predicates; an error is retried only if it
    also matches), ``retry_on_result`` (a result for which it returns true is retried like a
    failure; when retrying stops the last result is returned), ``total_timeout`` (no sleep may end
    at or after this many seconds from the first attempt; the caller's deadline still applies,
    the smaller wins), ``budget`` (a :class:`~supervisor.RetryBudget`: each retry must be allowed
    by it; over budget the error is re-raised at once), and the hooks ``before_sleep``,
    ``on_giveup``, ``on_success``, each called with a frozen :class:`~supervisor.RetryDetails`
    (plain or async; a plain decorated function needs plain hooks). A hook that raises makes the
    call raise its error.

    Raises:
        ConfigError: a bad count, delay, factor, ``exceptions``, ``on``, ``total_timeout`` or
            environment value.
        TypeError: ``policy`` has no ``get_delay``; the decorated object is not callable (or a
            generator function, with one of the options beyond API.md); a hook,
            ``retry_on_result`` or ``budget`` of the wrong type.
    """
    schedule = _schedule_from(
        max_attempts,
        backoff_factor=backoff_factor,
        exceptions=exceptions,
        initial_delay=initial_delay,
        max_delay=max_delay,
        jitter=jitter,
        policy=policy,
    )
    source = random.Random() if rng is None else rng
    extended = plan_of(
        schedule,
        on=on,
        retry_on_result=retry_on_result,
        total_timeout=total_timeout,
        budget=budget,
        before_sleep=before_sleep,
        on_giveup=on_giveup,
        on_success=on_success,
    )
    if extended is not None:
        plan, hooks = extended
        return plan_decorator(plan, source, hooks, rule="retry")

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
            wrap_async=_wrapper(schedule, source),
            generators=UntilFirstItem(),
        )

    return decorator


def _schedule_from(
    max_attempts: int | Unset,
    *,
    backoff_factor: float | Unset,
    exceptions: type[BaseException] | tuple[type[BaseException], ...],
    initial_delay: float | Unset,
    max_delay: float | Unset,
    jitter: bool,
    policy: RetryPolicy | None,
) -> RetrySchedule:
    # The options of retry(), resolved against the environment and checked.
    return RetrySchedule.build(
        max_attempts=COUNT.resolve_int(
            "max_attempts", max_attempts, env=_ENV_MAX_ATTEMPTS, default=_DEFAULT_MAX_ATTEMPTS
        ),
        initial_delay=NON_NEGATIVE.resolve(
            "initial_delay", initial_delay, env=_ENV_INITIAL_DELAY, default=_DEFAULT_INITIAL_DELAY
        ),
        max_delay=DELAY_CAP.resolve(
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


def plan_of(
    schedule: RetrySchedule,
    *,
    on: object,
    retry_on_result: object,
    total_timeout: float | None,
    budget: object,
    before_sleep: object,
    on_giveup: object,
    on_success: object,
) -> tuple[RetryPlan, Hooks] | None:
    """The plan and hooks for these options, or ``None`` when none is given (plain retrying).

    Raises:
        ConfigError: a bad ``on`` or ``total_timeout``.
        TypeError: a hook, ``retry_on_result`` or ``budget`` of the wrong type.
    """
    hooks = Hooks.build(before_sleep=before_sleep, on_giveup=on_giveup, on_success=on_success)
    if (
        on is None
        and retry_on_result is None
        and total_timeout is None
        and budget is None
        and not hooks.any
    ):
        return None
    plan = RetryPlan.build(
        schedule, on=on, retry_on_result=retry_on_result, total_timeout=total_timeout, budget=budget
    )
    return plan, hooks


class Retrier:
    """Runs operations under a :class:`RetryPolicy`, with the rules of :func:`retry`.

    At most ``max_attempts`` calls per operation (the first included; default 5), or the policy's
    own ``max_attempts`` where it has a smaller one. ``exceptions``, ``rng``, and the options
    beyond API.md (``on``, ``retry_on_result``, ``total_timeout``, ``budget`` and the hooks), all
    keyword-only, are as in :func:`retry`.

    Raises:
        ConfigError: ``max_attempts`` not an integer >= 1, or bad ``exceptions``.
        TypeError: ``policy`` has no ``get_delay``.
    """

    __slots__ = ("_extended", "_rng", "_schedule")

    def __init__(
        self,
        policy: RetryPolicy,
        max_attempts: int = 5,
        *,
        exceptions: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        rng: random.Random | None = None,
        on: ErrorFilter | None = None,
        retry_on_result: Callable[[Any], object] | None = None,
        total_timeout: float | None = None,
        budget: RetryBudget | None = None,
        before_sleep: Hook | None = None,
        on_giveup: Hook | None = None,
        on_success: Hook | None = None,
    ) -> None:
        if policy is None:
            raise TypeError("`policy` must be a RetryPolicy (got None)")
        self._schedule = RetrySchedule.build(
            max_attempts=max_attempts, exceptions=exceptions, policy=policy
        )
        self._rng = random.Random() if rng is None else rng
        self._extended = plan_of(
            self._schedule,
            on=on,
            retry_on_result=retry_on_result,
            total_timeout=total_timeout,
            budget=budget,
            before_sleep=before_sleep,
            on_giveup=on_giveup,
            on_success=on_success,
        )

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
            TypeError: ``operation`` is a generator function (decorate it instead).
            trio.Cancelled: at once, when the caller is cancelled.
        """

        kind = generator_kind(operation)
        if kind is not None:
            what = "an async generator function" if kind == "async" else "a generator function"
            raise TypeError(
                f"execute() runs an operation to its result, and {qualname_of(operation)!r} is "
                f"{what} (its work happens while it is iterated): decorate it with the retrier"
            )

        async def call() -> Any:
            result = operation(*args, **kwargs)
            if inspect.isawaitable(result):
                return await result
            return result

        if self._extended is not None:
            plan, hooks = self._extended
            return await run_plan_async(plan, self._rng, qualname_of(operation), hooks, call)
        return await _run_async(self._schedule, self._rng, call)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate an ``async def`` function (or a plain one, see :func:`retry`) with this
        retrier's rules."""
        schedule, rng = self._schedule, self._rng
        if self._extended is not None:
            plan, hooks = self._extended
            return plan_decorator(plan, rng, hooks, rule="Retrier")(fn)

        async def around_async(call: Callable[[], Awaitable[Any]]) -> Any:
            return await _run_async(schedule, rng, call)

        def around_sync(call: Callable[[], Any]) -> Any:
            return _run_sync(schedule, rng, call)

        return decorate(
            fn,
            rule="Retrier",
            around_async=around_async,
            around_sync=around_sync,
            wrap_async=_wrapper(schedule, rng),
            generators=UntilFirstItem(),
        )

    def __repr__(self) -> str:
        return f"<Retrier {self._schedule.policy!r}, max_attempts={self.max_attempts}>"


def retrying(
    max_attempts: int | Unset = UNSET,
    backoff_factor: float | Unset = UNSET,
    exceptions: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
    *,
    initial_delay: float | Unset = UNSET,
    max_delay: float | Unset = UNSET,
    jitter: bool = True,
    policy: RetryPolicy | None = None,
    rng: random.Random | None = None,
    on: ErrorFilter | None = None,
    total_timeout: float | None = None,
    budget: RetryBudget | None = None,
    before_sleep: Hook | None = None,
    on_giveup: Hook | None = None,
    on_success: Hook | None = None,
    name: str = "retrying",
) -> Retrying:
    """Retrying for a block of code that is not a function (stamina's ``retry_context``,
    tenacity's ``AsyncRetrying``)::

        async for attempt in retrying(max_attempts=3, on=ConnectionError):
            with attempt:
                await connect()

    The options are those of :func:`retry` (``retry_on_result`` aside: a block has no result;
    without ``rng``, blocks share one random source for their jitter);
    ``name`` names the block in the hooks' :class:`~supervisor.RetryDetails`. An error raised in
    ``with attempt:`` that is to be retried is swallowed, the loop sleeps (``trio.sleep``) and
    hands out the next attempt; one that is not (or when retrying stops) propagates out of the
    loop unchanged. A body that ends without an error ends the loop. Use ``async with attempt:``
    where ``on_giveup`` is async. Cancellation propagates at once.

    Raises:
        ConfigError: a bad option or environment value (here, at creation).
        TypeError: a hook or ``budget`` of the wrong type, or ``name`` not a string.
    """
    schedule = _schedule_from(
        max_attempts,
        backoff_factor=backoff_factor,
        exceptions=exceptions,
        initial_delay=initial_delay,
        max_delay=max_delay,
        jitter=jitter,
        policy=policy,
    )
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string (got {shown(name)})")
    hooks = Hooks.build(before_sleep=before_sleep, on_giveup=on_giveup, on_success=on_success)
    plan = RetryPlan.build(schedule, on=on, total_timeout=total_timeout, budget=budget)
    return Retrying(plan, _BLOCK_RNG if rng is None else rng, name, hooks)


_BLOCK_RNG: Final = random.Random()
"""The jitter source of every ``retrying`` block not given its own ``rng`` (seeding a fresh
one per block would cost more than the rest of the block's setup)."""
