"""Timing primitives and the result table shared by every benchmark module.

Timings use the real clock (``time.perf_counter``): benchmarks measure the machine, unlike the
library, which only ever reads trio's clock. Each figure is the median of several rounds, and every
ratio compares two figures measured side by side in the same process and run.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
from rich.console import Console
from rich.table import Table

__all__ = [
    "Figure",
    "Report",
    "median_per_op",
    "median_per_op_async",
    "paired_async",
    "paired_sync",
]


@attrs.frozen(kw_only=True)
class Figure:
    """One measured figure beside its baseline."""

    section: str
    name: str
    ours: float
    baseline: float | None
    unit: str
    baseline_name: str = "raw trio"
    target: str = ""
    passed: bool | None = None
    row: int | None = None
    """Where this figure stands in the table of targets (None: not a target row)."""
    title: str = ""
    """The target row's name (default: ``name``)."""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.ours / self.baseline


@attrs.define
class Report:
    """The figures of one run, printed as a rich table."""

    figures: list[Figure] = attrs.field(factory=list)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)

    def render(self, console: Console) -> None:
        table = Table(title="trio-supervisor benchmarks (medians; ratios against the same run)")
        for column in ("section", "figure", "ours", "baseline", "ratio", "target", "ok"):
            table.add_column(
                column, justify="right" if column in {"ours", "baseline", "ratio"} else "left"
            )
        for fig in self.figures:
            ratio = "" if fig.ratio is None else f"{fig.ratio:.2f}"
            baseline = (
                ""
                if fig.baseline is None
                else f"{fig.baseline:.3f} {fig.unit} ({fig.baseline_name})"
            )
            table.add_row(
                fig.section,
                fig.name,
                f"{fig.ours:.3f} {fig.unit}",
                baseline,
                ratio,
                fig.target,
                _verdict(fig.passed),
            )
        console.print(table)
        rows = sorted((fig for fig in self.figures if fig.row is not None), key=_row_of)
        if not rows:
            return
        targets = Table(title="Targets (project vs raw baseline of the same run)")
        for column in ("figure", "project", "raw baseline (same run)", "ratio", "target", ""):
            targets.add_column(column, justify="right" if column == "ratio" else "left")
        for fig in rows:
            ratio = "" if fig.ratio is None else f"{fig.ratio:.2f}x"
            baseline = (
                ""
                if fig.baseline is None
                else f"{fig.baseline:.3f} {fig.unit} ({fig.baseline_name})"
            )
            targets.add_row(
                fig.title or fig.name,
                f"{fig.ours:.3f} {fig.unit}",
                baseline,
                ratio,
                fig.target,
                _verdict(fig.passed),
            )
        console.print(targets)


def _row_of(fig: Figure) -> int:
    return fig.row if fig.row is not None else 0


def _verdict(passed: bool | None) -> str:
    return {None: "", True: "[green]PASS[/]", False: "[red]MISS[/]"}[passed]


def median_per_op(fn: Callable[[int], None], *, ops: int, rounds: int = 7) -> float:
    """Median over ``rounds`` of ``fn(ops)``'s wall time divided by ``ops``, in microseconds."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(ops)
        samples.append((time.perf_counter() - start) / ops * 1e6)
    return statistics.median(samples)


async def median_per_op_async(
    fn: Callable[[int], Awaitable[None]], *, ops: int, rounds: int = 7
) -> float:
    """Like :func:`median_per_op`, for a coroutine function run in the current event loop."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await fn(ops)
        samples.append((time.perf_counter() - start) / ops * 1e6)
    return statistics.median(samples)


YIELD_EVERY = 1000
"""Calls between two checkpoints of a measuring loop (the bare call's loop does the same)."""


async def asyncio_pause() -> None:
    await asyncio.sleep(0)


def call_loop(
    fn: Callable[[], Awaitable[Any]],
    pause: Callable[[], Awaitable[None]] = trio.lowlevel.checkpoint,
) -> Callable[[int], Awaitable[None]]:
    """``n`` awaited calls of ``fn``, one after the other, with a checkpoint (``pause``: the event
    loop's own) every thousand calls."""

    # A checkpoint every thousand calls (``pause``: the event loop's own), as any trio program
    # has: trio drops the deadline entries of exited cancel scopes only in its run loop, so a
    # loop of timed calls that never yields keeps every scope it opened alive (about 240 bytes
    # each, walked by every full collection: 0.7-0.8 us per call here, and it taxes every figure
    # measured after it in the process).
    async def run(n: int) -> None:
        for i in range(n):
            await fn()
            if i % YIELD_EVERY == 0:
                await pause()

    return run


async def paired_async(
    ours: Callable[[int], Awaitable[None]],
    baseline: Callable[[int], Awaitable[None]],
    *,
    ops: int,
    rounds: int = 9,
) -> tuple[float, float]:
    """Median microseconds per op of ``ours`` and ``baseline``, their rounds interleaved so that
    drift of the machine (frequency, other load) touches both alike."""
    ours_samples: list[float] = []
    base_samples: list[float] = []
    await ours(max(1, ops // 10))  # warm-up
    await baseline(max(1, ops // 10))
    for _ in range(rounds):
        for fn, samples in ((baseline, base_samples), (ours, ours_samples)):
            start = time.perf_counter()
            await fn(ops)
            samples.append((time.perf_counter() - start) / ops * 1e6)
    return statistics.median(ours_samples), statistics.median(base_samples)


def paired_sync(
    ours: Callable[[int], None],
    baseline: Callable[[int], None],
    *,
    ops: int,
    rounds: int = 9,
) -> tuple[float, float]:
    """:func:`paired_async` for plain functions."""
    ours_samples: list[float] = []
    base_samples: list[float] = []
    ours(max(1, ops // 10))
    baseline(max(1, ops // 10))
    for _ in range(rounds):
        for fn, samples in ((baseline, base_samples), (ours, ours_samples)):
            start = time.perf_counter()
            fn(ops)
            samples.append((time.perf_counter() - start) / ops * 1e6)
    return statistics.median(ours_samples), statistics.median(base_samples)
