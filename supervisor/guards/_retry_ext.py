"""Retrying with the options beyond API.md: the loops that drive a
:class:`~supervisor.rules._retry_plan.RetryPlan`, the hooks, and the block form
:func:`retrying`.

Only a ``retry(...)`` / ``Retrier`` given one of these options comes here; the plain retry loop
(``guards/_retry.py``) stays as it is, with no clock read on a first-attempt success.
"""

from __future__ import annotations

import inspect
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Final

import attrs
import trio

from .._errors import shown
from ..rules._retry_plan import GiveUpReason, RetryDetails, RetryPlan
from . import _testing
from ._decorate import decorate, is_async_callable, qualname_of

__all__ = [
    "Attempt",
    "Hooks",
    "Retrying",
    "plan_decorator",
    "run_plan_async",
    "run_plan_sync",
    "testing_overrides",
]

Hook = Callable[[RetryDetails], object]
"""A retry hook: called with one frozen :class:`RetryDetails`; plain or async."""


def _note_no_sleep(error: BaseException, delay: float) -> None:
    error.add_note(
        f"retry: gave up instead of sleeping {delay:.3f}s: a plain (non-async) function called "
        "inside trio cannot sleep on trio's clock; decorate an `async def` function to retry here"
    )


def _hook(param: str, value: object) -> Hook | None:
    if value is not None and not callable(value):
        raise TypeError(f"`{param}` must be callable or None (got {shown(value)})")
    return value


@attrs.frozen(kw_only=True)
class Hooks:
    """The hooks of one retrying rule (each plain or async, or ``None``)."""

    before_sleep: Hook | None = None
    """Before each sleep between attempts."""
    on_giveup: Hook | None = None
    """When retrying stops on a failure, or on a result it would have retried."""
    on_success: Hook | None = None
    """When a call succeeds (on any attempt)."""

    @classmethod
    def build(cls, *, before_sleep: object, on_giveup: object, on_success: object) -> Hooks:
        """Check each hook is callable.

        Raises:
            TypeError: a hook is not callable.
        """
        return cls(
            before_sleep=_hook("before_sleep", before_sleep),
            on_giveup=_hook("on_giveup", on_giveup),
            on_success=_hook("on_success", on_success),
        )

    @property
    def any(self) -> bool:
        """Whether any hook is set."""
        return not (
            self.before_sleep is None and self.on_giveup is None and self.on_success is None
        )

    def async_ones(self) -> list[str]:
        """The names of the hooks that are coroutine functions."""
        return [
            name
            for name in ("before_sleep", "on_giveup", "on_success")
            if is_async_callable(getattr(self, name))
        ]


NO_HOOKS: Final = Hooks()


async def _fire(hook: Hook | None, details: RetryDetails) -> None:
    if hook is not None:
        outcome = hook(details)
        if inspect.isawaitable(outcome):
            await outcome


def _fire_sync(hook: Hook | None, details: RetryDetails) -> None:
    if hook is not None:
        hook(details)


def _deadline() -> float:
    return trio.current_effective_deadline()


def testing_overrides() -> dict[str, Any]:
    """The ``cap`` and ``fixed_delay`` a testing mode in force puts on a plan's decisions
    (:func:`supervisor.testing`), as keyword arguments; none without one. Read only on a
    failure path."""
    mode = _testing.current_mode()
    if mode is None:
        return {}
    return {"cap": mode.max_attempts, "fixed_delay": mode.retry_delay}


async def run_plan_async(
    plan: RetryPlan, rng: random.Random, name: str, hooks: Hooks, call: Callable[[], Awaitable[Any]]
) -> Any:
    """Call ``call`` until it succeeds or ``plan`` gives up, sleeping with ``trio.sleep``.

    Giving up on an error re-raises it; giving up on a result returns it. Hooks run in the
    calling task; one that raises makes the call raise its error.
    """
    # The start time matters only to a time limit, a budget and the hooks' ``elapsed``.
    timed = plan.total_timeout is not None or plan.budget is not None or hooks.any
    started = trio.current_time() if timed else 0.0
    plan.start(started)
    attempt = 0
    while True:
        attempt += 1
        error: Exception | None = None
        try:
            result = await call()
        except Exception as exc:
            now = trio.current_time()
            decision = plan.after_error(
                attempt,
                exc,
                rng=rng,
                now=now,
                started=started,
                deadline=_deadline(),
                **testing_overrides(),
            )
            if type(decision) is GiveUpReason:
                details = RetryDetails(
                    name=name, attempt=attempt, elapsed=now - started, error=exc, reason=decision
                )
                await _fire(hooks.on_giveup, details)
                raise
            error = exc
        else:
            predicate = plan.retry_on_result
            if predicate is None or not predicate(result):
                if hooks.on_success is not None:
                    elapsed = trio.current_time() - started
                    await _fire(
                        hooks.on_success,
                        RetryDetails(name=name, attempt=attempt, elapsed=elapsed, result=result),
                    )
                return result
            now = trio.current_time()
            verdict = plan.result_retry(
                attempt,
                rng=rng,
                now=now,
                started=started,
                deadline=_deadline(),
                **testing_overrides(),
            )
            if type(verdict) is GiveUpReason:
                details = RetryDetails(
                    name=name, attempt=attempt, elapsed=now - started, result=result, reason=verdict
                )
                await _fire(hooks.on_giveup, details)
                return result
            decision = verdict
        delay: float = decision  # type: ignore[assignment]
        await _fire(
            hooks.before_sleep,
            RetryDetails(
                name=name,
                attempt=attempt,
                elapsed=now - started,
                delay=delay,
                error=error,
                result=None if error is not None else result,
            ),
        )
        await trio.sleep(delay)


