"""Success-path overhead of the rules beyond API.md, beside the plain rules they extend.

Each new option is measured against a bare call in the same loop and run (rounds interleaved),
and shown beside the plain rule's overhead measured the same way: the ratio says how much the
option costs over the default path (which it never touches: a breaker or retry given none of
these options keeps its plain core and loop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import actors
import supervisor
from supervisor.tree._rule_specs import BreakerSpec, RetrySpec
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ServiceSpec, SupervisorSpec

from ._harness import Figure, Report, call_loop, paired_async

SECTION = "rules+"
_LONG = 3600.0


async def _bare() -> int:
    return 1


def _block(*, inline: bool) -> Callable[[], Awaitable[int]]:
    made = supervisor.retrying(max_attempts=3, on=OSError)

    async def block() -> int:
        retrying = supervisor.retrying(max_attempts=3, on=OSError) if inline else made
        async for attempt in retrying:
            with attempt:
                return 1
        return 0  # pragma: no cover - the block returns from its first attempt

    return block


def _breakers() -> dict[str, Callable[[], Awaitable[int]]]:
    cb = supervisor.circuit_breaker
    return {
        "window: last 100 calls": cb(window=supervisor.RateWindow(size=100)),
        "window: last 60 s": cb(window=supervisor.RateWindow(duration=60.0)),
        "window + slow calls": cb(
            window=supervisor.RateWindow(size=100, slow_call_rate=0.5, slow_call_duration=_LONG)
        ),
        "open_backoff": cb(open_backoff=supervisor.OpenBackoff()),
        "exclude + is_failure_result": cb(
            exclude=(KeyError,), is_failure_result=lambda r: r is None
        ),
    }  # type: ignore[return-value]


def _retries() -> dict[str, Callable[[], Awaitable[int]]]:
    retry = supervisor.retry
    return {
        "on=predicate": retry(on=lambda e: True)(_bare),
        "retry_on_result": retry(retry_on_result=lambda r: r is None)(_bare),
        "total_timeout": retry(total_timeout=_LONG)(_bare),
        "budget": retry(budget=supervisor.RetryBudget())(_bare),
        "on_success hook": retry(on_success=lambda details: None)(_bare),
        "retrying block, made once": _block(inline=False),
        "retrying block, made per call": _block(inline=True),
    }


class _Echo(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        return message


def _services() -> SupervisorSpec:
    plain = ServiceSpec(
        name="plain",
        factory=_Echo,
        breaker=BreakerSpec(failure_threshold=5),
        retry=RetrySpec(max_attempts=3),
    )
    beyond = ServiceSpec(
        name="beyond",
        factory=_Echo,
        breaker=BreakerSpec(window=supervisor.RateWindow(size=100)),
        retry=RetrySpec(max_attempts=3, budget=supervisor.RetryBudgetConfig()),
    )
    return SupervisorSpec(name="bench", children=(plain, beyond))


async def _service_figure(report: Report, ops: int) -> None:
    async with run_tree(_services()) as tree:
        plain, beyond = tree.service("plain"), tree.service("beyond")

        async def call_plain() -> Any:
            return await plain.call(1)

        async def call_beyond() -> Any:
            return await beyond.call(1)

        ours_us, plain_us = await paired_async(
            call_loop(call_beyond), call_loop(call_plain), ops=max(1, ops // 10)
        )
    report.add(
        Figure(
            section=SECTION,
            name="guarded call: failure-rate breaker + retry budget",
            ours=ours_us,
            baseline=plain_us,
            baseline_name="consecutive breaker + plain retry",
            unit="us",
            target="per call, metrics on",
        )
    )


async def run(report: Report, *, quick: bool) -> None:
    """Add this module's figures to ``report``."""
    ops = 5_000 if quick else 50_000
    bare = call_loop(_bare)
    plain: dict[str, float] = {}
    for rule, fn in (
        ("@circuit_breaker", supervisor.circuit_breaker(failure_threshold=5)(_bare)),
        ("@retry", supervisor.retry(max_attempts=3)(_bare)),
    ):
        ours_us, bare_us = await paired_async(call_loop(fn), bare, ops=ops)
        plain[rule] = ours_us - bare_us
    groups = (
        ("@circuit_breaker", {name: make(_bare) for name, make in _breakers().items()}),  # type: ignore[operator]
        ("@retry", _retries()),
    )
    for rule, variants in groups:
        report.add(
            Figure(
                section=SECTION,
                name=f"{rule} (plain) success overhead",
                ours=plain[rule],
                baseline=None,
                unit="us",
                target="the default path",
            )
        )
        for name, fn in variants.items():
            ours_us, bare_us = await paired_async(call_loop(fn), bare, ops=ops)
            report.add(
                Figure(
                    section=SECTION,
                    name=f"{rule}({name}) success overhead",
                    ours=ours_us - bare_us,
                    baseline=plain[rule],
                    baseline_name=f"plain {rule}",
                    unit="us",
                    target=f"bare call {bare_us:.3f} us",
                )
            )
    await _service_figure(report, ops)
