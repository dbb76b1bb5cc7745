"""The test kit's waits: they return as soon as the state is reached (or at once if it already
is), wake on events rather than polling, and fail with a clear WaitTimeout instead of hanging."""

from __future__ import annotations

from typing import Any

import pytest
import trio

import actors
from supervisor import (
    BreakerSpec,
    ChildRestarted,
    ChildStarted,
    ChildState,
    CircuitBreaker,
    CircuitState,
    EventRecorder,
    RestartBackoff,
    ServiceSpec,
    SupervisorSpec,
    WaitTimeout,
    run_tree,
    wait_for_breaker,
    wait_for_events,
    wait_for_service,
)


class Flaky(actors.Actor[Any]):
    """Raises for ``"boom"``, answers anything else."""

    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise RuntimeError("boom")
        return message


def _spec() -> SupervisorSpec:
    return SupervisorSpec(
        name="app",
        max_restarts=100,
        within=1.0,
        backoff=RestartBackoff(initial_delay=0.5, jitter=False),
        children=[
            ServiceSpec(
                name="db", factory=Flaky, breaker=BreakerSpec(failure_threshold=2, timeout=30.0)
            ),
            ServiceSpec(name="cache", factory=Flaky),
        ],
    )


async def test_wait_for_service_follows_a_restart(autojump_clock: trio.testing.MockClock) -> None:
    """A crash sends the service through restarting back to running; a breaker that opens parks
    it."""
    async with run_tree(_spec()) as tree:
        node = await wait_for_service(tree, "cache", ChildState.RUNNING)
        assert node.path == "app/cache"
        with pytest.raises(RuntimeError):
            await tree.service("cache").call("boom")
        await wait_for_service(tree, "app/cache", "restarting")
        started = trio.current_time()
        await wait_for_service(tree, "cache", "running")
        assert trio.current_time() - started == pytest.approx(0.5)
        for _ in range(2):
            with pytest.raises(RuntimeError):
                await tree.service("db").call("boom")
        await wait_for_service(tree, "db", ChildState.PARKED)


async def test_wait_for_breaker_sees_the_lazy_half_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An open breaker turns half-open by time alone; the wait wakes at exactly that moment."""
    breaker = CircuitBreaker("svc", failure_threshold=1, timeout=12.0)
    with pytest.raises(OSError):
        await breaker.call(_raise)
    opened = trio.current_time()
    await wait_for_breaker(breaker, CircuitState.OPEN)
    await wait_for_breaker(breaker, "half_open", timeout=20.0)
    assert trio.current_time() - opened == 12.0


async def test_wait_for_breaker_of_a_service(autojump_clock: trio.testing.MockClock) -> None:
    """A service's handle stands for its breaker; a service without one is refused."""
    async with run_tree(_spec()) as tree:
        db = tree.service("db")

        async def trip() -> None:
            await trio.sleep(3.0)
            for _ in range(2):
                with pytest.raises(RuntimeError):
                    await db.call("boom")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trip)
            await wait_for_breaker(db, CircuitState.OPEN)
            # The second failure waits for the 0.5 s restart of the first one's crash.
            assert trio.current_time() - tree.started_at == 3.5
        with pytest.raises(TypeError, match="has no circuit breaker"):
            await wait_for_breaker(tree.service("cache"), CircuitState.OPEN)


async def test_waits_time_out_clearly(autojump_clock: trio.testing.MockClock) -> None:
    """A wait that cannot succeed ends after its timeout with a message saying what it saw."""
    recorder = EventRecorder()
    async with run_tree(_spec(), events=recorder.bus) as tree:
        with pytest.raises(WaitTimeout, match=r"'db' to be parked; it is running \(tree: app="):
            await wait_for_service(tree, "db", "parked", timeout=1.0)
        with pytest.raises(WaitTimeout, match=r"breaker 'app/db' to be open; it is closed"):
            await wait_for_breaker(tree.service("db"), "open", timeout=1.0)
        with pytest.raises(
            WaitTimeout,
            match=r"for 3 ChildRestarted event\(s\) at 'db'; 0 arrived \(recorded so far: 2 "
            r"events of kinds ChildStarted\)",
        ):
            await wait_for_events(recorder, ChildRestarted, 3, path="db", timeout=2.0)
        with pytest.raises(WaitTimeout, match="to be running; it is absent"):
            await wait_for_service(tree, "nothing", "running", timeout=0.5)
    assert isinstance(WaitTimeout("x"), AssertionError)


async def test_bad_arguments_are_refused(autojump_clock: trio.testing.MockClock) -> None:
    """Unknown states, bad timeouts and bad counts raise ValueError naming them."""
    recorder = EventRecorder()
    async with run_tree(_spec(), events=recorder.bus) as tree:
        with pytest.raises(ValueError, match=r"`state` 'asleep' is not one of running"):
            await wait_for_service(tree, "db", "asleep")
        with pytest.raises(ValueError, match=r"`timeout` must be a number > 0 \(got 0\)"):
            await wait_for_service(tree, "db", "running", timeout=0)
        with pytest.raises(ValueError, match=r"`count` must be an integer >= 1 \(got 0\)"):
            await recorder.wait_for(ChildStarted, 0)
        with pytest.raises(ValueError, match=r"`state` 'ajar' is not one of closed"):
            await wait_for_breaker(tree.service("db"), "ajar")


async def test_recorder_waits_for_many_concurrent_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Many waiters on one recorder each wake when their count is reached."""
    recorder = EventRecorder()
    done: list[int] = []

    async def waiter(count: int) -> None:
        events = await recorder.wait_for(int, count, where=lambda e: e % 2 == 0)
        assert len(events) >= count
        done.append(count)

    async with trio.open_nursery() as nursery:
        for count in range(1, 21):
            nursery.start_soon(waiter, count)
        await trio.testing.wait_all_tasks_blocked()
        for value in range(40):
            recorder.bus.publish(value)
            await trio.sleep(0.1)
    assert sorted(done) == list(range(1, 21))
    assert recorder.of(int, where=lambda e: e > 37) == [38, 39]
    recorder.close()
    recorder.bus.publish(99)
    assert recorder.events[-1] == 39
    recorder.clear()
    assert repr(recorder) == "<EventRecorder 0 events>"


async def _raise() -> None:
    raise OSError("down")
