"""Retrying beyond API.md, through ``retry``, ``Retrier`` and the block form ``retrying``, on
trio's mock clock: result and error predicates, hooks as frozen data, a total time limit, and
a retry budget."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from supervisor import (
    ExponentialBackoff,
    GiveUpReason,
    Retrier,
    RetryBudget,
    RetryDetails,
    retry,
    retrying,
)


def _fixed(**options: Any) -> dict[str, Any]:
    return {"initial_delay": 1.0, "backoff_factor": 2.0, "jitter": False, **options}


def test_plain_retry_keeps_the_plain_loop() -> None:
    """A retry given none of the new options has no plan: the plain loop runs it."""

    async def fn() -> None:
        pass

    assert not hasattr(retry()(fn), "retry_plan")
    assert hasattr(retry(total_timeout=1.0)(fn), "retry_plan")


async def test_retry_on_result_sleeps_and_returns_the_last_result(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A result the predicate rejects is retried after the usual delays; when attempts run out
    the last result is returned."""
    starts: list[float] = []

    @retry(max_attempts=3, retry_on_result=lambda r: r is None, **_fixed())
    async def poll() -> None:
        starts.append(trio.current_time())

    begin = trio.current_time()
    assert await poll() is None
    assert [t - begin for t in starts] == [0.0, 1.0, 3.0]

    answers = iter([None, "ready"])

    @retry(max_attempts=5, retry_on_result=lambda r: r is None, **_fixed())
    async def poll_ready() -> str | None:
        return next(answers)

    assert await poll_ready() == "ready"


async def test_on_predicate_narrows_what_is_retried(autojump_clock: trio.testing.MockClock) -> None:
    """`on` takes predicates and types; an error none of them matches propagates at once."""
    calls: list[str] = []

    @retry(max_attempts=5, on=[TimeoutError, lambda e: "503" in str(e)], **_fixed())
    async def call(error: Exception) -> None:
        calls.append(str(error))
        if len(calls) < 3:
            raise error

    await call(OSError("HTTP 503"))
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(OSError, match="404"):
        await call(OSError("HTTP 404"))
    assert calls == ["HTTP 404"]


async def test_hooks_get_frozen_details(autojump_clock: trio.testing.MockClock) -> None:
    """before_sleep, on_giveup and on_success (plain or async) each get a RetryDetails."""
    seen: list[tuple[str, RetryDetails]] = []

    async def before_sleep(details: RetryDetails) -> None:
        await trio.lowlevel.checkpoint()
        seen.append(("sleep", details))

    def on_giveup(details: RetryDetails) -> None:
        seen.append(("giveup", details))

    def on_success(details: RetryDetails) -> None:
        seen.append(("success", details))

    failures = iter([ConnectionError("a"), ConnectionError("b"), None])

    @retry(
        max_attempts=3,
        before_sleep=before_sleep,
        on_giveup=on_giveup,
        on_success=on_success,
        **_fixed(),
    )
    async def flaky() -> str:
        error = next(failures)
        if error is not None:
            raise error
        return "ok"

    assert await flaky() == "ok"
    assert [kind for kind, _ in seen] == ["sleep", "sleep", "success"]
    first, second, done = (details for _, details in seen)
    assert (first.attempt, first.delay, first.elapsed, str(first.error)) == (1, 1.0, 0.0, "a")
    assert (second.attempt, second.delay, second.elapsed) == (2, 2.0, 1.0)
    assert (done.attempt, done.elapsed, done.result, done.error) == (3, 3.0, "ok", None)
    assert done.name.endswith("flaky")
    with pytest.raises(AttributeError):
        done.attempt = 9  # type: ignore[misc]
    seen.clear()

    @retry(max_attempts=2, on_giveup=on_giveup, **_fixed())
    async def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await down()
    assert [(kind, d.attempt, d.reason) for kind, d in seen] == [
        ("giveup", 2, GiveUpReason.ATTEMPTS)
    ]


async def test_total_timeout_stops_retrying(autojump_clock: trio.testing.MockClock) -> None:
    """No sleep may end at or after `total_timeout` from the first attempt; a tighter caller
    deadline wins."""
    reasons: list[GiveUpReason | None] = []
    starts: list[float] = []

    @retry(
        max_attempts=10, total_timeout=7.0, on_giveup=lambda d: reasons.append(d.reason), **_fixed()
    )
    async def down() -> None:
        starts.append(trio.current_time())
        raise ConnectionError

    begin = trio.current_time()
    with pytest.raises(ConnectionError):
        await down()
    # Sleeps of 1, 2 end at 1, 3; the next (4 s) would end at 7 = the limit: stop at 3.
    assert [t - begin for t in starts] == [0.0, 1.0, 3.0]
    assert reasons == [GiveUpReason.TIME_LIMIT]
    with trio.move_on_after(2.5):
        with pytest.raises(ConnectionError):
            await down()
    assert reasons[-1] is GiveUpReason.DEADLINE


