"""Lifecycle: start, crash and restart, the supervision hook, stop with grace, watch and Down."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from actor_helpers import Echo, Hook, Scripted

import actors

State = actors.ActorState


class Boom(Exception):
    """A crash of a test actor."""


class FailingStart(actors.Actor[Any]):
    async def on_start(self) -> None:
        raise Boom("no start")

    async def receive(self, message: Any) -> Any:
        return message


async def test_on_start_failure_raises_from_spawn_and_leaves_nothing() -> None:
    """If on_start raises, spawn raises that error and nothing stays registered."""
    async with actors.ActorSystem() as system:
        with pytest.raises(Boom, match="no start"):
            await system.spawn(FailingStart, name="f")
        with pytest.raises(actors.ActorNotFound):
            system.lookup("f")
        assert system.statistics().live == 0
        await system.spawn(Echo, name="f")


async def test_crash_answers_the_ask_and_the_mailbox_survives_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The in-hand ask gets the crash error; queued messages go to the fresh instance."""
    record: list[Any] = []
    error = Boom("crash")
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Scripted, record)
        first = await ref.ask(("who", None))
        results: dict[int, Any] = {}

        async def ask(i: int, message: Any) -> None:
            try:
                results[i] = await ref.ask(message)
            except Boom as exc:
                results[i] = exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, 0, ("sleep", 1))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ask, 1, ("fail", error))
            await trio.testing.wait_all_tasks_blocked()
            for i in range(2, 6):
                nursery.start_soon(ask, i, ("who", None))
                await trio.testing.wait_all_tasks_blocked()
            assert ref.statistics().queued == 5
        assert results[0] == 1
        assert results[1] is error
        assert any("raised by actor" in note for note in error.__notes__)
        assert results[1].__traceback__ is not None
        second = results[2]
        assert second is not first
        assert all(results[i] is second for i in range(2, 6))
        assert ("restart", error, second) in record
        assert not any(entry[0] == "stop" for entry in record)  # no on_stop for a crash
        stats = ref.statistics()
        assert (stats.failures, stats.restarts, stats.state) == (1, 1, State.RUNNING)


async def test_tell_crash_restarts_in_place() -> None:
    """A crash while handling a tell restarts the actor; the ref stays the same."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Scripted, record, name="s")
        ref.tell(("fail", Boom()))
        assert await ref.ask(("who", None)) is record[-1][2]
        assert system.lookup("s") is ref
        assert ref.statistics().restarts == 1


class FailingRestart(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        raise Boom("receive")

    async def on_restart(self, error: Exception | None) -> None:
        raise Boom("restart")


async def test_failed_restart_without_hook_stops_with_that_reason() -> None:
    """Without a hook, a crash in on_restart stops the actor with that error as reason."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(FailingRestart)
        with pytest.raises(Boom, match="receive"):
            await ref.ask(1)
        await ref._cell.wait_stopped()
        stats = ref.statistics()
        assert stats.state is State.STOPPED
        assert str(stats.stop_reason) == "restart"
        with pytest.raises(actors.ActorStopped) as info:
            ref.tell(1)
        assert str(info.value.reason) == "restart"


