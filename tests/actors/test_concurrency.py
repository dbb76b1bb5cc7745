"""max_concurrency: up to N handlers of one instance at once, FIFO, with every per-request rule."""

from __future__ import annotations

import heapq
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


@pytest.mark.parametrize("bad", [0, -3])
async def test_max_concurrency_below_one_is_refused(bad: int) -> None:
    """A max_concurrency below 1 raises ValueError naming the field and the value."""
    async with actors.ActorSystem() as system:
        with pytest.raises(ValueError, match=rf"`max_concurrency` must be >= 1 \(got {bad}\)"):
            await system.spawn(Worker, [], max_concurrency=bad)
        assert system.statistics().live == 0


@pytest.mark.parametrize("bad", [True, 2.0, "2", None])
async def test_max_concurrency_must_be_an_int(bad: Any) -> None:
    """A max_concurrency that is not an int (bools included) raises TypeError naming it."""
    async with actors.ActorSystem() as system:
        with pytest.raises(TypeError, match="`max_concurrency` must be an int"):
            await system.spawn(Worker, [], max_concurrency=bad)


async def test_default_runs_handlers_inline_in_the_actor_task() -> None:
    """With the default of 1 the handler runs in the actor's own task: no extra task, no nursery."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, [], name="w")
        task = await ref.ask(("task", None))
        assert task is ref._cell._task
        assert task is not None
        assert task.child_nurseries == []
        assert ref.max_concurrency == 1
        assert ref.statistics().max_concurrency == 1
        assert ref._cell._pool is None
        assert repr(ref) == "<ActorRef 'w' running, 0 queued>"


async def test_handlers_run_in_tasks_of_a_nursery_owned_by_the_actor_task() -> None:
    """With N > 1 each handler runs in its own task, child of a nursery of the actor's task."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, [], max_concurrency=3)
        task = await ref.ask(("task", None))
        owner = ref._cell._task
        assert task is not owner
        assert task.parent_nursery is not None
        assert task.parent_nursery.parent_task is owner
        assert ref.max_concurrency == 3


async def test_up_to_n_run_at_once_in_fifo_order_and_the_rest_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """100 asks on N=4: four at a time, started in arrival order, each batch one second later."""
    record: list[Any] = []
    peak = [0]
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, peak, name="pool", max_concurrency=4)
        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(outcomes.ask, ref, i, ("sleep", 1))
                await trio.testing.wait_all_tasks_blocked()
            stats = ref.statistics()
            assert (stats.in_flight, stats.queued, stats.max_concurrency) == (4, 96, 4)
            assert repr(ref) == "<ActorRef 'pool' running, 96 queued, 4/4 in flight>"
            assert "4/4 in flight" in repr(ref._cell)
        assert peak[0] == 4
        starts = [(entry[2], entry[1]) for entry in record if entry[0] == "sleep"]
        assert [when for when, _ in starts] == [float(i // 4) for i in range(100)]
        for i in range(100):
            kind, value, when = outcomes.got[i]
            assert kind == "value"
            assert value[1] == 1
            assert when == i // 4 + 1
        assert len({id(value[0]) for _, value, _ in outcomes.got.values()}) == 1
        stats = ref.statistics()
        assert (stats.in_flight, stats.queued, stats.processed) == (0, 0, 100)
        assert repr(ref) == "<ActorRef 'pool' running, 0 queued, 0/4 in flight>"


async def test_tells_are_handled_concurrently_too(autojump_clock: trio.testing.MockClock) -> None:
    """One-way messages also take the N slots: 50 tells of 1 s on N=10 all end at t=5."""
    record: list[Any] = []
    peak = [0]
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, peak, max_concurrency=10, mailbox_size=50)
        for _ in range(50):
            ref.tell(("sleep", 1))
        await trio.testing.wait_all_tasks_blocked()
        assert ref.statistics().in_flight == 10
        await trio.sleep(5)
        await trio.testing.wait_all_tasks_blocked()
        stats = ref.statistics()
        assert (stats.processed, stats.in_flight, stats.queued) == (50, 0, 0)
        assert peak[0] == 10


async def test_a_queued_ask_past_its_deadline_is_shed_without_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With every slot busy, an ask whose deadline passes in the mailbox never reaches receive."""
    record: list[Any] = []
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, max_concurrency=2)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outcomes.ask, ref, "a", ("sleep", 3))
            nursery.start_soon(outcomes.ask, ref, "b", ("sleep", 3))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(outcomes.ask, ref, "late", ("sleep", 0.5), 1)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(outcomes.ask, ref, "c", ("sleep", 1))
        assert outcomes.got["late"][0] == "error"
        assert isinstance(outcomes.got["late"][1], actors.AskTimeout)
        assert outcomes.got["late"][2] == 1
        assert ("sleep", 0.5) not in [(entry[0], entry[1]) for entry in record]
        assert outcomes.got["c"][2] == 4  # started at 3, when a slot freed
        assert ref.statistics().failures == 0


async def test_a_handler_past_its_deadline_is_cancelled_and_the_others_go_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A running handler is cancelled at its ask's deadline; the others in flight are unaffected."""
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, [], max_concurrency=3)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outcomes.ask, ref, "slow", ("sleep", 10), 2)
            nursery.start_soon(outcomes.ask, ref, "ok", ("sleep", 4))
            await trio.testing.wait_all_tasks_blocked()
        assert outcomes.got["slow"][0] == "error"
        assert isinstance(outcomes.got["slow"][1], actors.AskTimeout)
        assert outcomes.got["slow"][2] == 2
        assert outcomes.got["ok"][0] == "value"
        assert outcomes.got["ok"][2] == 4
        stats = ref.statistics()
        assert (stats.failures, stats.restarts, stats.processed) == (0, 0, 2)


