"""Guarded services in a supervision tree against a raw trio request/reply, in the same run."""

from __future__ import annotations

import time
from typing import Any

import trio

import actors
import supervisor
from supervisor._specs import (
    BreakerSpec,
    BulkheadSpec,
    FallbackSpec,
    RetrySpec,
    ServiceSpec,
    SupervisorSpec,
    ThrottleSpec,
)
from supervisor._tree import run_tree

from ._harness import Figure, Report, paired_async

SECTION = "tree"
_LONG = 3600.0


class _Echo(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crash")
        return message


class _RawServer:
    """A task serving requests from a memory channel, replying through a per-request trio.Event."""

    def __init__(self) -> None:
        self.send, self._receive = trio.open_memory_channel[tuple[Any, list[Any], trio.Event]](1000)

    async def serve(self) -> None:
        async for message, reply, done in self._receive:
            reply.append(message)
            done.set()

    async def loop(self, n: int) -> None:
        for i in range(n):
            reply: list[Any] = []
            done = trio.Event()
            await self.send.send((i, reply, done))
            await done.wait()


def _spec() -> SupervisorSpec:
    every_rule = ServiceSpec(
        name="guarded",
        factory=_Echo,
        bulkhead=BulkheadSpec(max_concurrent=1, max_queued=100),
        breaker=BreakerSpec(failure_threshold=5, timeout=30.0),
        retry=RetrySpec(max_attempts=3),
        throttle=ThrottleSpec(max_calls=10**9, period=_LONG),
        timeout=_LONG,
        fallback=FallbackSpec(default=None),
    )
    open_breaker = ServiceSpec(
        name="open", factory=_Echo, breaker=BreakerSpec(failure_threshold=1, timeout=_LONG)
    )
    crashing = ServiceSpec(name="crashing", factory=_Echo)
    return SupervisorSpec(
        name="bench", max_restarts=10**9, within=1.0, children=(every_rule, open_breaker, crashing)
    )


async def run(report: Report, *, quick: bool) -> None:
    """Add this module's figures to ``report``."""
    ops = 2_000 if quick else 20_000
    raw = _RawServer()
    async with trio.open_nursery() as nursery, run_tree(_spec()) as tree:
        nursery.start_soon(raw.serve)
        guarded = tree.service("guarded")
        opened = tree.service("open")
        crashing = tree.lookup("crashing")
        breaker = opened.breaker
        if breaker is None:
            raise RuntimeError("the bench spec has a breaker on 'open'")
        breaker.force_open()

        async def guarded_calls(n: int) -> None:
            for i in range(n):
                await guarded.call(i)

        async def refused_calls(n: int) -> None:
            for i in range(n):
                try:
                    await opened.call(i)
                except supervisor.CircuitOpenError:
                    pass

        guarded_us, raw_us = await paired_async(guarded_calls, raw.loop, ops=ops)
        refused_us, raw2_us = await paired_async(refused_calls, raw.loop, ops=ops)

        restarts = max(200, ops // 20)
        start = time.perf_counter()
        for _ in range(restarts):
            try:
                await crashing.ask("crash")
            except RuntimeError:
                pass
            await crashing.ask("ok")  # served by the restarted instance (the mailbox survived)
        restart_us = (time.perf_counter() - start) / restarts * 1e6
        raw.send.close()
    report.add(
        Figure(
            section=SECTION,
            name="guarded call, every rule on",
            ours=guarded_us,
            baseline=raw_us,
            unit="us",
            baseline_name="raw round trip",
            target="ratio <= 3.0",
            passed=guarded_us <= 3 * raw_us,
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name="refused call, open breaker",
            ours=refused_us,
            baseline=raw2_us,
            unit="us",
            baseline_name="raw round trip",
            target="< 1 raw round trip",
            passed=refused_us < raw2_us,
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name="crash + restart + next ask served",
            ours=restart_us,
            baseline=raw_us,
            unit="us",
            baseline_name="raw round trip",
        )
    )
