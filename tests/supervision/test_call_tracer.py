"""The request path's span hook: ``EventBus.call_tracer`` wraps every call of the guarded services
publishing on that bus, and is ``None`` (one attribute check) by default."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

import actors
from supervisor.observe._bus import EventBus
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ServiceSpec, SupervisorSpec


class Echo(actors.Actor[Any]):
    """Answers its message; raises on "fail"."""

    async def receive(self, message: Any) -> Any:
        if message == "fail":
            raise ValueError("fail")
        return message


class Recorder:
    """A tracer that records what it wraps and the events published while it does."""

    def __init__(self, bus: EventBus[Any]) -> None:
        self.calls: list[tuple[str, float, str]] = []
        self.inside = False
        self.seen: list[str] = []
        bus.add_listener(
            lambda event: self.seen.append(type(event).__name__ + ("*" if self.inside else ""))
        )

    async def trace(
        self, path: str, deadline: float, call: Callable[..., Awaitable[Any]], *args: Any
    ) -> Any:
        self.inside = True
        try:
            result = await call(*args)
        except Exception as exc:
            self.calls.append((path, deadline, type(exc).__name__))
            raise
        finally:
            self.inside = False
        self.calls.append((path, deadline, "ok"))
        return result


def spec(**options: Any) -> SupervisorSpec:
    return SupervisorSpec(name="app", children=(ServiceSpec(name="db", factory=Echo, **options),))


async def test_the_tracer_wraps_each_call_with_its_path_and_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each call runs inside the tracer, which gets the path and the trio deadline (``inf``
    without a timeout); answers and errors pass through unchanged; the call's events are
    published while it runs."""
    bus: EventBus[Any] = EventBus()
    assert bus.call_tracer is None
    async with run_tree(spec(timeout=2.0), events=bus) as tree:
        recorder = Recorder(bus)
        bus.call_tracer = recorder
        db = tree.service("db")
        started = trio.current_time()
        assert await db.call("hello") == "hello"
        with pytest.raises(ValueError, match="fail"):
            await db.call("fail", timeout=None)
        bus.call_tracer = None
        assert await db.call("untraced") == "untraced"
    assert recorder.calls == [
        ("app/db", started + 2.0, "ok"),
        ("app/db", float("inf"), "ValueError"),
    ]
    assert "RequestCompleted*" in recorder.seen
    assert "RequestFailed*" in recorder.seen
    assert recorder.seen.count("RequestCompleted") == 1  # the untraced call
