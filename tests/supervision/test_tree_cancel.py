"""trio.Cancelled and KeyboardInterrupt: never swallowed, and the tree still stops in order."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from test_tree_support import Log, Recorder, child, sup

from supervisor.observe._events import ChildStopped
from supervisor.tree._run import run_tree


def test_keyboard_interrupt_in_the_body_stops_the_tree_in_order_and_propagates() -> None:
    """A KeyboardInterrupt raised in the run_tree body leaves trio.run as itself, after the
    tree stopped in reverse start order with every stop hook awaited."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a", stop_delay=1.0),
        sup("mid", child(log, "x", stop_delay=1.0)),
        child(log, "b", stop_delay=1.0),
    )
    after: list[str] = []

    async def main() -> None:
        async with run_tree(spec, events=rec.bus):
            await trio.sleep(10.0)
            log.clear()
            raise KeyboardInterrupt
        after.append("run_tree swallowed it")  # pragma: no cover

    with pytest.raises(KeyboardInterrupt):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert after == []
    assert log.timed() == [
        (10.0, "stopping", "b"),
        (11.0, "stopped", "b"),
        (11.0, "stopping", "x"),
        (12.0, "stopped", "x"),
        (12.0, "stopping", "a"),
        (13.0, "stopped", "a"),
    ]
    assert rec.timed(ChildStopped) == [
        ("stopped", "app/b", 11.0),
        ("stopped", "app/mid/x", 12.0),
        ("stopped", "app/mid", 12.0),
        ("stopped", "app/a", 13.0),
    ]


async def test_a_cancelled_body_stops_the_tree_in_order_and_stays_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelling the body stops the tree in order (shielded, stop hooks awaited) and the
    cancellation reaches the scope that made it."""
    log, rec = Log(), Recorder()
    spec = sup("app", *(child(log, name, stop_delay=1.0) for name in "abc"))
    reached = False
    with trio.move_on_after(10.0) as scope:
        async with run_tree(spec, events=rec.bus) as tree:
            await trio.sleep_forever()
        reached = True  # pragma: no cover
    assert scope.cancelled_caught
    assert not reached
    assert trio.current_time() == 13.0
    assert log.timed("stopping", "stopped") == [
        (10.0, "stopping", "c"),
        (11.0, "stopped", "c"),
        (11.0, "stopping", "b"),
        (12.0, "stopped", "b"),
        (12.0, "stopping", "a"),
        (13.0, "stopped", "a"),
    ]
    assert rec.trail(ChildStopped) == [
        ("stopped", "app/c"),
        ("stopped", "app/b"),
        ("stopped", "app/a"),
    ]
    assert tree.system.statistics().live == 0


async def test_cancelled_while_starting_stops_the_started_children_and_stays_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelled in the middle of a slow child start, the tree stops the children already
    started, in reverse, and the cancellation goes on (no body runs)."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a", stop_delay=1.0),
        child(log, "b", stop_delay=1.0),
        child(log, "c", start_delay=5.0),
    )
    with trio.move_on_after(2.0) as scope:
        async with run_tree(spec, events=rec.bus):
            pytest.fail("the body must not run")  # pragma: no cover
    assert scope.cancelled_caught
    assert log.timed() == [
        (0.0, "starting", "a"),
        (0.0, "started", "a"),
        (0.0, "starting", "b"),
        (0.0, "started", "b"),
        (0.0, "starting", "c"),
        (2.0, "stopping", "b"),
        (3.0, "stopped", "b"),
        (3.0, "stopping", "a"),
        (4.0, "stopped", "a"),
    ]
    assert rec.trail(ChildStopped) == [("stopped", "app/b"), ("stopped", "app/a")]
