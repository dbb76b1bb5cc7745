"""Leaving ``async with HealthTracker(...)``: no check starts once the exit began, and the one
running is cancelled."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from supervisor import HealthTracker


class SlowCheck:
    """A 4 s check recording when each run started and when one was cancelled."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.cancelled: list[float] = []
        self.finished: list[float] = []

    async def __call__(self) -> bool:
        self.starts.append(trio.current_time())
        try:
            await trio.sleep(4)
        except trio.Cancelled:
            self.cancelled.append(trio.current_time())
            raise
        self.finished.append(trio.current_time())
        return True


@pytest.mark.parametrize("block", [0, 1, 4, 5, 7, 8, 9, 12, 13])
async def test_no_check_starts_after_exit_and_the_running_one_is_cancelled(
    autojump_clock: trio.testing.MockClock, block: float
) -> None:
    """A 4 s check every 3 s: every start is before the exit; a check running at the exit is
    cancelled there; nothing runs afterwards (the report's case is ``block=13``: the body starts
    after the 4 s first round, so it exits at 17 and the check started at 16 is cancelled)."""
    check = SlowCheck()
    tracker = HealthTracker(check_timeout=5)
    tracker.register_service("db", check, interval=3)
    async with tracker:
        assert trio.current_time() == 4  # the first round ran on entering
        await trio.sleep(block)
        exit_at = trio.current_time()
        started = len(check.starts)  # no checkpoint from here until the exit begins
    assert trio.current_time() == exit_at  # exit cancels, it does not wait for the check
    await trio.sleep(30)
    assert len(check.starts) == started
    assert len(check.starts) == len(check.finished) + len(check.cancelled)
    assert all(at == exit_at for at in check.cancelled)
    expected = [0.0, 4.0, 8.0, 12.0, 16.0]
    assert check.starts == [start for start in expected if start <= exit_at][:started]
    assert tracker.statistics().running is False


async def test_a_check_due_at_the_instant_of_exit_does_not_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A quick check every 3 s and an exit at exactly a due time, many times over: trio may run
    the woken check task before the exiting one (it then starts before the exit) or after it
    (it must then not start: it was woken, but the exit came first)."""
    for _ in range(50):
        starts: list[float] = []

        def quick(starts: list[float] = starts) -> bool:
            starts.append(trio.current_time())
            return True

        tracker = HealthTracker()
        tracker.register_service("db", quick, interval=3)
        async with tracker:
            await trio.sleep(9)
            started = len(starts)  # no checkpoint from here until the exit begins
        await trio.sleep(10)
        assert len(starts) == started
