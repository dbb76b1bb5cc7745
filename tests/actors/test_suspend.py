"""ActorSystem.suspend: stop the instance, keep the slot and its mailbox, restart later."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from actor_helpers import Hook, Outcomes, Worker
from hypothesis import given
from hypothesis import strategies as st

import actors

State = actors.ActorState


class Boom(Exception):
    """A crash of a test actor."""


def events(record: list[Any], *kinds: str) -> list[tuple[Any, ...]]:
    """(kind, arg, time) of the lifecycle entries of ``record`` of the given kinds."""
    return [entry[:3] for entry in record if entry[0] in kinds]


async def test_suspend_stops_the_instance_and_keeps_the_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An idle actor: on_stop(None) runs, the ref and name stay, messages queue until restart."""
    record: list[Any] = []
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, name="w")
        old = (await ref.ask(("sleep", 0)))[0]
        await system.suspend(ref)
        assert trio.current_time() == 0
        assert events(record, "stop") == [("stop", None, 0)]
        stats = ref.statistics()
        assert (stats.state, stats.in_flight, stats.restarts) == (State.SUSPENDED, 0, 0)
        assert system.lookup("w") is ref
        assert ref.is_alive
        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(outcomes.ask, ref, i, ("sleep", 0))
            ref.tell(("sleep", 0))
            await ref.send(("sleep", 0))
            await trio.sleep(5)
            assert ref.statistics().queued == 12
            assert outcomes.got == {}
            await system.restart(ref)
        assert events(record, "restart") == [("restart", None, 5)]
        fresh = outcomes.got[0][1][0]
        assert fresh is not old
        assert all(outcomes.got[i][1][0] is fresh for i in range(10))
        stats = ref.statistics()
        assert (stats.state, stats.restarts, stats.queued, stats.failures) == (
            State.RUNNING,
            1,
            0,
            0,
        )


async def test_the_message_in_hand_may_finish_within_the_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """suspend waits for the message in hand (up to grace), then on_stop runs."""
    record: list[Any] = []
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outcomes.ask, ref, "hand", ("sleep", 2))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(outcomes.ask, ref, "queued", ("sleep", 1))
            await trio.testing.wait_all_tasks_blocked()
            await system.suspend(ref, grace=5)
            assert trio.current_time() == 2
            await trio.testing.wait_all_tasks_blocked()
            assert outcomes.got["hand"][:1] == ("value",)
            assert "queued" not in outcomes.got
            assert events(record, "stop") == [("stop", None, 2)]
            await system.restart(ref)
        assert outcomes.got["queued"][2] == 3


async def test_the_message_in_hand_is_cancelled_at_the_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Past the grace the message in hand is cancelled and its ask gets ActorStopped."""
    record: list[Any] = []
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, name="w")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outcomes.ask, ref, "hand", ("sleep", 10))
            await trio.testing.wait_all_tasks_blocked()
            await system.suspend(ref, grace=1.5)
        assert trio.current_time() == 1.5
        kind, error, when = outcomes.got["hand"]
        assert (kind, when) == ("error", 1.5)
        assert isinstance(error, actors.ActorStopped)
        assert error.name == "w"
        assert events(record, "stop") == [("stop", None, 1.5)]
        assert ref.statistics().state is State.SUSPENDED


async def test_asks_keep_their_deadlines_while_suspended(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A queued ask of a suspended actor times out at its deadline and leaves the mailbox."""
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, [])
        await system.suspend(ref)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outcomes.ask, ref, "short", ("sleep", 0), 2)
            nursery.start_soon(outcomes.ask, ref, "patient", ("sleep", 0))
            await trio.sleep(3)
            assert ref.statistics().queued == 1
            await system.restart(ref)
        kind, error, when = outcomes.got["short"]
        assert (kind, when) == ("error", 2)
        assert isinstance(error, actors.AskTimeout)
        assert outcomes.got["patient"][:1] == ("value",)


