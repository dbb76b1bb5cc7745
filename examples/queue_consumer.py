"""A queue consumer whose fetch is guarded by a breaker, a retry and a fallback.

The consumer's ``fetch`` is decorated, outermost first, with
``@circuit_breaker(failure_threshold=10)``, ``@retry(max_attempts=5)`` and
``@fallback(default_value=[])``. The broker is an in-file fake that goes down halfway through.

What it shows: while the broker is up, ``fetch`` returns its messages; once it is down, the
fallback answers ``[]`` and the consumer keeps polling without an error. The fallback is the
innermost of the three, so it answers *before* the others see the failure: retry makes one attempt
per fetch and the breaker counts no failure, so it never opens. Put the fallback outermost when
the retry and the breaker should act first (``docs/rules.md``, "Composing the rules").

Run it with ``python examples/queue_consumer.py``. The fake's latencies run on trio's clock; the
script runs under a :class:`trio.testing.MockClock` that jumps ahead whenever every task sleeps, so
it finishes at once.
"""

from __future__ import annotations

import trio
import trio.testing

from supervisor import circuit_breaker, fallback, retry


class BrokerUnavailable(ConnectionError):
    """The fake broker cannot be reached."""


class FakeBroker:
    """A fake message broker: each pull takes 10 ms and returns up to ``limit`` messages, or
    raises :class:`BrokerUnavailable` while ``up`` is false."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = list(messages)
        self.up = True
        self.pulls = 0

    async def pull(self, limit: int) -> list[str]:
        """Take up to ``limit`` messages off the queue."""
        self.pulls += 1
        await trio.sleep(0.01)
        if not self.up:
            raise BrokerUnavailable("broker at amqp://queue.local is unreachable")
        batch, self.messages = self.messages[:limit], self.messages[limit:]
        return batch


class MessageQueue:
    """A consumer's view of one queue."""

    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker

    @circuit_breaker(failure_threshold=10)
    @retry(max_attempts=5)
    @fallback(default_value=[])
    async def fetch(self, limit: int = 2) -> list[str]:
        """Pull up to ``limit`` messages; ``[]`` when the broker fails."""
        return await self.broker.pull(limit)


async def main() -> None:
    """Consume while the broker is up, then keep polling while it is down."""
    broker = FakeBroker(["order-1", "order-2", "order-3"])
    queue = MessageQueue(broker)
    for poll in range(1, 5):
        if poll == 3:
            broker.up = False
            print("-- the broker goes down --")
        batch = await queue.fetch()
        print(f"poll {poll}: {batch}")
    breaker = MessageQueue.fetch.breaker  # type: ignore[attr-defined]
    print(
        f"{broker.pulls} pulls for 4 polls; breaker {breaker.state.value}, "
        f"{breaker.failure_count} failures counted"
    )


if __name__ == "__main__":
    # The fake sleeps on trio's clock; a MockClock that jumps ahead makes the demo instant.
    # Real code calls plain trio.run(main).
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