async def test_retry_budget_refuses_retry_storms(autojump_clock: trio.testing.MockClock) -> None:
    """With 20% of first attempts plus 1/s over 10 s, 50 failing callers at once get 10 + 10
    retries; the rest raise at once, counted as refused."""
    budget = RetryBudget(ratio=0.2, min_per_second=1.0, window=10.0)
    attempts = 0

    @retry(max_attempts=2, budget=budget, **_fixed())
    async def down() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionError

    async def caller() -> None:
        with pytest.raises(ConnectionError):
            await down()

    begin = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(caller)
    assert attempts == 50 + 20
    stats = budget.statistics(trio.current_time())
    assert (stats.spent, stats.refused) == (20, 30)
    assert trio.current_time() - begin == 1.0  # refused callers did not sleep


async def test_block_form_retries_a_block(autojump_clock: trio.testing.MockClock) -> None:
    """`async for attempt in retrying(...)` with `with attempt:` retries the block, sleeping
    between attempts; a success ends the loop."""
    begin = trio.current_time()
    seen: list[tuple[int, float]] = []
    async for attempt in retrying(max_attempts=4, on=ConnectionError, **_fixed()):
        with attempt:
            seen.append((attempt.num, trio.current_time() - begin))
            if attempt.num < 3:
                raise ConnectionError
    assert seen == [(1, 0.0), (2, 1.0), (3, 3.0)]


async def test_block_form_propagates_when_it_gives_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An error not to retry, or the last one, propagates out of the loop unchanged; an async
    on_giveup needs `async with attempt:`."""
    given_up: list[RetryDetails] = []
    tries = 0

    async def on_giveup(details: RetryDetails) -> None:
        given_up.append(details)

    async def not_retried() -> None:
        async for attempt in retrying(on=ConnectionError, **_fixed()):
            with attempt:
                raise KeyError("k")

    async def exhausted() -> None:
        nonlocal tries
        async for attempt in retrying(max_attempts=2, on_giveup=on_giveup, **_fixed()):
            async with attempt:
                tries += 1
                raise ConnectionError

    async def plain_with() -> None:
        async for attempt in retrying(on_giveup=on_giveup):
            with attempt:
                pass

    with pytest.raises(KeyError):
        await not_retried()
    with pytest.raises(ConnectionError):
        await exhausted()
    assert tries == 2
    assert [(d.attempt, d.reason) for d in given_up] == [(2, GiveUpReason.ATTEMPTS)]
    with pytest.raises(TypeError, match="use `async with attempt:`"):
        await plain_with()


async def test_block_form_never_swallows_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A cancelled block or sleep propagates trio.Cancelled at once."""
    tries = 0
    done = False

    async def block() -> None:
        nonlocal tries, done
        async for attempt in retrying(max_attempts=10, **_fixed()):
            with attempt:
                tries += 1
                raise ConnectionError
        done = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(block)
        await trio.sleep(1.5)
        nursery.cancel_scope.cancel()  # no deadline: the sleep until 3 is cancelled at 1.5
    assert (tries, done) == (2, False)


async def test_retrier_takes_the_same_options(autojump_clock: trio.testing.MockClock) -> None:
    """Retrier(policy, ..., retry_on_result=..., budget=...) follows the same plan."""
    results = iter([0, 0, 7])
    retrier = Retrier(
        ExponentialBackoff(initial_delay=0.5, jitter=False),
        max_attempts=5,
        retry_on_result=lambda r: r == 0,
    )
    begin = trio.current_time()
    assert await retrier.execute(lambda: next(results)) == 7
    assert trio.current_time() - begin == 1.5

    @retrier
    async def never() -> int:
        return 0

    assert await never() == 0
    assert trio.current_time() - begin == 1.5 + 0.5 + 1 + 2 + 4


def test_plain_functions_outside_trio() -> None:
    """A plain function keeps the options outside trio; an async hook cannot be awaited there
    and is refused when decorating."""
    answers = iter([None, None, 3])

    @retry(max_attempts=3, initial_delay=0.0, retry_on_result=lambda r: r is None)
    def read() -> int | None:
        return next(answers)

    assert read() == 3

    async def hook(details: RetryDetails) -> None:
        pass

    with pytest.raises(TypeError, match="cannot await its async hook"):
        retry(before_sleep=hook)(lambda: None)


def test_bad_options_raise_when_retry_is_called() -> None:
    """Bad new options raise at `retry(...)`, naming the option."""
    with pytest.raises(TypeError, match="`before_sleep` must be callable"):
        retry(before_sleep=3)
    with pytest.raises(TypeError, match="`budget` must be a RetryBudget"):
        retry(budget=0.2)
    with pytest.raises(ValueError, match=r"`total_timeout` must be a number > 0 \(got -1\)"):
        retry(total_timeout=-1)
    with pytest.raises(
        ValueError, match=r"`total_timeout` must be a finite number > 0 \(got inf\)"
    ):
        retrying(total_timeout=math.inf)