async def test_abandoned_queued_requests_never_run(autojump_clock: trio.testing.MockClock) -> None:
    """Askers cancelled while their request waits for a slot are skipped: receive never sees it."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, max_concurrency=2)
        outcomes = Outcomes()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outcomes.ask, ref, "a", ("sleep", 2))
            nursery.start_soon(outcomes.ask, ref, "b", ("sleep", 2))
            await trio.testing.wait_all_tasks_blocked()
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as doomed:
                    for i in range(20):
                        doomed.start_soon(outcomes.ask, ref, i, ("sleep", 100 + i))
                    await trio.testing.wait_all_tasks_blocked()
                    assert ref.statistics().queued == 20
                    scope.cancel()
            assert ref.statistics().queued == 0
        assert not any(entry[0] == "sleep" and entry[1] >= 100 for entry in record)
        assert ref.statistics().processed == 2


async def test_the_system_lane_is_served_before_queued_user_messages(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A Down arriving while every slot is busy takes the next free slot, ahead of the mailbox."""
    record: list[Any] = []
    async with actors.ActorSystem() as system:
        watched = await system.spawn(Worker, [])
        ref = await system.spawn(Worker, record, max_concurrency=2)
        ref._cell.context.watch(watched)
        for _ in range(6):
            ref.tell(("sleep", 1))
        await trio.testing.wait_all_tasks_blocked()
        await system.stop(watched)
        await trio.sleep(10)
        # In FIFO order behind the four queued messages, the Down would run at t=3.
        assert [entry for entry in record if entry[0] == "down"] == [("down", 1)]
        starts = sorted(entry[2] for entry in record if entry[0] == "sleep")
        assert starts == [0, 0, 1, 1, 2, 2]


async def test_crash_lets_the_others_finish_then_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The failing ask gets its error, the other handlers finish on the old instance, queued
    messages wait, and only then the actor restarts in place (no hook)."""
    record: list[Any] = []
    error = Boom("crash")
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, max_concurrency=3)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outcomes.ask, ref, "fail", ("fail", (1, error)))
            nursery.start_soon(outcomes.ask, ref, "two", ("sleep", 2))
            nursery.start_soon(outcomes.ask, ref, "three", ("sleep", 3))
            await trio.testing.wait_all_tasks_blocked()
            for i in range(5):
                nursery.start_soon(outcomes.ask, ref, i, ("sleep", 1))
                await trio.testing.wait_all_tasks_blocked()
            await trio.sleep(1.5)
            stats = ref.statistics()
            assert (stats.in_flight, stats.queued, stats.failures) == (2, 5, 1)
            assert stats.state is State.RUNNING
        assert outcomes.got["fail"][:2] == ("error", error)
        old = outcomes.got["two"][1][0]
        assert outcomes.got["three"][1][0] is old
        assert outcomes.got["three"][2] == 3
        restarts = [entry for entry in record if entry[0] == "restart"]
        assert len(restarts) == 1
        _, restart_error, when, fresh = restarts[0]
        assert (restart_error, when) == (error, 3)
        assert fresh is not old
        for i in range(5):
            assert outcomes.got[i][1][0] is fresh
            assert outcomes.got[i][2] == (4 if i < 3 else 5)
        assert not any(entry[0] == "stop" for entry in record)
        stats = ref.statistics()
        assert (stats.failures, stats.restarts, stats.processed) == (1, 1, 8)


async def test_crash_under_a_hook_calls_it_once_after_the_others_finish(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Under a hook: a second error of the discarded instance answers only its own ask; the
    hook is called once, with the first error, once every handler is done."""
    record: list[Any] = []
    hook = Hook()
    first, second = Boom("first"), Boom("second")
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, supervisor=hook, max_concurrency=3)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outcomes.ask, ref, "first", ("fail", (1, first)))
            nursery.start_soon(outcomes.ask, ref, "second", ("fail", (2, second)))
            nursery.start_soon(outcomes.ask, ref, "ok", ("sleep", 3))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(outcomes.ask, ref, "queued", ("sleep", 1))
            await trio.sleep(2.5)
            assert hook.failures == []
            await trio.sleep(1)
            assert hook.failures == [(ref, first)]
            stats = ref.statistics()
            assert (stats.state, stats.failures, stats.queued, stats.in_flight) == (
                State.SUSPENDED,
                1,
                1,
                0,
            )
            await system.restart(ref)
        assert outcomes.got["first"][1] is first
        assert outcomes.got["second"][1] is second
        assert outcomes.got["ok"][2] == 3.5 - 0.5
        assert outcomes.got["queued"][2] == 4.5
        assert ("restart", first) in [entry[:2] for entry in record]


