"""Success-path overhead and refusal cost of the rules, beside the peers users would otherwise pick.

Overhead = (time per wrapped call) - (time per bare call), both measured in the same event loop and
run, rounds interleaved. trio peers run under trio; asyncio-only peers (aiobreaker, purgatory,
aiolimiter) run in their own asyncio loop against an asyncio bare call; pybreaker is synchronous and
is measured on a plain function against a plain bare call.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib.util
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing

import supervisor

from ._baselines import RawServer
from ._harness import Figure, Report, asyncio_pause, call_loop, paired_async, paired_sync
from ._window_memory import window_memory

SECTION = "rules"
_LONG = 3600.0  # windows and timeouts far longer than any run, so nothing trips


async def _bare() -> int:
    return 1


def _bare_sync() -> int:
    return 1


def _ours_stack() -> Callable[[], Awaitable[int]]:
    @supervisor.fallback(default_value=0)
    @supervisor.circuit_breaker(failure_threshold=5, timeout=30.0)
    @supervisor.retry(max_attempts=3, initial_delay=0.1)
    @supervisor.throttle(max_calls=10**9, period=_LONG)
    @supervisor.bulkhead(max_concurrent=10)
    @supervisor.timeout(seconds=_LONG)
    async def stacked() -> int:
        return 1

    return stacked


def _ours() -> dict[str, Callable[[], Awaitable[int]]]:
    return {
        "@circuit_breaker": supervisor.circuit_breaker(failure_threshold=5)(_bare),
        "@retry": supervisor.retry(max_attempts=3)(_bare),
        "@timeout": supervisor.timeout(seconds=_LONG)(_bare),
        "@throttle": supervisor.throttle(max_calls=10**9, period=_LONG)(_bare),
        "@bulkhead": supervisor.bulkhead(max_concurrent=10)(_bare),
        "@fallback": supervisor.fallback(default_value=0)(_bare),
        "all of them stacked": _ours_stack(),
    }


def _new_rules() -> dict[str, Callable[[], Awaitable[int]]]:
    """Rules added beside the contract's: the limiter and the adaptive bulkhead (hedging is
    measured against the nursery and task it needs, below)."""
    limiter = supervisor.RateLimiter(10**9, _LONG)

    async def limited() -> int:
        async with limiter:
            return 1

    return {
        "RateLimiter (async with)": limited,
        "RateLimiter (@limiter)": supervisor.RateLimiter(10**9, _LONG)(_bare),
        "@adaptive_bulkhead": supervisor.adaptive_bulkhead(max_limit=10)(_bare),
    }


async def _nursery_and_task() -> None:
    """Raw trio's least for running an attempt as a task: a nursery and one spawned task."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_bare)


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _trio_peers() -> dict[str, tuple[str, Callable[[], Awaitable[Any]]]]:
    peers: dict[str, tuple[str, Callable[[], Awaitable[Any]]]] = {}
    if _have("circuitbreaker"):
        import circuitbreaker

        peers["circuitbreaker"] = ("breaker", circuitbreaker.circuit(failure_threshold=5)(_bare))
    if _have("stamina"):
        import stamina

        peers["stamina"] = ("retry", stamina.retry(on=Exception, attempts=3)(_bare))
    if _have("backoff"):
        import backoff

        peers["backoff"] = (
            "retry",
            backoff.on_exception(backoff.expo, Exception, max_tries=3)(_bare),
        )
    if _have("tenacity"):
        import tenacity

        peers["tenacity"] = (
            "retry",
            tenacity.retry(stop=tenacity.stop_after_attempt(3), sleep=trio.sleep)(_bare),
        )
    return peers


async def _fail_after_bare() -> int:
    with trio.fail_after(_LONG):
        return await _bare()


