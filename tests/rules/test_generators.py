"""Decorators on generator functions: the iteration is what is guarded, or decorating is refused
at once with a message that says why."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any

import pytest
import trio
import trio.lowlevel

from supervisor import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    LinearBackoff,
    RateLimitExceeded,
    Retrier,
    bulkhead,
    cache_fallback,
    circuit_breaker,
    default_fallback,
    degraded_fallback,
    fallback,
    retry,
    throttle,
    timeout,
)


class Boom(Exception):
    """The failure of a generator under test."""


def numbers(fail_at: int | None = None, count: int = 3) -> Iterator[int]:
    """Yields 0, 1, 2 (``count`` of them); raises Boom instead of item ``fail_at``."""
    for index in range(count):
        if index == fail_at:
            raise Boom(index)
        yield index


# -- the circuit breaker: the whole iteration is one call ---------------------------------------


def test_a_breaker_counts_failures_raised_while_a_generator_is_iterated() -> None:
    """Two iterations that fail midway open a threshold-2 breaker; the third is refused at its
    first step, before the generator runs."""
    runs: list[str] = []

    @circuit_breaker(failure_threshold=2, timeout=60)
    def items(fail_at: int | None) -> Iterator[int]:
        runs.append("run")
        yield from numbers(fail_at)

    assert inspect.isgeneratorfunction(items)
    for _ in range(2):
        iterator = items(1)
        assert next(iterator) == 0
        with pytest.raises(Boom):
            next(iterator)
    breaker: CircuitBreaker = items.breaker  # type: ignore[attr-defined]
    assert breaker.state is CircuitState.OPEN
    refused = items(None)  # making the generator does nothing yet
    with pytest.raises(CircuitOpenError):
        next(refused)
    assert runs == ["run", "run"]


def test_a_clean_exhaustion_is_a_success_and_an_early_close_counts_nothing() -> None:
    """Running to the end resets the failure run; closing early leaves it as it was; the
    generator's return value and ``send`` pass through."""

    @circuit_breaker(failure_threshold=3)
    def echo(fail: bool) -> Generator[Any, Any, str]:
        received = yield "ready"
        if fail:
            raise Boom(received)
        yield received
        return "done"

    breaker: CircuitBreaker = echo.breaker  # type: ignore[attr-defined]
    failing = echo(True)
    next(failing)
    with pytest.raises(Boom):
        failing.send("x")
    assert breaker.failure_count == 1
    early = echo(False)
    next(early)
    early.close()
    assert breaker.failure_count == 1
    clean = echo(False)
    assert next(clean) == "ready"
    assert clean.send("hello") == "hello"
    with pytest.raises(StopIteration) as stop:
        next(clean)
    assert stop.value.value == "done"
    assert breaker.failure_count == 0
    assert breaker.statistics().successes == 1


async def test_a_breaker_guards_an_async_generator_the_same_way() -> None:
    """Failures while iterating count; an open breaker refuses at the first ``__anext__``."""

    @circuit_breaker(failure_threshold=1, timeout=60)
    async def stream(fail: bool) -> AsyncIterator[int]:
        yield 1
        await trio.lowlevel.checkpoint()
        if fail:
            raise Boom
        yield 2

    assert inspect.isasyncgenfunction(stream)
    assert [item async for item in stream(False)] == [1, 2]
    with pytest.raises(Boom):
        async for _ in stream(True):
            pass
    assert stream.breaker.state is CircuitState.OPEN  # type: ignore[attr-defined]
    with pytest.raises(CircuitOpenError):
        await stream(False).__anext__()


async def test_athrow_and_asend_reach_the_inner_async_generator() -> None:
    """The consumer's sends and throws are the inner generator's; a thrown error it does not
    handle ends the iteration and counts as a failure."""
    seen: list[Any] = []

    @CircuitBreaker("b", failure_threshold=5)
    async def talk() -> AsyncIterator[Any]:
        while True:
            try:
                seen.append((yield len(seen)))
            except KeyError as exc:
                seen.append(f"caught {exc!r}")

    conversation = talk()
    assert await conversation.__anext__() == 0
    assert await conversation.asend("a") == 1
    assert await conversation.athrow(KeyError("k")) == 2
    with pytest.raises(Boom):
        await conversation.athrow(Boom())
    assert seen == ["a", "caught KeyError('k')"]
    assert talk.breaker.failure_count == 1  # type: ignore[attr-defined]


def test_breaker_call_refuses_a_generator_function() -> None:
    """``call`` would run none of it: TypeError pointing at the decorator."""
    with pytest.raises(TypeError, match=r"call_sync\(\) runs a function to its result"):
        CircuitBreaker("b").call_sync(numbers)


# -- retry: a failure before the first item is retried ------------------------------------------


