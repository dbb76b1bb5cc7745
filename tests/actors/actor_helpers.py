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


class Worker(actors.Actor[Any]):
    """Commands: ("sleep", s) -> (self, s); ("fail", (s, exc)) raises exc after s seconds;
    ("note", x) -> (self, x) at once; ("task", None) -> the running trio task. Records every
    message with the time and the instance; tracks the largest number of concurrent handlers."""

    def __init__(self, record: list[Any], peak: list[int] | None = None) -> None:
        self.record = record
        self.peak = peak if peak is not None else [0]
        self.running = 0

    async def receive(self, message: Any) -> Any:
        if isinstance(message, actors.Down):
            self.record.append(("down", trio.current_time()))
            return None
        kind, arg = message
        self.record.append((kind, arg, trio.current_time(), self))
        self.running += 1
        self.peak[0] = max(self.peak[0], self.running)
        try:
            if kind == "sleep":
                await trio.sleep(arg)
                return (self, arg)
            if kind == "fail":
                seconds, error = arg
                await trio.sleep(seconds)
                raise error
            if kind == "note":
                return (self, arg)
            if kind == "task":
                return trio.lowlevel.current_task()
            raise AssertionError(f"unknown command {kind!r}")
        finally:
            self.running -= 1

    async def on_stop(self, reason: BaseException | None) -> None:
        self.record.append(("stop", reason, trio.current_time(), self))

    async def on_restart(self, error: Exception | None) -> None:
        self.record.append(("restart", error, trio.current_time(), self))


class Outcomes:
    """Collects each asker's outcome, by key, with the trio time it arrived."""

    def __init__(self) -> None:
        self.got: dict[Any, tuple[str, Any, float]] = {}

    async def ask(
        self, ref: actors.ActorRef[Any], key: Any, message: Any, seconds: float | None = None
    ) -> None:
        try:
            value = await ref.ask(message, timeout=seconds)
        except Exception as exc:
            if key in self.got:
                raise AssertionError(f"{key!r} answered twice") from exc
            self.got[key] = ("error", exc, trio.current_time())
        else:
            if key in self.got:
                raise AssertionError(f"{key!r} answered twice")
            self.got[key] = ("value", value, trio.current_time())
