"""Raw trio baselines that the project's figures are divided by."""

from __future__ import annotations

from typing import Any

import trio

__all__ = ["RawServer"]


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
