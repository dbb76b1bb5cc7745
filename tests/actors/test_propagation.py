"""BaseExceptions propagate; leaving the system answers every pending request."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from actor_helpers import Echo, Scripted

import actors


class Interrupting(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        if isinstance(message, trio.Event):
            await message.wait()
            raise KeyboardInterrupt
        await trio.sleep_forever()


def test_keyboard_interrupt_in_a_handler_ends_trio_run() -> None:
    """KeyboardInterrupt raised in a handler ends trio.run with KeyboardInterrupt; asks answered."""
    outcomes: list[BaseException] = []

    async def main() -> None:
        async with actors.ActorSystem() as system:
            ref = await system.spawn(Interrupting)
            other = await system.spawn(Interrupting)

            async def ask(target: actors.ActorRef[Any], message: Any) -> None:
                try:
                    await target.ask(message)
                except actors.ActorStopped as exc:
                    outcomes.append(exc)
                except trio.Cancelled as exc:
                    outcomes.append(exc)
                    raise

            gate = trio.Event()
            ref.tell(gate)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask, other, "hang")
                for _ in range(5):
                    nursery.start_soon(ask, ref, "queued")
                await trio.testing.wait_all_tasks_blocked()
                assert ref.statistics().queued == 5
                gate.set()
                await trio.sleep_forever()

    with pytest.raises(KeyboardInterrupt):
        trio.run(main)
    assert len(outcomes) == 6
    stopped = [exc for exc in outcomes if isinstance(exc, actors.ActorStopped)]
    assert len(stopped) == 5  # the queued asks were answered
    assert all(isinstance(exc.reason, KeyboardInterrupt) for exc in stopped)


async def test_cancelled_is_not_a_crash(autojump_clock: trio.testing.MockClock) -> None:
    """A cancelled enclosing scope stops the actors in order: the handler in hand gets the
    shutdown grace, then is cancelled; nothing is counted or restarted; the scope sees it."""
    record: list[Any] = []
    with trio.move_on_after(5) as scope:
        async with actors.ActorSystem(shutdown_grace=3) as system:
            ref = await system.spawn(Scripted, record)
            ref.tell(("sleep", 100))
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert trio.current_time() == 8
    stats = ref.statistics()
    assert stats.state is actors.ActorState.STOPPED
    assert (stats.failures, stats.restarts, stats.processed) == (0, 0, 0)
    assert stats.stop_reason is None
    assert record[-1][:2] == ("stop", None)


async def test_leaving_the_system_answers_every_pending_ask(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Pending asks of callers outside the system all get an error when the system exits."""
    outcomes: list[Any] = []

    async def ask(ref: actors.ActorRef[Any], message: Any) -> None:
        try:
            outcomes.append(await ref.ask(message))
        except actors.ActorError as exc:
            outcomes.append(exc)

    async with trio.open_nursery() as callers, actors.ActorSystem(shutdown_grace=1) as system:
        refs = [await system.spawn(Scripted, []) for _ in range(5)]
        for ref in refs:
            callers.start_soon(ask, ref, ("sleep", 1000))
            await trio.testing.wait_all_tasks_blocked()
            for _ in range(30):
                callers.start_soon(ask, ref, ("who", None))
        await trio.testing.wait_all_tasks_blocked()
    assert len(outcomes) == 155
    assert all(isinstance(o, actors.ActorStopped) for o in outcomes)
    assert trio.current_time() == 5  # one grace per busy actor, in reverse order


async def test_body_exception_leaves_unwrapped_after_stopping_actors() -> None:
    """An exception in the body leaves the system block as itself, actors stopped."""
    refs: list[actors.ActorRef[Any]] = []

    async def body() -> None:
        async with actors.ActorSystem() as system:
            refs.append(await system.spawn(Echo))
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        await body()
    assert not refs[0].is_alive