async def _success_overheads(report: Report, ops: int) -> dict[str, float]:
    bare = call_loop(_bare)
    found: dict[str, float] = {}
    for name, fn in _ours().items():
        ours_us, bare_us = await paired_async(call_loop(fn), bare, ops=ops)
        found[name] = ours_us - bare_us
        if name == "all of them stacked":
            # Against trio's own floor for the one rule that needs a scope: fail_after around
            # the bare call, measured in the same run.
            scope_us, bare2_us = await paired_async(call_loop(_fail_after_bare), bare, ops=ops)
            found["fail_after"] = scope_us - bare2_us
        report.add(
            Figure(
                section=SECTION,
                name=f"{name} success overhead",
                ours=ours_us - bare_us,
                baseline=None,
                unit="us",
                target=f"bare call {bare_us:.3f} us",
            )
        )
    stacked, scope = found["all of them stacked"], found["fail_after"]
    report.add(
        Figure(
            section=SECTION,
            name="all six decorators stacked, overhead",
            ours=stacked,
            baseline=scope,
            unit="us",
            baseline_name="trio.fail_after alone",
            target=f"<= +10 us (@timeout alone +{found['@timeout']:.2f})",
            passed=stacked <= 10.0,
            row=5,
            title="all six decorators stacked",
        )
    )
    for name, fn in _new_rules().items():
        ours_us, bare_us = await paired_async(call_loop(fn), bare, ops=ops)
        found[name] = ours_us - bare_us
        report.add(
            Figure(
                section=SECTION,
                name=f"{name} per call",
                ours=ours_us,
                baseline=bare_us,
                unit="us",
                baseline_name="bare call",
                target=f"+{ours_us - bare_us:.3f} us over the bare call",
            )
        )
    hedged = call_loop(supervisor.hedge(_LONG)(_bare))
    hedge_us, spawn_us = await paired_async(
        hedged, call_loop(_nursery_and_task), ops=max(1, ops // 10)
    )
    report.add(
        Figure(
            section=SECTION,
            name="@hedge (never due) per call",
            ours=hedge_us,
            baseline=spawn_us,
            unit="us",
            baseline_name="nursery + 1 task",
            target="the structure a race needs, in raw trio",
        )
    )
    for peer, (job, fn) in _trio_peers().items():
        peer_us, bare_us = await paired_async(call_loop(fn), bare, ops=ops)
        found[f"peer:{peer}"] = peer_us - bare_us
        report.add(
            Figure(
                section=SECTION,
                name=f"peer {peer} ({job}) success overhead",
                ours=peer_us - bare_us,
                baseline=None,
                unit="us",
                target="trio",
            )
        )
    return found


class _Down(Exception):
    """What the failing functions raise to open the breakers."""


async def _failing() -> int:
    raise _Down


def _failing_sync() -> int:
    raise _Down


async def _raise_and_catch(n: int) -> None:
    # The floor of any refusal: a fresh exception raised and caught, in the caller's own frame.
    for _ in range(n):
        try:
            raise _Down  # noqa: TRY301 - the floor measured is exactly an inline raise
        except _Down:
            pass


async def _refused_loop(
    fn: Callable[[], Awaitable[Any]], error: type[BaseException] | tuple[type[BaseException], ...]
) -> Callable[[int], Awaitable[None]]:
    # Opens the breaker around ``fn`` with real failures, then loops on refused calls.
    for _ in range(3):
        try:
            await fn()
        except _Down:
            pass
        except error:
            break

    async def refused(n: int) -> None:
        for _ in range(n):
            try:
                await fn()
            except error:
                pass

    return refused


async def _refusals(report: Report, ops: int) -> dict[str, float]:
    """Our refused calls (the breaker opened by a real failure), the peers' on trio, and the
    floor (a bare raise + catch), interleaved; returns the peers' refusal times."""
    breaker = supervisor.CircuitBreaker("bench-open", failure_threshold=1, timeout=_LONG)
    refused_breaker = await _refused_loop(breaker(_failing), supervisor.CircuitOpenError)

    holder = supervisor.Bulkhead("bench-full", max_concurrent=1, max_queued=0)
    release = trio.Event()

    async def hold() -> None:
        async with holder:
            await release.wait()

    @holder
    async def through_bulkhead() -> int:
        return 1

    async def refused_bulkhead(n: int) -> None:
        for _ in range(n):
            try:
                await through_bulkhead()
            except supervisor.BulkheadFullError:
                pass

    peers: dict[str, float] = {}
    raw = RawServer()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(raw.serve)
        nursery.start_soon(hold)
        await trio.testing.wait_all_tasks_blocked()
        breaker_us, floor_us = await paired_async(refused_breaker, _raise_and_catch, ops=ops)
        bulkhead_us, raw2_us = await paired_async(refused_bulkhead, raw.loop, ops=ops)
        if _have("circuitbreaker"):
            import circuitbreaker

            peer = circuitbreaker.circuit(failure_threshold=1, recovery_timeout=_LONG)(_failing)
            refused_peer = await _refused_loop(peer, circuitbreaker.CircuitBreakerError)
            peers["circuitbreaker (trio)"], _ = await paired_async(
                refused_peer, refused_breaker, ops=ops
            )
        release.set()
        raw.close()
    peers.update(_asyncio_refusals(ops))
    if _have("pybreaker"):
        import pybreaker

        plain = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=_LONG)(_failing_sync)
        for _ in range(3):
            try:
                plain()
            except (_Down, pybreaker.CircuitBreakerError):
                pass

        def refused_plain(n: int) -> None:
            for _ in range(n):
                try:
                    plain()
                except pybreaker.CircuitBreakerError:
                    pass

        def floor_plain(n: int) -> None:
            for _ in range(n):
                try:
                    raise _Down  # noqa: TRY301 - the floor measured is exactly an inline raise
                except _Down:
                    pass

        peers["pybreaker (plain)"], _ = paired_sync(refused_plain, floor_plain, ops=ops)
    for peer, peer_us in peers.items():
        report.add(
            Figure(
                section=SECTION,
                name=f"peer {peer}: refused call",
                ours=peer_us,
                baseline=None,
                unit="us",
            )
        )
    fastest = min(peers.values(), default=float("inf"))
    report.add(
        Figure(
            section=SECTION,
            name="refused call: open breaker (whole call, error caught)",
            ours=breaker_us,
            baseline=floor_us,
            unit="us",
            baseline_name="bare raise + catch",
            target=f"<= 1.0 us, < every peer (fastest {fastest:.2f})",
            passed=breaker_us <= 1.0 and breaker_us < fastest,
            row=1,
            title="refusal by an open breaker (decorator)",
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name="refused call: full bulkhead",
            ours=bulkhead_us,
            baseline=raw2_us,
            unit="us",
            baseline_name="raw round trip",
            target="< 1 raw round trip",
            passed=bulkhead_us < raw2_us,
        )
    )
    return peers


