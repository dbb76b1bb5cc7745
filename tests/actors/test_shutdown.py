"""Shutdown: the system stops its actors in order however its block is left (a cancelled
enclosing scope included), and a stop's grace bounds the messages in hand and on_stop together."""

from __future__ import annotations

import functools
import math
from typing import Any

import pytest
import trio
import trio.testing
from actor_helpers import Outcomes, Worker

import actors

State = actors.ActorState


class Boom(Exception):
    """An error raised by a test body."""


class Slow(actors.Actor[Any]):
    """Handles ("sleep", s); its hooks record (event, name, time) in ``log``; ``on_stop`` records
    "stopping" before its first checkpoint, sleeps ``stop_delay``, then records "stopped"; its
    ``on_start`` sleeps ``start_delay``."""

    def __init__(
        self, log: list[tuple[str, str, float]], stop_delay: float = 1.0, start_delay: float = 0.0
    ) -> None:
        self.log = log
        self.stop_delay = stop_delay
        self.start_delay = start_delay

    def note(self, event: str) -> None:
        self.log.append((event, self.context.name, trio.current_time()))

    async def on_start(self) -> None:
        self.note("starting")
        await trio.sleep(self.start_delay)
        self.note("started")

    async def receive(self, message: Any) -> Any:
        _kind, seconds = message
        await trio.sleep(seconds)
        return (self.context.name, seconds)

    async def on_stop(self, reason: BaseException | None) -> None:
        self.note("stopping")
        await trio.sleep(self.stop_delay)
        self.note("stopped")


def in_order(names: str, start: float, step: float) -> list[tuple[str, str, float]]:
    """The log of stopping ``names`` one after the other, each taking ``step`` seconds."""
    log = []
    for index, name in enumerate(names):
        log.append(("stopping", name, start + index * step))
        log.append(("stopped", name, start + (index + 1) * step))
    return log


# -- a cancelled enclosing scope ----------------------------------------------------------------


async def test_a_deadline_around_the_system_stops_the_actors_in_reverse_order_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """move_on_after around the system: at the deadline the actors stop in reverse start order,
    each on_stop awaited, and only then the scope catches its cancellation."""
    log: list[tuple[str, str, float]] = []
    reached = False
    with trio.move_on_after(10) as scope:
        async with actors.ActorSystem() as system:
            for name in "abc":
                await system.spawn(Slow, log, name=name)
            log.clear()
            await trio.sleep_forever()
        reached = True  # pragma: no cover
    assert scope.cancelled_caught
    assert not reached
    assert trio.current_time() == 13
    assert log == in_order("cba", 10, 1)
    assert system.statistics().live == 0


async def test_the_cancellation_reaches_the_scope_that_made_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Only the scope that was cancelled catches it, after the ordered stop: scopes between it
    and the system do not, and code between them does not run."""
    log: list[tuple[str, str, float]] = []
    passed: list[str] = []
    with trio.move_on_after(100) as far:
        with trio.CancelScope() as near:
            with trio.CancelScope() as inner:
                async with actors.ActorSystem() as system:
                    await system.spawn(Slow, log, name="a")
                    await system.spawn(Slow, log, name="b")
                    await trio.sleep(5)
                    near.cancel()
                    await trio.sleep_forever()
                passed.append("system")  # pragma: no cover
            passed.append("inner")  # pragma: no cover
        passed.append("near")
    assert (far.cancelled_caught, near.cancelled_caught, inner.cancelled_caught) == (
        False,
        True,
        False,
    )
    assert passed == ["near"]
    assert trio.current_time() == 7
    assert [entry for entry in log if entry[0] != "starting" and entry[0] != "started"] == (
        in_order("ba", 5, 1)
    )


async def test_fail_after_raises_too_slow_after_the_ordered_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """fail_after around the system raises TooSlowError once the actors stopped in order."""
    log: list[tuple[str, str, float]] = []

    async def body() -> None:
        with trio.fail_after(3):
            async with actors.ActorSystem() as system:
                await system.spawn(Slow, log, 2.0, name="a")
                await system.spawn(Slow, log, 2.0, name="b")
                log.clear()
                await trio.sleep_forever()

    with pytest.raises(trio.TooSlowError):
        await body()
    assert trio.current_time() == 7
    assert log == in_order("ba", 3, 2)


async def test_the_grace_bounds_the_shutdown_under_a_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Actors stuck in a handler and in on_stop are cut off at their shutdown grace, one after
    the other: the shutdown is bounded and the stop reason stays None."""
    log: list[tuple[str, str, float]] = []
    outcomes = Outcomes()
    async with trio.open_nursery() as clients:
        with trio.move_on_after(10) as scope:
            async with actors.ActorSystem(shutdown_grace=2) as system:
                refs = [await system.spawn(Slow, log, math.inf, name=n) for n in "abc"]
                for index, ref in enumerate(refs):
                    clients.start_soon(outcomes.ask, ref, index, ("sleep", math.inf))
                log.clear()
                await trio.sleep_forever()
    assert scope.cancelled_caught
    assert trio.current_time() == 16
    # Each actor's grace is spent by its stuck handler: on_stop is cancelled as it begins.
    assert log == [("stopping", name, at) for name, at in (("c", 12), ("b", 14), ("a", 16))]
    for index, ref in enumerate(refs):
        stats = ref.statistics()
        assert (stats.state, stats.stop_reason, stats.stop_hooks_cut_off) == (
            State.STOPPED,
            None,
            1,
        )
        kind, error, at = outcomes.got[index]
        assert (kind, type(error), at) == ("error", actors.ActorStopped, 10 + 2 * (3 - index))


