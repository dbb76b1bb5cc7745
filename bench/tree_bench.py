"""Guarded services in a supervision tree against a raw trio request/reply, in the same run."""

from __future__ import annotations

import io
import time
from typing import Any

import trio
from rich.console import Console

import actors
import supervisor
from supervisor.tree._limit_specs import AdaptiveLimitSpec, HedgeSpec
from supervisor.tree._rule_specs import (
    BreakerSpec,
    BulkheadSpec,
    FallbackSpec,
    RetrySpec,
    ThrottleSpec,
)
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ServiceSpec, SupervisorSpec

from ._baselines import RawServer
from ._harness import Figure, Report, paired_async

SECTION = "tree"
_LONG = 3600.0


class _Echo(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crash")
        return message


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
    hedged = ServiceSpec(
        name="hedged",
        factory=_Echo,
        bulkhead=BulkheadSpec(max_concurrent=2, max_queued=100),
        hedge=HedgeSpec(delay=_LONG),
    )
    adaptive = ServiceSpec(
        name="adaptive",
        factory=_Echo,
        bulkhead=BulkheadSpec(max_concurrent=10, max_queued=100, adaptive=AdaptiveLimitSpec()),
    )
    plain = ServiceSpec(
        name="plain", factory=_Echo, bulkhead=BulkheadSpec(max_concurrent=10, max_queued=100)
    )
    return SupervisorSpec(
        name="bench",
        max_restarts=10**9,
        within=1.0,
        children=(every_rule, open_breaker, crashing, hedged, adaptive, plain),
    )


def _plain_spec() -> SupervisorSpec:
    every_rule = _spec().children[0]
    return SupervisorSpec(name="watched", children=(every_rule,))


async def _throughput(*, metrics: bool, monitored: bool, seconds: float, callers: int) -> float:
    """Requests per second answered by one guarded service, ``callers`` tasks calling in a loop
    for ``seconds`` of real time, with or without metrics and a monitor drawing every 0.1 s."""
    answered = 0
    async with run_tree(_plain_spec(), metrics=metrics) as tree:
        service = tree.service("guarded")

        async def caller() -> None:
            nonlocal answered
            while True:
                await service.call(answered)
                answered += 1

        sink = Console(file=io.StringIO(), width=120)
        with trio.move_on_after(seconds):
            async with trio.open_nursery() as nursery:
                if monitored:
                    nursery.start_soon(_watch, tree, sink)
                for _ in range(callers):
                    nursery.start_soon(caller)
    return answered / seconds


async def _watch(tree: Any, console: Console) -> None:
    async with supervisor.monitor(tree, interval=0.1, console=console):
        await trio.sleep_forever()


async def _monitor_cost(report: Report, *, quick: bool) -> None:
    seconds = 0.5 if quick else 2.0
    rates: dict[tuple[bool, bool], list[float]] = {}
    for _ in range(3):  # interleaved, medians
        for key in ((False, False), (True, False), (True, True)):
            rates.setdefault(key, []).append(
                await _throughput(metrics=key[0], monitored=key[1], seconds=seconds, callers=8)
            )
    bare, metered, watched = (
        sorted(rates[key])[1] for key in ((False, False), (True, False), (True, True))
    )
    report.add(
        Figure(
            section=SECTION,
            name="requests/s, metrics on (vs off)",
            ours=metered,
            baseline=bare,
            unit="/s",
            baseline_name="metrics off",
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name="requests/s, monitor drawing every 0.1 s",
            ours=watched,
            baseline=metered,
            unit="/s",
            baseline_name="no monitor",
        )
    )


async def run(report: Report, *, quick: bool) -> None:
    """Add this module's figures to ``report``."""
    ops = 2_000 if quick else 20_000
    raw = RawServer()
    async with (
        trio.open_nursery() as nursery,
        run_tree(_spec()) as tree,
        run_tree(_spec(), metrics=False) as unwatched,
    ):
        nursery.start_soon(raw.serve)
        guarded = tree.service("guarded")
        guarded_off = unwatched.service("guarded")
        plain = tree.service("plain")
        opened = tree.service("open")
        crashing = tree.lookup("crashing")
        breaker = opened.breaker
        if breaker is None:
            raise RuntimeError("the bench spec has a breaker on 'open'")
        breaker.force_open()

        def calls(service: Any) -> Any:
            async def loop(n: int) -> None:
                for i in range(n):
                    await service.call(i)

            return loop

        async def refused_calls(n: int) -> None:
            for i in range(n):
                try:
                    await opened.call(i)
                except supervisor.CircuitOpenError:
                    pass

        guarded_us, raw_us = await paired_async(calls(guarded), raw.loop, ops=ops)
        off_us, raw_off_us = await paired_async(calls(guarded_off), raw.loop, ops=ops)
        plain_us, raw_plain_us = await paired_async(calls(plain), raw.loop, ops=ops)
        refused_us, raw2_us = await paired_async(refused_calls, raw.loop, ops=ops)
        new_rules: list[tuple[str, float, float]] = []
        for name in ("plain", "hedged", "adaptive"):
            service = tree.service(name)

            async def calls(n: int, service: Any = service) -> None:
                for i in range(n):
                    await service.call(i)

            new_rules.append((name, *await paired_async(calls, raw.loop, ops=ops)))

        restarts = max(200, ops // 20)
        start = time.perf_counter()
        for _ in range(restarts):
            try:
                await crashing.ask("crash")
            except RuntimeError:
                pass
            await crashing.ask("ok")  # served by the restarted instance (the mailbox survived)
        restart_us = (time.perf_counter() - start) / restarts * 1e6
        raw.close()
    report.add(
        Figure(
            section=SECTION,
            name="guarded call, every rule on, metrics on",
            ours=guarded_us,
            baseline=raw_us,
            unit="us",
            baseline_name="raw round trip",
            target="ratio <= 1.5",
            passed=guarded_us <= 1.5 * raw_us,
            row=3,
            title="guarded call, every rule on, metrics on",
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name="guarded call, every rule on, metrics off",
            ours=off_us,
            baseline=raw_off_us,
            unit="us",
            baseline_name="raw round trip",
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name="guarded call, no rules",
            ours=plain_us,
            baseline=raw_plain_us,
            unit="us",
            baseline_name="raw round trip",
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
            target="<= 1.5 us",
            passed=refused_us <= 1.5,
            row=2,
            title="refused guarded-service call, open breaker",
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
    labels = {
        "plain": "guarded call, bulkhead only",
        "hedged": "guarded call, hedged (never due)",
        "adaptive": "guarded call, adaptive bulkhead",
    }
    for name, ours_us, base_us in new_rules:
        report.add(
            Figure(
                section=SECTION,
                name=labels[name],
                ours=ours_us,
                baseline=base_us,
                unit="us",
                baseline_name="raw round trip",
            )
        )
    await _monitor_cost(report, quick=quick)