def _asyncio_refusals(ops: int) -> dict[str, float]:
    """The asyncio-only breakers' refusals, each in its own asyncio loop."""
    found: dict[str, float] = {}

    async def main() -> None:
        if _have("aiobreaker"):
            import aiobreaker

            breaker = aiobreaker.CircuitBreaker(
                fail_max=1, timeout_duration=datetime.timedelta(seconds=_LONG)
            )
            refused = await _refused_loop(breaker(_failing), aiobreaker.CircuitBreakerError)
            found["aiobreaker (asyncio)"], _ = await paired_async(
                refused, _raise_and_catch, ops=ops
            )
        if _have("purgatory"):
            import purgatory
            from purgatory.domain.model import OpenedState

            factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=1, default_ttl=_LONG)
            refused = await _refused_loop(factory(circuit="bench-refusal")(_failing), OpenedState)
            found["purgatory (asyncio)"], _ = await paired_async(refused, _raise_and_catch, ops=ops)

    asyncio.run(main())
    return found


def _asyncio_overheads(report: Report, ops: int) -> None:
    """Peers that need asyncio, each against an asyncio bare call in the same loop."""

    async def measure(fn: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
        return await paired_async(
            call_loop(fn, asyncio_pause), call_loop(_bare, asyncio_pause), ops=ops
        )

    async def main() -> None:
        if _have("aiobreaker"):
            import aiobreaker

            breaker = aiobreaker.CircuitBreaker(
                fail_max=5, timeout_duration=datetime.timedelta(seconds=60)
            )
            peer_us, bare_us = await measure(breaker(_bare))
            _peer_row(report, "aiobreaker", "breaker", peer_us - bare_us, "asyncio")
        if _have("purgatory"):
            import purgatory

            factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=5)
            peer_us, bare_us = await measure(factory(circuit="bench")(_bare))
            _peer_row(report, "purgatory", "breaker", peer_us - bare_us, "asyncio")
        if _have("aiolimiter"):
            import aiolimiter

            limiter = aiolimiter.AsyncLimiter(10**9, _LONG)

            async def limited() -> int:
                async with limiter:
                    return 1

            peer_us, bare_us = await measure(limited)
            _peer_row(report, "aiolimiter", "rate limiter", peer_us - bare_us, "asyncio")
            report.add(
                Figure(
                    section=SECTION,
                    name="peer aiolimiter (async with) per call",
                    ours=peer_us,
                    baseline=bare_us,
                    unit="us",
                    baseline_name="asyncio bare call",
                    target="compare: RateLimiter (async with) per call",
                )
            )

    asyncio.run(main())
    if _have("pybreaker"):
        import pybreaker

        breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
        wrapped = breaker(_bare_sync)
        samples_peer, samples_bare = [], []
        for _ in range(9):
            for fn, samples in ((_bare_sync, samples_bare), (wrapped, samples_peer)):
                start = time.perf_counter()
                for _ in range(ops):
                    fn()
                samples.append((time.perf_counter() - start) / ops * 1e6)
        overhead = statistics.median(samples_peer) - statistics.median(samples_bare)
        _peer_row(report, "pybreaker", "breaker", overhead, "plain function")
        ours = supervisor.circuit_breaker(failure_threshold=5)(_bare_sync)
        samples_ours, samples_bare = [], []
        for _ in range(9):
            for fn, samples in ((_bare_sync, samples_bare), (ours, samples_ours)):
                start = time.perf_counter()
                for _ in range(ops):
                    fn()
                samples.append((time.perf_counter() - start) / ops * 1e6)
        overhead = statistics.median(samples_ours) - statistics.median(samples_bare)
        report.add(
            Figure(
                section=SECTION,
                name="@circuit_breaker success overhead, plain function",
                ours=overhead,
                baseline=None,
                unit="us",
                target="plain function",
            )
        )


def _peer_row(report: Report, peer: str, job: str, overhead: float, where: str) -> None:
    report.add(
        Figure(
            section=SECTION,
            name=f"peer {peer} ({job}) success overhead",
            ours=overhead,
            baseline=None,
            unit="us",
            target=where,
        )
    )


async def run(report: Report, *, quick: bool) -> None:
    """Add this module's figures to ``report``."""
    ops = 5_000 if quick else 50_000
    await _success_overheads(report, ops)
    await _refusals(report, ops)
    _asyncio_overheads(report, ops)
    window_memory(report, 50_000 if quick else 500_000)
