"""One process of a fleet test: ``python fleet_worker.py MODE URL PREFIX``.

It connects a RedisStore, sets its rule up, prints ``ready``, then waits for a line ``go START
SECONDS`` on stdin (START is a ``time.monotonic()`` value: the monotonic clock is one clock for
every process of the machine), runs its part and prints one JSON line of what it saw. Times in
the output are ``time.monotonic()`` values, so the test compares them across processes.

Modes:
    throttle  8 tasks call one shared throttle (50 per second, ``on_limit="wait"``) until
              START + SECONDS; the output lists the start time of every admitted call.
    breaker   2 counted failures through one shared breaker (failure_threshold 6: three
              processes open it together, none on its own), then calls every 5 ms until the
              breaker is closed again; the output says when it saw OPEN, whether it refused,
              how many calls ran while it was half-open, and when it closed.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any

import trio

import supervisor

THROTTLE_CALLS, THROTTLE_PERIOD, THROTTLE_MARGIN, TASKS = 50, 1.0, 0.05, 8


async def _go() -> tuple[float, float]:
    print("ready", flush=True)
    line = await trio.to_thread.run_sync(sys.stdin.readline)
    _, start, seconds = line.split()
    return float(start), float(seconds)


async def _sleep_until_monotonic(when: float) -> None:
    await trio.sleep(max(0.0, when - time.monotonic()))


async def throttle_part(url: str, prefix: str) -> dict[str, Any]:
    async with supervisor.RedisStore.connect(
        url, prefix=prefix, throttle_margin=THROTTLE_MARGIN, timeout=1.0
    ) as store:
        starts: list[float] = []

        @supervisor.throttle(THROTTLE_CALLS, THROTTLE_PERIOD, name="api", store=store)
        async def call() -> None:
            starts.append(time.monotonic())

        start, seconds = await _go()
        await _sleep_until_monotonic(start)

        async def task() -> None:
            while True:
                await call()

        with trio.move_on_after(max(0.0, start + seconds - time.monotonic())):
            async with trio.open_nursery() as nursery:
                for _ in range(TASKS):
                    nursery.start_soon(task)
        return {"starts": starts, "fallbacks": store.statistics().failures}


async def breaker_part(url: str, prefix: str) -> dict[str, Any]:
    async with supervisor.RedisStore.connect(
        url, prefix=prefix, flush_interval=0.02, lease=0.5, timeout=1.0
    ) as store:
        breaker = supervisor.CircuitBreaker(
            "payments",
            failure_threshold=6,
            success_threshold=1,
            timeout=1.0,
            half_open_max_calls=1,
            store=store,
        )
        changes: list[tuple[float, str, str]] = []
        opened = trio.Event()

        def seen(change: supervisor.CircuitStateChange) -> None:
            changes.append((time.monotonic(), change.new_state.value, change.reason.value))
            if change.new_state is supervisor.CircuitState.OPEN:
                opened.set()

        breaker.add_listener(seen)

        async def failing() -> None:
            raise ValueError("down")

        async def working() -> None:
            return None

        start, seconds = await _go()
        await _sleep_until_monotonic(start)
        for _ in range(2):
            with contextlib.suppress(ValueError):
                await breaker.call(failing)
        with trio.move_on_after(seconds):
            await opened.wait()
        refused = False
        try:
            await breaker.call(working)
        except supervisor.CircuitOpenError:
            refused = True
        trial_runs = 0
        with trio.move_on_after(seconds):
            while breaker.state is not supervisor.CircuitState.CLOSED:
                state = breaker.state
                try:
                    await breaker.call(working)
                except supervisor.CircuitOpenError:
                    pass
                else:
                    trial_runs += state is supervisor.CircuitState.HALF_OPEN
                await trio.sleep(0.005)
        opens = [at for at, state, _ in changes if state == "open"]
        closes = [at for at, state, _ in changes if state == "closed"]
        return {
            "opened_at": opens[0] if opens else None,
            "refused": refused,
            "trial_runs": trial_runs,
            "closed_at": closes[-1] if closes else None,
            "final": breaker.state.value,
            "changes": changes,
        }


def main() -> None:
    mode, url, prefix = sys.argv[1:4]
    part = {"throttle": throttle_part, "breaker": breaker_part}[mode]
    result = trio.run(part, url, prefix)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
