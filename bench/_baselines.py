"""Raw trio baselines that the project's figures are divided by."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs
import trio
import trio.testing

__all__ = ["IdleTasksRun", "RawServer", "raw_idle_tasks"]


@attrs.frozen
class IdleTasksRun:
    """What :func:`raw_idle_tasks` measured."""

    spawn: float
    """Seconds to start every task, until all of them were blocked."""
    stop: float
    """Seconds to close every channel and see every task exit."""
    used: float
    """``measure()`` once all were blocked, minus ``measure()`` before the first started."""


async def raw_idle_tasks(count: int, *, measure: Callable[[], float] = lambda: 0.0) -> IdleTasksRun:
    """The raw trio baseline of every spawn, teardown and memory-per-actor figure: ``count``
    tasks, each blocked on its own memory channel, started and then stopped by closing the
    channels. ``measure`` (memory in use: tracemalloc's, or the RSS) is read before the first
    task starts and once all are blocked."""
    senders = []
    async with trio.open_nursery() as nursery:

        async def idle(receive: trio.MemoryReceiveChannel[Any]) -> None:
            async with receive:
                async for _ in receive:
                    pass

        before = measure()
        start = time.perf_counter()
        for _ in range(count):
            send, receive = trio.open_memory_channel[Any](1000)
            senders.append(send)
            nursery.start_soon(idle, receive)
        await trio.testing.wait_all_tasks_blocked()
        spawned = time.perf_counter()
        used = measure() - before
        for send in senders:
            send.close()
    stopped = time.perf_counter()
    return IdleTasksRun(spawn=spawned - start, stop=stopped - spawned, used=used)


class RawServer:
    """A raw trio request/reply: a task serving a memory channel, replying through a per-request
    ``trio.Event`` (the baseline of every round-trip figure)."""

    def __init__(self) -> None:
        self.send, self._receive = trio.open_memory_channel[tuple[Any, list[Any], trio.Event]](1000)

    async def serve(self) -> None:
        """Serve until :meth:`close`."""
        async for message, reply, done in self._receive:
            reply.append(message)
            done.set()

    async def ask(self, message: Any) -> Any:
        """One round trip."""
        reply: list[Any] = []
        done = trio.Event()
        await self.send.send((message, reply, done))
        await done.wait()
        return reply[0]

    async def loop(self, n: int) -> None:
        """``n`` round trips, one after the other."""
        for i in range(n):
            await self.ask(i)

    def close(self) -> None:
        """End :meth:`serve`."""
        self.send.close()
