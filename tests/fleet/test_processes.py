"""Real processes sharing one throttle and one breaker through a real Redis server.

These use real time and real processes (no mock stands in for Redis or for a process): few and
short. Each worker is ``tests/fleet/fleet_worker.py``; it imports this checkout's code.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from fleet_helpers import RedisServer

WORKER = pathlib.Path(__file__).with_name("fleet_worker.py")
ROOT = pathlib.Path(__file__).parents[2]


def _fleet(
    mode: str, url: str, prefix: str, count: int, seconds: float
) -> Iterator[dict[str, Any]]:
    """Start ``count`` workers, release them together once all are ready, and yield each one's
    result."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), mode, url, prefix],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for _ in range(count)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        start = time.monotonic() + 0.2
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(f"go {start!r} {seconds!r}\n")
            worker.stdin.flush()
        for worker in workers:
            out, _ = worker.communicate(timeout=seconds + 30)
            assert worker.returncode == 0
            yield {"start": start, **json.loads(out.strip().splitlines()[-1])}
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def test_four_processes_never_exceed_the_shared_rate(redis_server: RedisServer) -> None:
    """4 processes x 8 tasks against one 50-per-second throttle for 3 s: no window of one second
    (on the machine's monotonic clock, from the recorded start times) holds more than 50 starts,
    and the fleet admits within a few percent of the 150 the bound allows. (The workers give the
    throttle a 50 ms margin: a start follows Redis's decision by a reply and a wake-up, which a
    loaded machine can delay by tens of milliseconds.)"""
    seconds = 3.0
    results = list(_fleet("throttle", redis_server.url, "rate", 4, seconds))
    start = results[0]["start"]
    starts = sorted(t for r in results for t in r["starts"] if start <= t < start + seconds)
    assert all(r["fallbacks"] == 0 for r in results)
    assert all(r["starts"] for r in results), "every process got some of the rate"
    worst = max(sum(1 for u in starts if t <= u < t + 1.0) for t in starts)
    assert worst <= 50, f"{worst} starts in one window; {len(starts)} in all"
    assert 0.95 * 150 <= len(starts) <= 150, f"{len(starts)} starts in {seconds}s"


def test_a_breaker_opens_fleet_wide_with_one_trial_and_closes_everywhere(
    redis_server: RedisServer,
) -> None:
    """Failures spread over 3 processes (2 each, threshold 6: none opens alone) open the shared
    breaker in every process within 10 ms of the first; in half-open exactly one call runs in the
    whole fleet, and its success closes the breaker everywhere. (Three, not more, on this 2-core
    machine: the spread measures how soon each process gets a core, once Redis has spoken.)"""
    results = list(_fleet("breaker", redis_server.url, "brk", 3, 4.0))
    opened = [r["opened_at"] for r in results]
    assert all(at is not None for at in opened), results
    assert max(opened) - min(opened) <= 0.010, opened
    assert all(r["refused"] for r in results), results
    assert sum(r["trial_runs"] for r in results) == 1, results
    assert all(r["final"] == "closed" for r in results), results