async def test_hook_suspends_keeps_messages_and_restart_serves_them(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Under a hook a crash suspends the actor; queued asks wait, expire, or go to the restart."""
    record: list[Any] = []
    hook = Hook()
    error = Boom("crash")
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Scripted, record, supervisor=hook)
        with pytest.raises(Boom):
            await ref.ask(("fail", error))
        assert hook.failures == [(ref, error)]
        assert ref.statistics().state is State.SUSPENDED
        outcomes: list[Any] = []

        async def ask(seconds: float | None) -> None:
            try:
                outcomes.append(await ref.ask(("who", None), timeout=seconds))
            except actors.AskTimeout as exc:
                outcomes.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, 5.0)
            nursery.start_soon(ask, None)
            ref.tell(("who", None))
            await trio.testing.wait_all_tasks_blocked()
            assert ref.statistics().queued == 3
            await trio.sleep(10)
            assert len(outcomes) == 1
            assert isinstance(outcomes[0], actors.AskTimeout)
            assert outcomes[0].timeout == 5.0
            assert ref.statistics().queued == 2  # the expired ask left the mailbox
            await system.restart(ref)
        fresh = outcomes[1]
        assert ("restart", error, fresh) in record
        assert ref.statistics().state is State.RUNNING
        assert len(hook.failures) == 1


async def test_restart_of_a_suspended_actor_that_fails_stays_suspended() -> None:
    """With a hook, restart raises the on_restart error and leaves the actor SUSPENDED."""
    hook = Hook()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(FailingRestart, supervisor=hook)
        with pytest.raises(Boom, match="receive"):
            await ref.ask(1)
        with pytest.raises(Boom, match="restart"):
            await system.restart(ref)
        assert ref.statistics().state is State.SUSPENDED
        assert len(hook.failures) == 1
        await system.stop(ref)
        assert ref.statistics().state is State.STOPPED
        assert ref.statistics().stop_reason is None


async def test_raising_hook_stops_the_actor() -> None:
    """A hook whose child_failed raises stops the child with that error as reason."""

    class BadHook:
        def child_failed(self, ref: actors.ActorRef[Any], error: Exception) -> None:
            raise RuntimeError("hook broke")

    async with actors.ActorSystem() as system:
        ref = await system.spawn(FailingRestart, supervisor=BadHook())
        with pytest.raises(Boom):
            await ref.ask(1)
        await ref._cell.wait_stopped()
        assert str(ref.statistics().stop_reason) == "hook broke"


async def test_restart_of_a_running_actor_stops_it_with_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """restart of a running actor: the in-hand ask finishes within grace, on_stop, on_restart."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Scripted, record)
        first = await ref.ask(("who", None))
        async with trio.open_nursery() as nursery:
            results: list[Any] = []

            async def slow() -> None:
                results.append(await ref.ask(("sleep", 2)))

            nursery.start_soon(slow)
            await trio.testing.wait_all_tasks_blocked()
            ref.tell(("who", None))
            start = trio.current_time()
            await system.restart(ref, grace=5)
            assert trio.current_time() - start == 2
        assert results == [2]
        assert ("stop", None, first) in record
        second = record[-1][2]
        assert ("restart", None, second) in record
        assert await ref.ask(("who", None)) is second
        assert ref.statistics().restarts == 1


async def test_stop_grace_cancels_a_stuck_handler_and_answers_everything(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """stop lets the handler run for grace seconds, then cancels it; every ask gets ActorStopped."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Scripted, record, name="s")
        errors: list[Any] = []

        async def ask(message: Any) -> None:
            with pytest.raises(actors.ActorStopped) as info:
                await ref.ask(message)
            errors.append(info.value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, ("sleep", 100))
            await trio.testing.wait_all_tasks_blocked()
            for _ in range(20):
                nursery.start_soon(ask, ("who", None))
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            await system.stop(ref, grace=3)
            assert trio.current_time() - start == 3
        assert len(errors) == 21
        assert all(e.name == "s" and e.reason is None for e in errors)
        assert record[-1][:2] == ("stop", None)


async def test_stop_with_grace_zero_and_none(autojump_clock: trio.testing.MockClock) -> None:
    """grace=0 cancels the handler at once; grace=None waits for it however long it takes."""
    async with actors.ActorSystem() as system:
        for grace, expected in [(0, 0), (None, 50)]:
            ref = await system.spawn(Scripted, [])
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ref.send, ("sleep", 50))
                await trio.testing.wait_all_tasks_blocked()
                start = trio.current_time()
                await system.stop(ref, grace=grace)
                assert trio.current_time() - start == expected


class Watcher(actors.Actor[Any]):
    def __init__(self, downs: list[actors.Down]) -> None:
        self.downs = downs

    async def receive(self, message: Any) -> Any:
        if isinstance(message, actors.Down):
            self.downs.append(message)
            return None
        command, ref = message
        if command == "watch":
            self.context.watch(ref)
        elif command == "unwatch":
            self.context.unwatch(ref)
        return None


async def test_watch_delivers_down_with_the_reason() -> None:
    """A watcher gets Down(ref, reason) when a watched actor stops, at once if already stopped."""
    downs: list[actors.Down] = []
    async with actors.ActorSystem() as system:
        watcher = await system.spawn(Watcher, downs)
        normal = await system.spawn(Echo)
        failing = await system.spawn(FailingRestart)
        gone = await system.spawn(Echo)
        unwatched = await system.spawn(Echo)
        await system.stop(gone)
        for ref in (normal, failing, gone, unwatched):
            await watcher.ask(("watch", ref))
        await watcher.ask(("unwatch", unwatched))
        await system.stop(normal)
        with pytest.raises(Boom):
            await failing.ask(1)
        await system.stop(unwatched)
        await watcher.ask(("sync", None))
        assert [d.ref for d in downs] == [gone, normal, failing]
        assert downs[0].reason is None
        assert downs[1].reason is None
        assert str(downs[2].reason) == "restart"


async def test_downs_wait_while_the_watcher_is_suspended() -> None:
    """A Down for a suspended watcher waits in the system lane for its next instance."""
    downs: list[actors.Down] = []
    hook = Hook()

    class FragileWatcher(Watcher):
        async def receive(self, message: Any) -> Any:
            if message == "crash":
                raise Boom("watcher")
            return await super().receive(message)

    async with actors.ActorSystem() as system:
        watcher = await system.spawn(FragileWatcher, downs, supervisor=hook)
        target = await system.spawn(Echo)
        await watcher.ask(("watch", target))
        with pytest.raises(Boom):
            await watcher.ask("crash")
        await system.stop(target)
        assert downs == []
        await system.restart(watcher)
        await watcher.ask(("sync", None))
        assert [d.ref for d in downs] == [target]


async def test_leaving_the_system_stops_in_reverse_start_order() -> None:
    """Leaving the async with block stops every actor, the last started first."""
    order: list[str] = []

    class Named(actors.Actor[Any]):
        async def receive(self, message: Any) -> Any:
            return message

        async def on_stop(self, reason: BaseException | None) -> None:
            order.append(self.context.name)

    async with actors.ActorSystem() as system:
        for name in "abc":
            await system.spawn(Named, name=name)
    assert order == ["c", "b", "a"]


async def test_on_stop_error_becomes_the_stop_reason() -> None:
    """If on_stop raises, that error is the stop reason seen in statistics and by watchers."""

    class BadStop(actors.Actor[Any]):
        async def receive(self, message: Any) -> Any:
            return message

        async def on_stop(self, reason: BaseException | None) -> None:
            raise Boom("stop")

    async with actors.ActorSystem() as system:
        ref = await system.spawn(BadStop)
        await system.stop(ref)
        assert str(ref.statistics().stop_reason) == "stop"
