"""``python -m bench million``: a million idle actors in one process (opt-in; it takes minutes).

Measured, each in a fresh process so that one cannot reuse memory the other freed: the resident
set size (RSS, from ``/proc/self/statm``) that the idle actors add, per actor; the time to spawn
them, per actor; and the time to stop them all by leaving ``ActorSystem`` (reverse start order,
each as by ``stop``), per actor. The raw trio baseline is the same number of tasks, each blocked
on its own memory channel, started with ``start_soon`` and ended by closing their channels.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from typing import Any

import trio
import trio.testing

import actors

from ._baselines import raw_idle_tasks
from ._harness import Figure, Report

SECTION = "million"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * _PAGE


class _Idle(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        return None


async def _ours(count: int) -> dict[str, float]:
    gc.collect()
    gc.freeze()  # the collector walking a million objects per generation is not the runtime
    before = _rss()
    async with actors.ActorSystem() as system:
        start = time.perf_counter()
        for i in range(count):
            await system.spawn(_Idle, name=f"idle-{i}")
        await trio.testing.wait_all_tasks_blocked()
        spawned = time.perf_counter() - start
        used = _rss() - before
        live = system.statistics().live
        stopping = time.perf_counter()
    stopped = time.perf_counter() - stopping
    return {"spawn": spawned, "stop": stopped, "rss": used, "live": live}


async def _raw(count: int) -> dict[str, float]:
    gc.collect()
    gc.freeze()
    run = await raw_idle_tasks(count, measure=_rss)
    return {"spawn": run.spawn, "stop": run.stop, "rss": run.used, "live": count}


def child(kind: str, count: int) -> None:
    """Run one measurement and print it as JSON (the parent reads it)."""
    result = trio.run(_ours if kind == "ours" else _raw, count)
    print(json.dumps(result))


def _measure(kind: str, count: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.million", kind, str(count)],
        check=True,
        capture_output=True,
        text=True,
    )
    measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def run(report: Report, *, count: int = 1_000_000, baseline: bool = True) -> None:
    """Add the million-actor figures to ``report`` (each side in its own process)."""
    ours = _measure("ours", count)
    raw = _measure("raw", count) if baseline else None
    if ours["live"] != count:
        raise RuntimeError(f"only {ours['live']:,} of {count:,} actors were alive")
    rss = ours["rss"] / count / 1024
    report.add(
        Figure(
            section=SECTION,
            name=f"RSS per idle actor ({count:,} in one process)",
            ours=rss,
            baseline=None if raw is None else raw["rss"] / count / 1024,
            unit="KiB",
            baseline_name="task on own channel",
            target=f"{count:,} fit in 24 GiB ({ours['rss'] / 2**30:.2f} GiB)",
            passed=ours["rss"] < 24 * 2**30,
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name="spawn, per actor",
            ours=ours["spawn"] / count * 1e6,
            baseline=None if raw is None else raw["spawn"] / count * 1e6,
            unit="us",
            baseline_name="start_soon on own channel",
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name="stop all (system exit, reverse order), per actor",
            ours=ours["stop"] / count * 1e6,
            baseline=None if raw is None else raw["stop"] / count * 1e6,
            unit="us",
            baseline_name="close every channel",
        )
    )


if __name__ == "__main__":
    child(sys.argv[1], int(sys.argv[2]))
