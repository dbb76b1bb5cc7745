"""A dynamic supervisor's instances against raw trio tasks: start 2,000 and stop them all."""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any

import actors
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ChildSpec, Strategy, SupervisorSpec

from ._baselines import raw_idle_tasks
from ._harness import Figure, Report

SECTION = "dynamic"


class _Instance(actors.Actor[Any]):
    def __init__(self, job: int) -> None:
        self.job = job

    async def receive(self, message: Any) -> Any:
        return self.job


def _spec() -> SupervisorSpec:
    template = ChildSpec(name="job", factory=_Instance, shutdown=1.0)
    return SupervisorSpec(
        name="bench",
        children=[
            SupervisorSpec(name="jobs", strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template])
        ],
    )


async def _raw(count: int) -> tuple[float, float]:
    """Start ``count`` tasks each blocked on its own channel, then stop them: microseconds per
    task for each."""
    gc.collect()
    run = await raw_idle_tasks(count)
    return run.spawn / count * 1e6, run.stop / count * 1e6


async def _ours(count: int) -> tuple[float, float]:
    """Start ``count`` instances under a dynamic supervisor (one ``start_child`` each, awaited),
    then leave the tree (they stop all at once): microseconds per instance for each."""
    gc.collect()
    async with run_tree(_spec(), metrics=False) as tree:
        jobs = tree.dynamic("bench/jobs")
        start = time.perf_counter()
        for job in range(count):
            await jobs.start_child(job)
        started = time.perf_counter()
        if (await jobs.count_children()).active != count:
            raise RuntimeError("not every instance started")
    stopped = time.perf_counter()
    return (started - start) / count * 1e6, (stopped - started) / count * 1e6


async def run(report: Report, *, quick: bool) -> None:
    """Add this module's figures to ``report``."""
    count = 2_000
    rounds = 3 if quick else 7
    raw_start, raw_stop, our_start, our_stop = [], [], [], []
    for _ in range(rounds):  # interleaved, so drift of the machine touches both alike
        start, stop = await _raw(count)
        raw_start.append(start)
        raw_stop.append(stop)
        start, stop = await _ours(count)
        our_start.append(start)
        our_stop.append(stop)
    median = statistics.median
    report.add(
        Figure(
            section=SECTION,
            name=f"start_child of {count:,} instances, per instance",
            ours=median(our_start),
            baseline=median(raw_start),
            unit="us",
            baseline_name="task on own channel",
        )
    )
    report.add(
        Figure(
            section=SECTION,
            name=f"stop {count:,} instances (tree exit), per instance",
            ours=median(our_stop),
            baseline=median(raw_stop),
            unit="us",
            baseline_name="close + task exit",
        )
    )