async def test_suspending_a_suspended_actor_does_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A second suspend returns at once; on_stop ran once and the mailbox is untouched."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record)
        await system.suspend(ref)
        ref.tell(("sleep", 0))
        await system.suspend(ref, grace=0)
        await system.suspend(ref)
        assert len(events(record, "stop")) == 1
        assert ref.statistics().queued == 1
        assert ref.statistics().state is State.SUSPENDED


async def test_a_crashed_actor_under_a_hook_is_already_suspended(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """suspend of a crashed, hook-suspended actor is a no-op; restart passes the crash error."""
    record: list[Any] = []
    hook = Hook()
    error = Boom("crash")
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, supervisor=hook)
        ref.tell(("fail", (0, error)))
        await trio.testing.wait_all_tasks_blocked()
        assert ref.statistics().state is State.SUSPENDED
        await system.suspend(ref)
        assert events(record, "stop") == []
        assert len(hook.failures) == 1
        await system.restart(ref)
        assert events(record, "restart") == [("restart", error, 0)]


@pytest.mark.parametrize("how", ["stopped", "stopping"])
async def test_suspending_a_stopped_or_stopping_actor_raises(
    how: str, autojump_clock: trio.testing.MockClock
) -> None:
    """suspend of a STOPPED or STOPPING actor raises ActorStopped naming it."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, [], name="w")
        async with trio.open_nursery() as nursery:
            if how == "stopped":
                await system.stop(ref)
            else:
                ref.tell(("sleep", 10))
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(system.stop, ref)
                await trio.testing.wait_all_tasks_blocked()
                assert ref.statistics().state is State.STOPPING
            with pytest.raises(actors.ActorStopped, match="'w'"):
                await system.suspend(ref)


@pytest.mark.parametrize("grace", [-1, float("nan")])
async def test_a_bad_grace_is_refused(grace: float) -> None:
    """suspend validates grace like stop and restart: ValueError naming the value."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, [])
        with pytest.raises(ValueError, match="`grace` must be >= 0"):
            await system.suspend(ref, grace=grace)
        assert ref.statistics().state is State.RUNNING


class FailingStop(actors.Actor[Any]):
    def __init__(self, record: list[Any]) -> None:
        self.record = record

    async def receive(self, message: Any) -> Any:
        return message

    async def on_stop(self, reason: BaseException | None) -> None:
        raise Boom("on_stop")

    async def on_restart(self, error: Exception | None) -> None:
        self.record.append(error)


async def test_on_stop_failure_is_raised_and_the_actor_stays_suspended() -> None:
    """If on_stop raises, suspend raises it, the actor is SUSPENDED, restart passes that error."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(FailingStop, record)
        with pytest.raises(Boom, match="on_stop") as info:
            await system.suspend(ref)
        assert ref.statistics().state is State.SUSPENDED
        await system.restart(ref)
        assert record == [info.value]
        assert await ref.ask("hi") == "hi"


async def test_a_stop_that_overtakes_a_suspension_makes_it_raise(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A stop issued during a suspension's grace wins: suspend raises ActorStopped."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record)
        ref.tell(("sleep", 10))
        await trio.testing.wait_all_tasks_blocked()
        raised: list[BaseException] = []

        async def suspend() -> None:
            try:
                await system.suspend(ref, grace=5)
            except actors.ActorStopped as exc:
                raised.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(suspend)
            await trio.sleep(1)
            await system.stop(ref, grace=1)
        assert trio.current_time() == 2
        assert len(raised) == 1
        assert ref.statistics().state is State.STOPPED
        assert events(record, "stop") == [("stop", None, 2)]


async def test_concurrent_suspends_share_one_suspension(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """50 concurrent suspend calls all return when the single suspension is done."""
    record: list[Any] = []
    done: list[float] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record)
        ref.tell(("sleep", 3))
        await trio.testing.wait_all_tasks_blocked()

        async def suspend() -> None:
            await system.suspend(ref)
            done.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(suspend)
        assert done == [3] * 50
        assert len(events(record, "stop")) == 1


async def test_suspend_and_restart_requested_together_run_one_after_the_other(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A restart requested during a suspension runs after it; a suspend during a restart too."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record)
        ref.tell(("sleep", 2))
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(system.suspend, ref)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(system.restart, ref)
        assert events(record, "stop", "restart") == [("stop", None, 2), ("restart", None, 2)]
        assert ref.statistics().state is State.RUNNING
        record.clear()
        ref.tell(("sleep", 1))
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(system.restart, ref)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(system.suspend, ref)
        assert events(record, "stop", "restart") == [
            ("stop", None, 3),
            ("restart", None, 3),
            ("stop", None, 3),
        ]
        assert ref.statistics().state is State.SUSPENDED


async def test_suspend_gives_every_handler_in_flight_the_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With max_concurrency > 1, every in-flight handler gets the grace; queued ones are kept."""
    record: list[Any] = []
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, max_concurrency=4)
        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(outcomes.ask, ref, i, ("sleep", i + 1))
                await trio.testing.wait_all_tasks_blocked()
            await system.suspend(ref, grace=2.5)
            assert trio.current_time() == 2.5
            assert [outcomes.got[i][0] for i in range(4)] == ["value"] * 2 + ["error"] * 2
            assert all(isinstance(outcomes.got[i][1], actors.ActorStopped) for i in (2, 3))
            stats = ref.statistics()
            assert (stats.state, stats.in_flight, stats.queued) == (State.SUSPENDED, 0, 2)
            await system.restart(ref)
        assert outcomes.got[4][2] == 2.5 + 5
        assert outcomes.got[5][2] == 2.5 + 6