async def test_retry_reruns_an_async_generator_that_fails_before_its_first_item() -> None:
    """Two starts fail, the third yields everything; a failure after an item is not retried."""
    starts: list[int] = []

    @retry(max_attempts=3, initial_delay=0, jitter=False)
    async def flaky(fail_after_first: bool) -> AsyncIterator[int]:
        starts.append(1)
        if len(starts) < 3:
            raise Boom("not yet")
        yield 1
        if fail_after_first:
            raise Boom("midway")
        yield 2

    assert inspect.isasyncgenfunction(flaky)
    assert [item async for item in flaky(False)] == [1, 2]
    assert len(starts) == 3
    with pytest.raises(Boom, match="midway"):
        async for _ in flaky(True):
            pass
    assert len(starts) == 4  # the midway failure was not retried


def test_retry_reruns_a_generator_that_fails_before_its_first_item() -> None:
    """The same for a plain generator function outside trio (delays of 0)."""
    starts: list[int] = []

    @retry(max_attempts=4, initial_delay=0, jitter=False)
    def flaky() -> Iterator[int]:
        starts.append(1)
        if len(starts) < 3:
            raise Boom
        yield from numbers()

    assert list(flaky()) == [0, 1, 2]
    assert len(starts) == 3


async def test_a_retrier_decorates_generators_but_execute_refuses_them() -> None:
    """``Retrier(...)(agen)`` retries the start; ``execute(agen)`` is a TypeError."""
    retrier = Retrier(LinearBackoff(delay=0, max_attempts=2))
    tries: list[int] = []

    @retrier
    async def once_flaky() -> AsyncIterator[int]:
        tries.append(1)
        if len(tries) == 1:
            raise Boom
        yield 7

    assert [item async for item in once_flaky()] == [7]
    with pytest.raises(TypeError, match=r"execute\(\) runs an operation to its result"):
        await retrier.execute(once_flaky)


async def test_an_empty_generator_under_retry_is_a_clean_success() -> None:
    """A generator that ends at once yields nothing and is not retried."""
    starts: list[int] = []

    @retry(max_attempts=3, initial_delay=0)
    async def empty() -> AsyncIterator[int]:
        starts.append(1)
        return
        yield  # pragma: no cover -- makes this an async generator

    assert [item async for item in empty()] == []
    assert starts == [1]


# -- the throttle admits the start of an iteration ----------------------------------------------


async def test_a_throttle_admits_an_async_generator_when_its_iteration_starts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``max_calls=1`` per 10 s: a second iteration started at once is refused."""

    @throttle(max_calls=1, period=10, on_limit="raise")
    async def ticks() -> AsyncIterator[int]:
        yield 1

    pending = ticks()  # not started: not counted
    assert [item async for item in ticks()] == [1]
    with pytest.raises(RateLimitExceeded):
        await pending.__anext__()
    await trio.sleep(10)
    assert [item async for item in ticks()] == [1]


# -- refused at decoration time ----------------------------------------------------------------


async def agen() -> AsyncIterator[int]:
    """An async generator function."""
    yield 1


def gen() -> Iterator[int]:
    """A generator function."""
    yield 1


FALLBACK_REASON = (
    "items already handed out cannot be taken back, so a failure while iterating has nothing to "
    "fall back to; decorate a function that returns the collected items"
)
TIMEOUT_REASON = (
    "its deadline would span the yields, and a cancel scope must not stay open across a yield; "
    "put the timeout on the calls inside it"
)
BULKHEAD_REASON = (
    "a slot would be held between its items for as long as the consumer keeps it open; guard the "
    "calls inside it, or an `async def` that collects the items"
)


@pytest.mark.parametrize(
    ("decorator", "rule", "reason"),
    [
        (fallback(0), "fallback", FALLBACK_REASON),
        (default_fallback(0), "fallback", FALLBACK_REASON),
        (degraded_fallback(lambda: 0), "degraded_fallback", FALLBACK_REASON),
        (cache_fallback(), "cache_fallback", FALLBACK_REASON),
        (timeout(1), "timeout", TIMEOUT_REASON),
        (bulkhead(2), "bulkhead", BULKHEAD_REASON),
    ],
)
@pytest.mark.parametrize(
    ("fn", "what"), [(agen, "async generator function"), (gen, "generator function")]
)
def test_rules_without_a_clear_meaning_for_an_iteration_refuse_it(
    decorator: Callable[[Any], Any], rule: str, reason: str, fn: Any, what: str
) -> None:
    """The message names the rule, the kind of function, the function and the reason."""
    with pytest.raises(TypeError) as info:
        decorator(fn)
    assert str(info.value) == f"@{rule} cannot guard the {what} {fn.__qualname__!r}: {reason}"


def test_a_throttle_refuses_a_plain_generator_function() -> None:
    """A throttle waits, so it needs trio: only async generator functions."""
    with pytest.raises(TypeError) as info:
        throttle(max_calls=1, period=1)(gen)
    assert str(info.value) == (
        "@throttle cannot guard the generator function 'gen': it needs trio, so only an async "
        "generator function (`async def` with `yield`)"
    )