async def test_stop_gives_every_handler_in_flight_the_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A stop lets all in-flight handlers run for grace, then cancels them with ActorStopped."""
    record: list[Any] = []
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, max_concurrency=5)
        async with trio.open_nursery() as nursery:
            for i in range(8):
                nursery.start_soon(outcomes.ask, ref, i, ("sleep", i + 0.5 if i < 5 else 1))
                await trio.testing.wait_all_tasks_blocked()
            await system.stop(ref, grace=2)
            assert trio.current_time() == 2
        for i in range(2):
            assert outcomes.got[i][0] == "value"
        for i in range(2, 8):
            assert outcomes.got[i][0] == "error"
            assert isinstance(outcomes.got[i][1], actors.ActorStopped)
            assert outcomes.got[i][2] == 2  # in flight: cancelled at the grace; queued: at the end
        stops = [entry for entry in record if entry[0] == "stop"]
        assert [(entry[1], entry[2]) for entry in stops] == [(None, 2)]
        assert ref.statistics().in_flight == 0


async def test_restart_gives_the_grace_then_serves_the_queue_on_a_fresh_instance(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A restart of a busy N>1 actor: grace for all in flight, on_stop once, queue kept."""
    record: list[Any] = []
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, record, max_concurrency=2)
        async with trio.open_nursery() as nursery:
            for key, seconds in [("short", 1), ("long", 9), ("queued", 1)]:
                nursery.start_soon(outcomes.ask, ref, key, ("sleep", seconds))
                await trio.testing.wait_all_tasks_blocked()
            await system.restart(ref, grace=3)
            assert trio.current_time() == 3
        assert outcomes.got["short"][0] == "value"
        assert isinstance(outcomes.got["long"][1], actors.ActorStopped)
        old = outcomes.got["short"][1][0]
        fresh = outcomes.got["queued"][1][0]
        assert fresh is not old
        assert outcomes.got["queued"][2] == 4
        kinds = [(entry[0], entry[2]) for entry in record if entry[0] in ("stop", "restart")]
        assert kinds == [("stop", 3), ("restart", 3)]


async def test_many_askers_each_get_exactly_one_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """200 askers on N=8 with sleeps, failures and deadlines: each gets exactly one outcome."""
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Worker, [], max_concurrency=8, mailbox_size=50)
        async with trio.open_nursery() as nursery:
            for i in range(200):
                if i % 17 == 0:
                    message: Any = ("fail", (0.5, Boom(str(i))))
                else:
                    message = ("sleep", (i % 5) * 0.25)
                timeout = 3.0 if i % 3 == 0 else None
                nursery.start_soon(outcomes.ask, ref, i, message, timeout)
        assert sorted(outcomes.got) == list(range(200))
        for i in range(0, 200, 17):
            assert outcomes.got[i][0] == "error"
        stats = ref.statistics()
        assert stats.in_flight == 0
        assert stats.queued == 0
        assert stats.state is State.RUNNING


class Interrupting(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        await trio.sleep(message)
        raise KeyboardInterrupt


async def test_keyboard_interrupt_in_a_handler_leaves_as_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A KeyboardInterrupt in one of N handlers is not a crash: it leaves the system unwrapped,
    and it is the actor's stop reason as itself, not inside a group."""
    refs: list[actors.ActorRef[Any]] = []

    async def main() -> None:
        async with actors.ActorSystem() as system:
            refs.append(await system.spawn(Interrupting, max_concurrency=3))
            refs[0].tell(5)
            refs[0].tell(1)
            await trio.sleep(10)

    with pytest.raises(KeyboardInterrupt):
        await main()
    stats = refs[0].statistics()
    assert stats.state is State.STOPPED
    assert type(stats.stop_reason) is KeyboardInterrupt
    assert stats.failures == 0


def _model_finish_times(limit: int, durations: list[int]) -> list[int]:
    # N servers, FIFO: each request starts when the earliest of the N slots frees.
    slots = [0] * limit
    finished = []
    for duration in durations:
        start = heapq.heappop(slots)
        heapq.heappush(slots, start + duration)
        finished.append(start + duration)
    return finished


@given(
    limit=st.integers(min_value=1, max_value=6),
    durations=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=30),
)
def test_finish_times_match_an_n_server_fifo_model(limit: int, durations: list[int]) -> None:
    """For any N and handler durations, each ask ends when an N-slot FIFO model says it does."""

    async def main() -> dict[Any, tuple[str, Any, float]]:
        outcomes = Outcomes()
        async with actors.ActorSystem() as system:
            ref = await system.spawn(Worker, [], max_concurrency=limit, mailbox_size=64)
            async with trio.open_nursery() as nursery:
                for i, duration in enumerate(durations):
                    nursery.start_soon(outcomes.ask, ref, i, ("sleep", duration))
                    await trio.testing.wait_all_tasks_blocked()
        return outcomes.got

    got = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert [got[i][2] for i in range(len(durations))] == _model_finish_times(limit, durations)