def _sync_clock() -> tuple[float, float, bool]:
    # Plain functions called outside trio read the monotonic clock (see docs/architecture.md).
    if trio.lowlevel.in_trio_run():
        return trio.current_time(), trio.current_effective_deadline(), True
    return time.monotonic(), math.inf, False


def run_plan_sync(
    plan: RetryPlan, rng: random.Random, name: str, hooks: Hooks, call: Callable[[], Any]
) -> Any:
    """The plain-function form of :func:`run_plan_async` (sleeps with :func:`time.sleep`
    outside trio; inside trio only zero delays are retried, as ``retry`` does)."""
    started, _, _ = _sync_clock()
    plan.start(started)
    attempt = 0
    while True:
        attempt += 1
        error: Exception | None = None
        try:
            result = call()
        except Exception as exc:
            now, deadline, in_trio = _sync_clock()
            decision = plan.after_error(
                attempt,
                exc,
                rng=rng,
                now=now,
                started=started,
                deadline=deadline,
                **testing_overrides(),
            )
            if type(decision) is GiveUpReason:
                details = RetryDetails(
                    name=name, attempt=attempt, elapsed=now - started, error=exc, reason=decision
                )
                _fire_sync(hooks.on_giveup, details)
                raise
            if in_trio and decision > 0:  # type: ignore[operator]
                _note_no_sleep(exc, decision)  # type: ignore[arg-type]
                raise
            error = exc
        else:
            now, deadline, in_trio = _sync_clock()
            verdict = plan.after_result(
                attempt,
                result,
                rng=rng,
                now=now,
                started=started,
                deadline=deadline,
                **testing_overrides(),
            )
            if verdict is None:
                _fire_sync(
                    hooks.on_success,
                    RetryDetails(name=name, attempt=attempt, elapsed=now - started, result=result),
                )
                return result
            if type(verdict) is GiveUpReason or (in_trio and verdict > 0):  # type: ignore[operator]
                reason = verdict if type(verdict) is GiveUpReason else GiveUpReason.DEADLINE
                details = RetryDetails(
                    name=name, attempt=attempt, elapsed=now - started, result=result, reason=reason
                )
                _fire_sync(hooks.on_giveup, details)
                return result
            decision = verdict
        delay: float = decision  # type: ignore[assignment]
        _fire_sync(
            hooks.before_sleep,
            RetryDetails(
                name=name,
                attempt=attempt,
                elapsed=now - started,
                delay=delay,
                error=error,
                result=None if error is not None else result,
            ),
        )
        if delay > 0:
            time.sleep(delay)