async def test_a_crash_during_the_grace_does_not_call_the_hook(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handler crashing during a suspension's grace is answered; the hook is not called and
    the later restart gets that error."""
    record: list[Any] = []
    hook = Hook()
    error = Boom("late")
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, supervisor=hook)
        ref.tell(("fail", (1, error)))
        await trio.testing.wait_all_tasks_blocked()
        await system.suspend(ref)
        assert trio.current_time() == 1
        assert hook.failures == []
        assert events(record, "stop") == []  # a crashed instance gets no on_stop
        assert ref.statistics().failures == 1
        await system.restart(ref)
        assert events(record, "restart") == [("restart", error, 1)]


async def test_downs_wait_for_the_next_instance(autojump_clock: trio.testing.MockClock) -> None:
    """A Down for a suspended watcher is delivered to the instance the restart makes."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        watched = await system.spawn(Worker, [])
        ref = await system.spawn(Worker, record)
        ref._cell.context.watch(watched)
        await system.suspend(ref)
        await system.stop(watched)
        await trio.sleep(1)
        assert events(record, "down") == []
        await system.restart(ref)
        await trio.testing.wait_all_tasks_blocked()
        assert [entry for entry in record if entry[0] == "down"] == [("down", 1)]


class Starting(actors.Actor[Any]):
    """Records start/stop/restart with the time; starting takes one second."""

    def __init__(self, index: int, log: list[tuple[str, int, float]]) -> None:
        self.index = index
        self.log = log

    async def receive(self, message: Any) -> Any:
        return (self.index, message)

    async def on_start(self) -> None:
        await trio.sleep(1)
        self.log.append(("start", self.index, trio.current_time()))

    async def on_stop(self, reason: BaseException | None) -> None:
        await trio.sleep(0.5)
        self.log.append(("stop", self.index, trio.current_time()))


async def test_one_for_all_restart_keeps_every_queued_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Suspend five children in reverse order and restart them in order, each fully started
    before the next: 100 concurrent askers each get exactly one reply, none is lost."""
    log: list[tuple[str, int, float]] = []
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        refs = [await system.spawn(Starting, i, log) for i in range(5)]
        log.clear()
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for ref in reversed(refs):
                await system.suspend(ref)
            for i in range(100):
                nursery.start_soon(outcomes.ask, refs[i % 5], i, i)
            await trio.testing.wait_all_tasks_blocked()
            assert [ref.statistics().queued for ref in refs] == [20] * 5
            for ref in refs:
                await system.restart(ref)
                assert ref.statistics().state is State.RUNNING
        stops = [(kind, index, when - start) for kind, index, when in log if kind == "stop"]
        starts = [(kind, index, when - start) for kind, index, when in log if kind == "start"]
        assert stops == [("stop", 4 - i, 0.5 * (i + 1)) for i in range(5)]
        assert starts == [("start", i, 2.5 + i + 1) for i in range(5)]
        assert sorted(outcomes.got) == list(range(100))
        assert all(outcomes.got[i][:2] == ("value", (i % 5, i)) for i in range(100))


async def test_restart_grace_bounds_the_message_and_on_stop_but_not_on_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A restart's grace is one deadline for the message in hand and on_stop together (what
    the message leaves of it is on_stop's); on_restart then runs in full."""

    class SlowHooks(Worker):
        async def on_stop(self, reason: BaseException | None) -> None:
            await trio.sleep(1)
            await super().on_stop(reason)

        async def on_restart(self, error: Exception | None) -> None:
            await trio.sleep(1)
            await super().on_restart(error)

    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(SlowHooks, record)
        ref.tell(("sleep", 1))
        await trio.testing.wait_all_tasks_blocked()
        await system.restart(ref, grace=2.5)  # message done at 1, on_stop at 2: within 2.5
        assert trio.current_time() == 3
        assert events(record, "stop", "restart") == [("stop", None, 2), ("restart", None, 3)]
        assert ref.statistics().stop_hooks_cut_off == 0
        record.clear()
        ref.tell(("sleep", 10))
        await trio.testing.wait_all_tasks_blocked()
        await system.restart(ref, grace=2)  # the message spends the grace: on_stop cut off
        assert trio.current_time() == 6
        assert events(record, "stop", "restart") == [("restart", None, 6)]
        assert ref.statistics().stop_hooks_cut_off == 1
        assert ref.statistics().restarts == 2
        await system.suspend(ref, grace=0)
        assert trio.current_time() == 6
        assert ref.statistics().state is State.SUSPENDED
        assert ref.statistics().stop_hooks_cut_off == 2


@given(ops=st.lists(st.sampled_from(["suspend", "restart", "tell", "crash", "ask"]), max_size=25))
def test_lifecycle_follows_a_model(ops: list[str]) -> None:
    """Any sequence of suspend/restart/tell/ask/crash under a hook matches a model of the state,
    the counters and the queue; every message told is served at most once, in order."""

    async def main() -> None:
        record: list[Any] = []
        hook = Hook()
        state = State.RUNNING
        queue: list[int | None] = []  # told numbers; None for a message that crashes
        served: list[int] = []
        told = stops = restarts = failures = 0

        def drain() -> None:
            nonlocal state, failures
            while state is State.RUNNING and queue:
                item = queue.pop(0)
                if item is None:
                    failures += 1
                    state = State.SUSPENDED
                else:
                    served.append(item)

        async with actors.ActorSystem() as system:
            ref = await system.spawn(Worker, record, supervisor=hook)
            for op in ops:
                if op == "suspend":
                    await system.suspend(ref)
                    if state is State.RUNNING:
                        stops += 1
                    state = State.SUSPENDED
                elif op == "restart":
                    await system.restart(ref)
                    if state is State.RUNNING:
                        stops += 1
                    restarts += 1
                    state = State.RUNNING
                elif op == "tell":
                    told += 1
                    ref.tell(("note", told))
                    queue.append(told)
                elif op == "crash":
                    ref.tell(("fail", (0, Boom())))
                    queue.append(None)
                elif state is State.RUNNING:
                    assert await ref.ask(("sleep", 0)) == (record[-1][3], 0)
                else:
                    with pytest.raises(actors.AskTimeout):
                        await ref.ask(("sleep", 0), timeout=1)
                drain()
                await trio.testing.wait_all_tasks_blocked()
                stats = ref.statistics()
                assert stats.state is state
                assert (stats.restarts, stats.failures, stats.queued) == (
                    restarts,
                    failures,
                    len(queue),
                )
                assert len(events(record, "stop")) == stops
                assert len(hook.failures) == failures
                got = [entry[1] for entry in record if entry[0] == "note"]
                assert got == served

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