async def test_many_actors_stop_in_reverse_order_and_every_ask_is_answered_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """100 clients outside the system, 50 actors each with one ask in hand and one queued: at
    the deadline the actors stop last-started first, one grace each, and every ask gets exactly
    one ActorStopped at its actor's stop."""
    record: list[Any] = []
    outcomes = Outcomes()
    async with trio.open_nursery() as clients:
        with trio.move_on_after(10) as scope:
            async with actors.ActorSystem(shutdown_grace=1) as system:
                refs = [await system.spawn(Worker, record, name=f"w{i}") for i in range(50)]
                for key in range(100):
                    clients.start_soon(outcomes.ask, refs[key % 50], key, ("sleep", 1000))
                await trio.testing.wait_all_tasks_blocked()
                assert [ref.statistics().queued for ref in refs] == [1] * 50
                await trio.sleep_forever()
    assert scope.cancelled_caught
    assert trio.current_time() == 60
    assert sorted(outcomes.got) == list(range(100))
    for key, (kind, error, at) in outcomes.got.items():
        assert (kind, type(error)) == ("error", actors.ActorStopped)
        assert at == 10 + (50 - key % 50)  # w49 answered at 11, ..., w0 at 60
    stops = [entry[2] for entry in record if entry[0] == "stop"]
    assert stops == [10 + k for k in range(1, 51)]


async def test_cancelled_while_spawning_stops_the_started_actors_and_stays_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A deadline during a slow on_start cancels that start (nothing registered), stops the
    actors already started in reverse order, and reaches the scope."""
    log: list[tuple[str, str, float]] = []
    with trio.move_on_after(2) as scope:
        async with actors.ActorSystem() as system:
            await system.spawn(Slow, log, name="a")
            await system.spawn(Slow, log, name="b")
            await system.spawn(Slow, log, 1.0, 5.0, name="c")
            pytest.fail("the spawn must be cancelled")  # pragma: no cover
    assert scope.cancelled_caught
    assert trio.current_time() == 4
    assert log == [
        ("starting", "a", 0),
        ("started", "a", 0),
        ("starting", "b", 0),
        ("started", "b", 0),
        ("starting", "c", 0),
        *in_order("ba", 2, 1),
    ]
    with pytest.raises(actors.ActorNotFound):
        system.lookup("c")
    assert system.statistics().live == 0


async def test_a_system_entered_in_a_cancelled_scope_cancels_its_body_and_leaves_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Entered under a cancelled scope, the body is cancelled at its first checkpoint; what it
    started is stopped in order; the cancellation reaches the scope."""
    log: list[tuple[str, str, float]] = []
    ref: actors.ActorRef[Any] | None = None
    with trio.CancelScope() as scope:
        scope.cancel()
        async with actors.ActorSystem() as system:
            # The cancellation may land inside spawn (at its first checkpoint) or after it.
            ref = await system.spawn(Slow, log, name="a")
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert ref is None or not ref.is_alive
    assert system.statistics().live == 0


