"""The actor runtime against raw trio: ask round trip, tell throughput, spawning idle actors."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from typing import Any

import trio
import trio.testing

import actors

from ._baselines import RawServer, raw_idle_tasks
from ._harness import Figure, Report, paired_async

SECTION = "actors"


# --- raw trio baselines ---------------------------------------------------------------------------


class _Echo(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        return message


class _Sink(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        return None


class _Idle(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        return None


async def _ask_round_trip(report: Report, ops: int) -> None:
    raw = RawServer()
    async with trio.open_nursery() as nursery, actors.ActorSystem() as system:
        nursery.start_soon(raw.serve)
        ref = await system.spawn(_Echo, name="echo")

        async def ours(n: int) -> None:
            for i in range(n):
                await ref.ask(i)

        async def baseline(n: int) -> None:
            for i in range(n):
                await raw.ask(i)

        ours_us, raw_us = await paired_async(ours, baseline, ops=ops)

        async def ours_timeout(n: int) -> None:
            for i in range(n):
                await ref.ask(i, timeout=10.0)

        ours_t_us, raw_t_us = await paired_async(ours_timeout, baseline, ops=ops)
        raw.close()
    ratio = ours_us / raw_us
    report.add(
        Figure(
            section=SECTION,
            name="ask round trip",
            ours=ours_us,
            baseline=raw_us,
            unit="us",
            baseline_name="channel + Event reply",
            target="ratio <= 2.0",
            passed=ratio <= 2.0,
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name="ask round trip, with timeout",
            ours=ours_t_us,
            baseline=raw_t_us,
            unit="us",
            baseline_name="channel + Event reply",
            target="ratio <= 1.0",
            passed=ours_t_us <= raw_t_us,
            row=4,
            title="ask(msg, timeout=t)",
        )
    )


async def _tell_throughput(report: Report, ops: int, batch: int = 1000) -> None:
    """Batches of ``batch`` one-way messages, each batch followed by a wait until it is drained."""
    send, receive = trio.open_memory_channel[Any](batch)
    received = 0
    want = 0
    drained = trio.Event()

    async def consume() -> None:
        nonlocal received
        async for _ in receive:
            received += 1
            if received == want:
                drained.set()

    async def baseline(n: int) -> None:
        nonlocal received, want, drained
        for first in range(0, n, batch):
            this_batch = min(batch, n - first)
            received, want, drained = 0, this_batch, trio.Event()
            for i in range(this_batch):
                send.send_nowait(i)
            await drained.wait()

    drain_send, drain_receive = trio.open_memory_channel[Any](batch)
    drain_wanted = 0
    drain_done = trio.Event()

    async def drain() -> None:
        # The best a raw receiver can do: take everything queued without a checkpoint per
        # message, then wait (one checkpoint per batch).
        nonlocal drain_wanted
        while True:
            try:
                await drain_receive.receive()
            except trio.EndOfChannel:
                return
            got = 1
            while True:
                try:
                    drain_receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                got += 1
            drain_wanted -= got
            if drain_wanted == 0:
                drain_done.set()

    async def best_baseline(n: int) -> None:
        nonlocal drain_wanted, drain_done
        for first in range(0, n, batch):
            this_batch = min(batch, n - first)
            drain_wanted, drain_done = this_batch, trio.Event()
            for i in range(this_batch):
                drain_send.send_nowait(i)
            await drain_done.wait()

    async with trio.open_nursery() as nursery, actors.ActorSystem() as system:
        nursery.start_soon(consume)
        nursery.start_soon(drain)
        ref = await system.spawn(_Sink, name="sink", mailbox_size=batch + 1)

        async def ours(n: int) -> None:
            for first in range(0, n, batch):
                for i in range(min(batch, n - first)):
                    ref.tell(i)
                await ref.ask(None)  # served after the batch: the mailbox is first in, first out

        ours_us, raw_us = await paired_async(ours, baseline, ops=ops)
        ours2_us, best_us = await paired_async(ours, best_baseline, ops=ops)
        send.close()
        drain_send.close()
    # Throughput is the inverse of the time per message.
    report.add(
        Figure(
            section=SECTION,
            name="tell throughput (msgs/s)",
            ours=1e6 / ours_us,
            baseline=1e6 / raw_us,
            unit="/s",
            baseline_name="memory channel",
            target="ratio >= 0.5",
            passed=raw_us / ours_us >= 0.5,
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name="tell throughput vs a batch-draining receiver",
            ours=1e6 / ours2_us,
            baseline=1e6 / best_us,
            unit="/s",
            baseline_name="receive_nowait drain",
        )
    )


async def _idle_raw(count: int, measure_memory: bool) -> tuple[float, float]:
    gc.collect()
    if not measure_memory:
        run = await raw_idle_tasks(count)
    else:
        tracemalloc.start()
        try:
            run = await raw_idle_tasks(count, measure=lambda: tracemalloc.get_traced_memory()[0])
        finally:
            tracemalloc.stop()
    return run.spawn / count * 1e6, run.used / count


async def _idle_ours(count: int, measure_memory: bool) -> tuple[float, float, float]:
    gc.collect()
    if measure_memory:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if measure_memory else 0
    async with actors.ActorSystem() as system:
        start = time.perf_counter()
        for i in range(count):
            await system.spawn(_Idle, name=f"idle-{i}")
        await trio.testing.wait_all_tasks_blocked()
        elapsed = time.perf_counter() - start
        used = tracemalloc.get_traced_memory()[0] - before if measure_memory else 0
        if measure_memory:
            tracemalloc.stop()
        stopping = time.perf_counter()
    stopped = time.perf_counter() - stopping  # leaving the block stops them all, in order
    return elapsed / count * 1e6, used / count, stopped / count * 1e6


async def _idle_actors(report: Report, count: int, rounds: int) -> None:
    # Spawn times interleaved (raw, ours, raw, ours, ...), medians; memory measured once each
    # (tracemalloc slows everything down, so never while timing).
    raw_runs: list[float] = []
    ours_runs: list[float] = []
    stop_runs: list[float] = []
    for _ in range(rounds):
        raw_runs.append((await _idle_raw(count, measure_memory=False))[0])
        spawn_us, _, stop_us = await _idle_ours(count, measure_memory=False)
        ours_runs.append(spawn_us)
        stop_runs.append(stop_us)
    raw_spawn_us = statistics.median(raw_runs)
    ours_spawn_us = statistics.median(ours_runs)
    ours_stop_us = statistics.median(stop_runs)
    _, raw_bytes = await _idle_raw(count, measure_memory=True)
    _, ours_bytes, _ = await _idle_ours(count, measure_memory=True)
    report.add(
        Figure(
            section=SECTION,
            name=f"spawn {count:,} idle actors, per actor",
            ours=ours_spawn_us,
            baseline=raw_spawn_us,
            unit="us",
            baseline_name="task on own channel",
            target="ratio <= 1.5",
            passed=ours_spawn_us <= 1.5 * raw_spawn_us,
            row=6,
            title="spawn, per actor",
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name="stop (system exit), per actor",
            ours=ours_stop_us,
            baseline=None,
            unit="us",
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name="memory per idle actor",
            ours=ours_bytes / 1024,
            baseline=raw_bytes / 1024,
            unit="KiB",
            baseline_name="task on own channel",
            target="ratio <= 1.2",
            passed=ours_bytes <= 1.2 * raw_bytes,
            row=7,
            title="memory per idle actor",
        )
    )


async def run(report: Report, *, quick: bool) -> None:
    """Add this module's figures to ``report``."""
    await _ask_round_trip(report, ops=2_000 if quick else 20_000)
    await _tell_throughput(report, ops=20_000 if quick else 200_000)
    await _idle_actors(report, count=10_000 if quick else 100_000, rounds=1 if quick else 3)
