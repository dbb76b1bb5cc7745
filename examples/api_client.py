"""An HTTP API client guarded by retry, a per-attempt timeout and a circuit breaker.

The client's method is wrapped in ``@retry(max_attempts=3)`` and ``@timeout(seconds=10)`` and
runs its request inside ``async with self.breaker:``, so every attempt is limited to 10 seconds and
counted by the breaker. The server is an in-file fake that answers from a script, so nothing
touches the network.

What it shows:

1. two ``503`` answers are retried away and the third attempt succeeds;
2. while the server is down, three failed attempts in a row open the breaker;
3. the open breaker refuses the next call at once, without calling the server: its
   ``CircuitOpenError.retry_after`` (120 s) is above retry's ``max_delay`` (60 s), so retry gives
   up at once instead of waiting for the breaker;
4. once the breaker's timeout has passed it lets trial calls through, and two successes close it.

Run it with ``python examples/api_client.py``. The fake's latencies and the retry and breaker
delays all run on trio's clock; the script runs under a :class:`trio.testing.MockClock` that jumps
ahead whenever every task sleeps, so it finishes at once while keeping the real numbers.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import trio
import trio.testing

from supervisor import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitStateChange,
    retry,
    timeout,
)


class HTTPError(Exception):
    """An HTTP error status answered by the server."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class FakeHTTP:
    """A fake HTTP server: each request takes 50 ms and is answered with the next scripted
    status (the last one repeats)."""

    def __init__(self, *statuses: int) -> None:
        self.script: deque[int] = deque(statuses)
        self.requests = 0

    def answer_with(self, *statuses: int) -> None:
        """Replace the script of answers."""
        self.script = deque(statuses)

    async def get(self, path: str) -> dict[str, Any]:
        """Answer ``path`` with the next scripted status; raise :class:`HTTPError` unless 200."""
        self.requests += 1
        await trio.sleep(0.05)
        status = self.script.popleft() if len(self.script) > 1 else self.script[0]
        print(f"  GET {path} -> {status}")
        if status != 200:
            raise HTTPError(status)
        return {"path": path, "status": "shipped"}


class OrdersClient:
    """A client of the orders API: each call is retried, time-limited and guarded by a breaker."""

    def __init__(self, http: FakeHTTP) -> None:
        self.http = http
        # A timeout above retry's max_delay (60 s): while open, retry gives up at once.
        self.breaker = CircuitBreaker("orders-api", failure_threshold=3, timeout=120.0)
        self.breaker.add_listener(self._on_change)

    @staticmethod
    def _on_change(change: CircuitStateChange) -> None:
        print(
            f"  breaker {change.name!r}: {change.old_state.value} -> {change.new_state.value} "
            f"({change.reason.value})"
        )

    @retry(max_attempts=3)
    @timeout(seconds=10)
    async def get_order(self, order_id: int) -> dict[str, Any]:
        """Fetch one order (retried up to 3 calls, 10 s per attempt, through the breaker)."""
        async with self.breaker:
            return await self.http.get(f"/orders/{order_id}")


async def main() -> None:
    """Run the four scenes of the module docstring."""
    http = FakeHTTP(503, 503, 200)
    client = OrdersClient(http)

    print("1. a flaky server: two 503s, then 200")
    order = await client.get_order(1)
    print(f"get_order(1) = {order} after {http.requests} requests; {client.breaker!r}")

    print("2. the server goes down")
    http.answer_with(503)
    before = http.requests
    try:
        await client.get_order(2)
    except HTTPError as exc:
        print(f"get_order(2) failed with {exc} after {http.requests - before} requests")

    print("3. the open breaker refuses at once")
    before = http.requests
    try:
        await client.get_order(3)
    except CircuitOpenError as exc:
        print(
            f"get_order(3) refused: breaker {exc.name!r} open, trial in "
            f"{exc.retry_after:.0f} s; {http.requests - before} requests made"
        )

    print("4. two minutes later the server is back")
    http.answer_with(200)
    await trio.sleep(120)
    print(f"state after 120 s: {client.breaker.state.value}")
    for order_id in (4, 5):
        await client.get_order(order_id)
    print(f"after two trial calls: {client.breaker!r}")


if __name__ == "__main__":
    # The fakes sleep on trio's clock; a MockClock that jumps ahead makes the demo instant.
    # Real code calls plain trio.run(main).
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
