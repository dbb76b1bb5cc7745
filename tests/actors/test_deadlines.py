"""Deadlines travel with requests; cancelled callers abandon theirs."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from actor_helpers import Scripted

import actors


async def test_queued_ask_past_its_deadline_is_not_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An ask whose deadline passed while queued gets AskTimeout and never reaches receive."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Scripted, record)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.send, ("sleep", 10))
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            with pytest.raises(actors.AskTimeout) as info:
                await ref.ask(("who", "late"), timeout=3)
            assert trio.current_time() - start == 3
            assert info.value.timeout == 3
            assert isinstance(info.value, TimeoutError)
        assert await ref.ask(("who", "next")) is not None
        assert not any(entry[:2] == ("who", "late") for entry in record)
        assert ref.statistics().processed == 2


async def test_cell_sheds_an_expired_request_it_finds() -> None:
    """A request found expired by the actor is answered AskTimeout without running."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Scripted, record)
        with pytest.raises(actors.AskTimeout):
            await ref.ask(("who", "zero"), timeout=0)
        assert not any(entry[:2] == ("who", "zero") for entry in record)


async def test_handler_runs_under_the_deadline_and_the_actor_goes_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handler past the deadline is cancelled; the caller gets AskTimeout; no crash."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Scripted, record)
        first = await ref.ask(("who", None))
        start = trio.current_time()
        with pytest.raises(actors.AskTimeout):
            await ref.ask(("sleep", 100), timeout=2)
        assert trio.current_time() - start == 2
        assert await ref.ask(("who", None)) is first
        stats = ref.statistics()
        assert (stats.failures, stats.restarts) == (0, 0)


async def test_caller_never_waits_past_its_deadline_on_a_stuck_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Even if the in-hand handler is stuck forever, an ask returns at its deadline."""

    class Stuck(Scripted):
        async def receive(self, message: Any) -> Any:
            with trio.CancelScope(shield=True):
                await trio.sleep(1000)
            return await super().receive(message)

    async with actors.ActorSystem() as system:
        ref = await system.spawn(Stuck, [])
        start = trio.current_time()
        with pytest.raises(actors.AskTimeout):
            await ref.ask(("who", None), timeout=1)
        assert trio.current_time() - start == 1
        await system.stop(ref, grace=0)


async def test_cancelled_caller_abandons_a_queued_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A caller cancelled before its request started: the request is skipped, never run."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Scripted, record)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.send, ("sleep", 5))
            await trio.testing.wait_all_tasks_blocked()
            with trio.move_on_after(1):
                await ref.ask(("who", "abandoned"))
            assert ref.statistics().queued == 0
        await ref.ask(("who", "after"))
        assert not any(entry[:2] == ("who", "abandoned") for entry in record)


async def test_cancelled_caller_of_a_started_request_lets_it_finish(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A caller cancelled after its request started: it runs on and the reply is discarded."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Scripted, record)
        with trio.move_on_after(1):
            await ref.ask(("sleep", 5))
        assert ref.statistics().in_flight == 1
        await ref.ask(("who", None))
        assert trio.current_time() == 5
        assert ref.statistics().processed == 2
        assert ref.statistics().failures == 0