def plan_decorator(
    plan: RetryPlan, rng: random.Random, hooks: Hooks, *, rule: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The decorator of a ``retry(...)`` or ``Retrier`` that has a plan: each decorated function
    is named (for its hooks' details) after its ``__qualname__``.

    Raises:
        TypeError: (when decorating) a plain function with an async hook.
    """

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        name = qualname_of(fn)
        if callable(fn) and not is_async_callable(fn) and hooks.async_ones():
            raise TypeError(
                f"@{rule} on the plain function {name!r} cannot await its async hook(s) "
                f"{', '.join(hooks.async_ones())}; use plain hooks or an `async def` function"
            )

        async def around_async(call: Callable[[], Awaitable[Any]]) -> Any:
            return await run_plan_async(plan, rng, name, hooks, call)

        def around_sync(call: Callable[[], Any]) -> Any:
            return run_plan_sync(plan, rng, name, hooks, call)

        return decorate(
            fn,
            rule=rule,
            around_async=around_async,
            around_sync=around_sync,
            extra={"retry_schedule": plan.schedule, "retry_plan": plan},
        )

    return decorator


# -- the block form ------------------------------------------------------------------------------


class Attempt:
    """One attempt of a :func:`retrying` block: run its body under ``with attempt:`` (or
    ``async with attempt:``, needed where ``on_giveup`` is async).

    An :class:`Exception` raised in the body is swallowed when it is to be retried (the loop
    then sleeps and hands out the next attempt), else it propagates. A body that ends without
    an error ends the loop. Cancellation and other non-``Exception`` s always propagate.
    """

    __slots__ = ("_block", "_done", "num")

    def __init__(self, block: _RetryingIterator, num: int) -> None:
        self._block = block
        self._done = False
        self.num = num
        """Which attempt this is (1 for the first)."""

    def _exit(self, exc: BaseException | None) -> tuple[bool, RetryDetails | None]:
        if self._done:
            raise RuntimeError("an attempt can be entered only once")
        self._done = True
        return self._block.attempt_ended(self.num, exc)

    def __enter__(self) -> Attempt:
        hooks = self._block.hooks
        if is_async_callable(hooks.on_giveup):
            raise TypeError("`on_giveup` is async: use `async with attempt:`")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        swallow, giveup = self._exit(exc)
        if giveup is not None:
            _fire_sync(self._block.hooks.on_giveup, giveup)
        return swallow

    async def __aenter__(self) -> Attempt:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        swallow, giveup = self._exit(exc)
        if giveup is not None:
            await _fire(self._block.hooks.on_giveup, giveup)
        return swallow

    def __repr__(self) -> str:
        return f"<Attempt {self.num} of {self._block.name!r}>"


class _RetryingIterator:
    __slots__ = (
        "_delay",
        "_error",
        "_failed",
        "_finished",
        "_num",
        "_started",
        "hooks",
        "name",
        "plan",
        "rng",
    )

    def __init__(self, plan: RetryPlan, rng: random.Random, name: str, hooks: Hooks) -> None:
        self.plan, self.rng, self.name, self.hooks = plan, rng, name, hooks
        self._num = 0
        self._started = 0.0
        self._failed = False
        self._finished = False
        self._delay = 0.0
        self._error: BaseException | None = None

    def attempt_ended(
        self, num: int, exc: BaseException | None
    ) -> tuple[bool, RetryDetails | None]:
        # -> (swallow the error?, details for on_giveup or None)
        if exc is None or not isinstance(exc, Exception):
            self._finished = exc is not None
            return False, None
        now = trio.current_time()
        decision = self.plan.after_error(
            num,
            exc,
            rng=self.rng,
            now=now,
            started=self._started,
            deadline=_deadline(),
            **testing_overrides(),
        )
        if type(decision) is GiveUpReason:
            self._finished = True
            details = RetryDetails(
                name=self.name, attempt=num, elapsed=now - self._started, error=exc, reason=decision
            )
            return False, details
        self._failed = True
        self._delay = decision  # type: ignore[assignment]
        self._error = exc
        return True, None

    def __aiter__(self) -> _RetryingIterator:
        return self

    async def __anext__(self) -> Attempt:
        if self._finished:
            raise StopAsyncIteration
        if self._num == 0:
            self._started = trio.current_time()
            self.plan.start(self._started)
        elif not self._failed:
            self._finished = True
            now = trio.current_time()
            await _fire(
                self.hooks.on_success,
                RetryDetails(name=self.name, attempt=self._num, elapsed=now - self._started),
            )
            raise StopAsyncIteration
        else:
            delay, error = self._delay, self._error
            self._failed, self._error = False, None
            now = trio.current_time()
            await _fire(
                self.hooks.before_sleep,
                RetryDetails(
                    name=self.name,
                    attempt=self._num,
                    elapsed=now - self._started,
                    delay=delay,
                    error=error,
                ),
            )
            await trio.sleep(delay)
        self._num += 1
        return Attempt(self, self._num)


class Retrying:
    """The block form of retrying (made by :func:`supervisor.retrying`): each ``async for``
    over it is one call, retried as the options say::

        async for attempt in retrying(max_attempts=3, on=ConnectionError):
            with attempt:
                await connect()

    Each iteration starts afresh (its own first attempt, time limit and budget count).
    """

    __slots__ = ("_hooks", "_name", "_plan", "_rng")

    def __init__(self, plan: RetryPlan, rng: random.Random, name: str, hooks: Hooks) -> None:
        self._plan, self._rng, self._name, self._hooks = plan, rng, name, hooks

    @property
    def plan(self) -> RetryPlan:
        """The pure plan the block follows."""
        return self._plan

    def __aiter__(self) -> AsyncIterator[Attempt]:
        return _RetryingIterator(self._plan, self._rng, self._name, self._hooks)

    def __repr__(self) -> str:
        return f"<Retrying {self._name!r}, max_attempts={self._plan.schedule.max_attempts}>"