async def test_a_deadline_during_a_normal_shutdown_keeps_the_graces(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A deadline that passes while the block's normal shutdown runs does not cut it short:
    on_stop finishes, then the deadline's cancellation leaves the block for its scope."""
    log: list[tuple[str, str, float]] = []
    reached = False
    with trio.move_on_after(2) as scope:
        async with actors.ActorSystem() as system:
            await system.spawn(Slow, log, 3.0, name="a")
            await trio.sleep(1)
            log.clear()
        reached = True  # pragma: no cover
    assert scope.cancelled_caught
    assert not reached
    assert log == in_order("a", 1, 3)
    assert trio.current_time() == 4


async def test_nested_systems_stop_the_inner_actors_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A system inside another's block stops first under a deadline around both, then the
    outer one, each in reverse start order."""
    log: list[tuple[str, str, float]] = []
    with trio.move_on_after(10) as scope:
        async with actors.ActorSystem() as outer:
            await outer.spawn(Slow, log, name="o1")
            await outer.spawn(Slow, log, name="o2")
            async with actors.ActorSystem() as inner:
                await inner.spawn(Slow, log, name="i1")
                await inner.spawn(Slow, log, name="i2")
                log.clear()
                await trio.sleep_forever()
    assert scope.cancelled_caught
    assert log == [
        ("stopping", "i2", 10),
        ("stopped", "i2", 11),
        ("stopping", "i1", 11),
        ("stopped", "i1", 12),
        ("stopping", "o2", 12),
        ("stopped", "o2", 13),
        ("stopping", "o1", 13),
        ("stopped", "o1", 14),
    ]


# -- exceptions out of the body -----------------------------------------------------------------


def test_keyboard_interrupt_in_the_body_stops_in_order_then_propagates() -> None:
    """KeyboardInterrupt raised in the body leaves trio.run as itself, after every actor
    stopped in reverse start order with its on_stop awaited."""
    log: list[tuple[str, str, float]] = []
    after: list[str] = []

    async def main() -> None:
        async with actors.ActorSystem() as system:
            for name in "abc":
                await system.spawn(Slow, log, name=name)
            await trio.sleep(5)
            log.clear()
            raise KeyboardInterrupt
        after.append("the system swallowed it")  # pragma: no cover

    with pytest.raises(KeyboardInterrupt):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert after == []
    assert log == in_order("cba", 5, 1)


async def test_an_exception_in_the_body_stops_in_order_and_leaves_as_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An Exception out of the body leaves unwrapped, after the ordered stop."""
    log: list[tuple[str, str, float]] = []

    async def body() -> None:
        async with actors.ActorSystem() as system:
            await system.spawn(Slow, log, name="a")
            await system.spawn(Slow, log, name="b")
            log.clear()
            raise Boom("body")

    with pytest.raises(Boom, match="body") as caught:
        await body()
    assert caught.type is Boom
    assert log == in_order("ba", 0, 1)


def test_keyboard_interrupt_from_a_handler_still_cancels_every_actor_at_once() -> None:
    """An actor's KeyboardInterrupt is not met with an ordered stop: the others are cancelled
    at once (their on_stop is not awaited) and it leaves trio.run as itself."""
    log: list[tuple[str, str, float]] = []

    class Interrupting(actors.Actor[Any]):
        async def receive(self, message: Any) -> Any:
            raise KeyboardInterrupt

    async def main() -> None:
        async with actors.ActorSystem() as system:
            await system.spawn(Slow, log, name="a")
            ref = await system.spawn(Interrupting, name="b")
            log.clear()
            ref.tell("go")
            await trio.sleep_forever()

    with pytest.raises(KeyboardInterrupt):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert log == []


# -- a stop's grace bounds on_stop --------------------------------------------------------------


@pytest.mark.parametrize(("grace", "ended_at", "cut_off"), [(2, 2, 1), (0, 0, 1), (None, 100, 0)])
async def test_stop_grace_bounds_a_slow_on_stop(
    autojump_clock: trio.testing.MockClock, grace: float | None, ended_at: float, cut_off: int
) -> None:
    """An idle actor's on_stop is cancelled grace seconds after the stop was asked for (0: at
    its first checkpoint, after its non-blocking start; None: waited for); the stop reason and
    Down stay None."""
    log: list[tuple[str, str, float]] = []
    downs: list[actors.Down] = []

    class Watcher(actors.Actor[Any]):
        def __init__(self, target: actors.ActorRef[Any]) -> None:
            self.target = target

        async def on_start(self) -> None:
            self.context.watch(self.target)

        async def receive(self, message: Any) -> Any:
            downs.append(message)

    async with actors.ActorSystem() as system:
        ref = await system.spawn(Slow, log, 100.0, name="a")
        await system.spawn(Watcher, ref)
        log.clear()
        await system.stop(ref, grace=grace)
        assert trio.current_time() == ended_at
        stats = ref.statistics()
        assert (stats.state, stats.stop_reason, stats.stop_hooks_cut_off) == (
            State.STOPPED,
            None,
            cut_off,
        )
        await trio.testing.wait_all_tasks_blocked()
        assert [(down.ref, down.reason) for down in downs] == [(ref, None)]
    expected = [("stopping", "a", 0)]
    assert log == ([*expected, ("stopped", "a", 100)] if grace is None else expected)


async def test_the_messages_in_hand_and_on_stop_share_one_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With grace 3 and a message that takes 2, on_stop gets the 1 second left and is cut off;
    with grace 5 it has the 2 it needs."""
    log: list[tuple[str, str, float]] = []
    async with actors.ActorSystem() as system:
        for grace, name in ((3, "short"), (5, "long")):
            start = trio.current_time()
            ref = await system.spawn(Slow, log, 2.0, name=name)
            ref.tell(("sleep", 2))
            await trio.testing.wait_all_tasks_blocked()
            await system.stop(ref, grace=grace)
            assert trio.current_time() == start + min(grace, 4)
            assert ref.statistics().processed == 1
            assert ref.statistics().stop_hooks_cut_off == (1 if grace == 3 else 0)
    assert log == [
        ("starting", "short", 0),
        ("started", "short", 0),
        ("stopping", "short", 2),
        ("starting", "long", 3),
        ("started", "long", 3),
        ("stopping", "long", 5),
        ("stopped", "long", 7),
    ]


async def test_a_later_stop_shortens_the_deadline_of_a_running_on_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A stop with grace 0 while on_stop runs under a longer grace cuts it off at once."""
    log: list[tuple[str, str, float]] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Slow, log, 100.0, name="a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(system.stop, ref, grace=50))
            await trio.sleep(3)
            assert ref.statistics().state is State.STOPPING
            await system.stop(ref, grace=0)
        assert trio.current_time() == 3
        assert ref.statistics().stop_hooks_cut_off == 1


async def test_on_stop_handlers_in_flight_share_the_grace_with_max_concurrency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With max_concurrency 4, four handlers in flight and on_stop share one deadline: the
    handlers are cancelled at it, on_stop gets nothing left; every ask gets ActorStopped."""
    log: list[tuple[str, str, float]] = []
    outcomes = Outcomes()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Slow, log, 1.0, name="a", max_concurrency=4)
        async with trio.open_nursery() as nursery:
            for key in range(4):
                nursery.start_soon(outcomes.ask, ref, key, ("sleep", 10))
            await trio.testing.wait_all_tasks_blocked()
            assert ref.statistics().in_flight == 4
            await system.stop(ref, grace=2)
        assert trio.current_time() == 2
    got = {key: (kind, type(error), at) for key, (kind, error, at) in outcomes.got.items()}
    assert got == dict.fromkeys(range(4), ("error", actors.ActorStopped, 2))
    assert ref.statistics().stop_hooks_cut_off == 1
    assert [entry for entry in log if entry[0].startswith("stop")] == [("stopping", "a", 2)]


async def test_suspend_grace_bounds_on_stop_and_restart_runs_on_restart_in_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """suspend cuts a slow on_stop off at its grace and the actor is SUSPENDED all the same;
    a later restart's on_restart is not bounded by the restart's grace."""
    log: list[tuple[str, str, float]] = []

    class SlowRestart(Slow):
        async def on_restart(self, error: Exception | None) -> None:
            await trio.sleep(10)
            self.note("restarted")

    async with actors.ActorSystem() as system:
        ref = await system.spawn(SlowRestart, log, 100.0, name="a")
        log.clear()
        await system.suspend(ref, grace=1)
        assert trio.current_time() == 1
        assert ref.statistics().state is State.SUSPENDED
        assert ref.statistics().stop_hooks_cut_off == 1
        await system.restart(ref, grace=0)
        assert trio.current_time() == 11
        assert ref.statistics().state is State.RUNNING
        await system.stop(ref, grace=0)
    assert log == [("stopping", "a", 0), ("restarted", "a", 11), ("stopping", "a", 11)]
    assert ref.statistics().stop_hooks_cut_off == 2
