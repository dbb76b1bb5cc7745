"""Small actors shared by the actor tests."""

from __future__ import annotations

from typing import Any

import trio

import actors


class Echo(actors.Actor[Any]):
    """Replies with the message; records every message it handled."""

    def __init__(self, log: list[Any] | None = None) -> None:
        self.log = log if log is not None else []

    async def receive(self, message: Any) -> Any:
        self.log.append(message)
        return message


class Scripted(actors.Actor[Any]):
    """Messages are commands: ("sleep", s), ("fail", exc), ("who", None) -> the instance."""

    instances: list[Scripted]

    def __init__(self, record: list[Any]) -> None:
        self.record = record
        record.append(("made", self))

    async def receive(self, message: Any) -> Any:
        kind, arg = message
        self.record.append((kind, arg, self))
        if kind == "sleep":
            await trio.sleep(arg)
            return arg
        if kind == "fail":
            raise arg
        return self

    async def on_start(self) -> None:
        self.record.append(("start", self))

    async def on_stop(self, reason: BaseException | None) -> None:
        self.record.append(("stop", reason, self))

    async def on_restart(self, error: Exception | None) -> None:
        self.record.append(("restart", error, self))


class Hook:
    """A supervisor hook that records every child failure."""

    def __init__(self) -> None:
        self.failures: list[tuple[actors.ActorRef[Any], Exception]] = []

    def child_failed(self, ref: actors.ActorRef[Any], error: Exception) -> None:
        self.failures.append((ref, error))
