"""A small actor program: a counter, a greeter that uses it, and a watcher of both.

Run it with ``python examples/hello.py``.
"""

from __future__ import annotations

from typing import Any

import actors


class Counter(actors.Actor[str]):
    """Counts how often each name was greeted."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    async def receive(self, message: str) -> int:
        self.counts[message] = self.counts.get(message, 0) + 1
        return self.counts[message]


class Greeter(actors.Actor[str]):
    """Greets a name, asking the counter how often it has seen it."""

    def __init__(self, counter: actors.ActorRef[str]) -> None:
        self.counter = counter

    async def receive(self, message: str) -> str:
        times = await self.counter.ask(message, timeout=1.0)
        return f"hello {message} (#{times})"


class Watcher(actors.Actor[Any]):
    """Prints a line when a watched actor stops."""

    async def receive(self, message: Any) -> None:
        if isinstance(message, actors.Down):
            print(f"watcher: {message.ref.name} stopped (reason: {message.reason})")
        elif isinstance(message, actors.ActorRef):
            self.context.watch(message)


async def main(system: actors.ActorSystem) -> None:
    counter = await system.spawn(Counter, name="counter")
    greeter = await system.spawn(Greeter, counter, name="greeter")
    watcher = await system.spawn(Watcher, name="watcher")
    await watcher.send(greeter)
    for name in ["world", "trio", "world"]:
        print(await greeter.ask(name, timeout=1.0))
    print(greeter)
    await system.stop(greeter)
    await watcher.ask(None)  # by now the Down has been handled (system lane first)


if __name__ == "__main__":
    actors.run(main)
