"""What a throttle's sliding window holds per admission, beside a deque of floats (the sliding
log written the plain way), and what each adds to a full garbage collection (part of the rules
section)."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections import deque

from supervisor.cores import SlidingWindowCore

from ._harness import Figure, Report

SECTION = "rules"
_LONG = 3600.0


def _full_collection_ms(rounds: int = 7) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        gc.collect()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def _deque_log(count: int) -> object:
    log: deque[float] = deque()
    for i in range(count):
        log.append(i * 1e-6)
    return log


def _window_log(count: int) -> object:
    window = SlidingWindowCore(10**9, _LONG)
    for i in range(count):
        window.admit_if_room(i * 1e-6)
    return window


def window_memory(report: Report, count: int) -> None:
    """What a throttle's window holds per admission, beside a deque of floats (the sliding log
    written the plain way), and what each adds to a full garbage collection."""
    found: dict[str, tuple[float, float]] = {}
    for name, build in (("deque", _deque_log), ("window", _window_log)):
        gc.collect()
        empty_ms = _full_collection_ms()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        held = build(count)
        used = (tracemalloc.get_traced_memory()[0] - before) / count
        tracemalloc.stop()
        found[name] = (used, _full_collection_ms() - empty_ms)
        del held
    (deque_bytes, deque_ms), (ours_bytes, ours_ms) = found["deque"], found["window"]
    report.add(
        Figure(
            section=SECTION,
            name=f"throttle window: memory per admission ({count:,} in the window)",
            ours=ours_bytes,
            baseline=deque_bytes,
            unit="B",
            baseline_name="deque of floats",
            target=f"adds {ours_ms:+.2f} ms to a full gc.collect() (deque: {deque_ms:+.2f} ms)",
        )
    )
