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


class _Deadline(actors.Actor[Any]):
    """Replies with the deadline its handler runs under, after sleeping ``message`` seconds."""

    async def receive(self, message: Any) -> Any:
        deadline = trio.current_effective_deadline()
        if message:
            await trio.sleep(message)
        return deadline


async def test_the_handler_runs_under_the_asks_deadline_and_only_its_own(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each handler sees its own request's deadline from its first line on; a message without
    a deadline after one with a deadline runs under none (the deadline is not left behind)."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(_Deadline)
        assert await ref.ask(0, timeout=5) == 5
        assert await ref.ask(0, timeout=2) == 2
        assert await ref.ask(0) == float("inf")
        assert await ref.ask(0, timeout=7) == 7
        ref.tell(0)
        assert await ref.ask(0) == float("inf")


async def test_a_passed_deadline_of_an_answered_ask_cancels_nothing_later(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An ask answered well before its deadline: when that deadline passes later (the actor idle
    or busy with other messages), no other message is cancelled or answered with a timeout."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(_Deadline)
        assert await ref.ask(0, timeout=1) == 1
        await trio.sleep(2)  # the deadline passes while the actor is idle
        assert await ref.ask(3) == float("inf")  # runs across no deadline: not cancelled
        assert await ref.ask(0, timeout=1) == 6
        async with trio.open_nursery() as nursery:
            # That deadline (6) passes while a long plain message runs, another waits behind.
            nursery.start_soon(ref.ask, 10)
            await trio.testing.wait_all_tasks_blocked()
            assert await ref.ask(1) == float("inf")
        assert trio.current_time() == 16
        stats = ref.statistics()
        assert (stats.failures, stats.processed) == (0, 5)


async def test_a_handler_cut_by_its_deadline_is_a_timeout_and_the_actor_goes_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The deadline cancels the handler at its checkpoint: AskTimeout, counted as processed, not
    a crash; the next messages run under fresh deadlines."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(_Deadline)
        for _ in range(3):
            start = trio.current_time()
            with pytest.raises(actors.AskTimeout):
                await ref.ask(10, timeout=2)
            assert trio.current_time() - start == 2
            assert await ref.ask(1, timeout=3) == trio.current_time() + 2
        stats = ref.statistics()
        assert (stats.failures, stats.restarts, stats.processed) == (0, 0, 6)


async def test_many_timed_asks_answered_early_leave_the_keeper_nothing_to_do(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Thousands of timed asks, all answered at once: every one gets its reply, and the ones
    still waiting at their deadline (queued behind a stuck handler) all get AskTimeout."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(_Deadline, mailbox_size=5000)
        for i in range(3000):
            assert await ref.ask(0, timeout=1 + i % 7) == 1 + i % 7
        got: list[Any] = []

        async def late(seconds: float) -> None:
            try:
                await ref.ask(0, timeout=seconds)
            except actors.AskTimeout:
                got.append((seconds, trio.current_time()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.ask, 100)
            await trio.testing.wait_all_tasks_blocked()
            for i in range(2000):
                nursery.start_soon(late, 1 + i % 5)
        assert sorted(got) == sorted((1 + i % 5, 1 + i % 5) for i in range(2000))


async def test_an_interrupt_in_on_start_reaches_the_spawner() -> None:
    """A KeyboardInterrupt raised by on_start is raised by spawn (as from a nursery's start),
    not swallowed; nothing stays registered."""

    class Interrupted(actors.Actor[Any]):
        async def on_start(self) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        async with actors.ActorSystem() as system:
            await system.spawn(Interrupted, name="i")
    with pytest.raises(actors.ActorNotFound):
        system.lookup("i")


async def test_a_stale_deadline_passing_as_the_actor_wakes_cancels_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The deadline of an answered ask passes just after a new message woke the actor, before it
    runs: the new message still runs in full, under no deadline."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(_Deadline)
        assert await ref.ask(0, timeout=1) == 1  # its deadline stays on the serving scope
        ref.tell(0)  # wakes the actor (runnable, not yet run) ...
        autojump_clock.jump(5)  # ... and the old deadline passes before it runs
        assert await ref.ask(2) == float("inf")
        assert ref.statistics().processed == 3


async def test_a_spawn_cancelled_before_the_actor_task_ran_is_answered_once() -> None:
    """The spawner cancelled at once (before the new task ever ran) gets its cancellation, once,
    from the cell; nothing stays registered and the name can be used again."""
    async with actors.ActorSystem() as system:
        with trio.CancelScope() as scope:
            scope.cancel()
            await system.spawn(_Deadline, name="d")
        assert scope.cancelled_caught
        with pytest.raises(actors.ActorNotFound):
            system.lookup("d")
        ref = await system.spawn(_Deadline, name="d")
        assert await ref.ask(0) == float("inf")
        assert system.statistics().live == 1
