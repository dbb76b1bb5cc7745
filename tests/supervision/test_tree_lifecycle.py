"""Starting and stopping a supervision tree: OTP's order, start failures, shutdown grace."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from test_tree_support import Boom, Log, Recorder, child, sup

import actors
from supervisor.observe._events import ChildStarted, ChildStopped
from supervisor.tree._run import run_tree
from supervisor.tree._specs import INFINITY


async def test_children_start_in_order_each_fully_started_before_the_next(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each child's start hook (even a slow one) returns before the next child starts."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a", start_delay=1.0),
        child(log, "b", start_delay=2.0),
        child(log, "c"),
    )
    async with run_tree(spec, events=rec.bus):
        assert trio.current_time() == 3.0
        assert log.timed() == [
            (0.0, "starting", "a"),
            (1.0, "started", "a"),
            (1.0, "starting", "b"),
            (3.0, "started", "b"),
            (3.0, "starting", "c"),
            (3.0, "started", "c"),
        ]
        assert rec.timed(ChildStarted) == [
            ("started", "app/a", 1.0),
            ("started", "app/b", 3.0),
            ("started", "app/c", 3.0),
        ]
        assert all(event.restarts == 0 for event in rec.of(ChildStarted))


async def test_nested_supervisor_starts_its_children_before_its_next_sibling(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A nested supervisor counts as started once all its own children started, in order."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a"),
        sup("mid", child(log, "x", start_delay=1.0), child(log, "y", start_delay=1.0)),
        child(log, "b"),
    )
    async with run_tree(spec, events=rec.bus):
        assert log.steps("started") == [
            ("started", "a"),
            ("started", "x"),
            ("started", "y"),
            ("started", "b"),
        ]
        assert rec.timed(ChildStarted) == [
            ("started", "app/a", 0.0),
            ("started", "app/mid/x", 1.0),
            ("started", "app/mid/y", 2.0),
            ("started", "app/mid", 2.0),
            ("started", "app/b", 2.0),
        ]


async def test_leaving_run_tree_stops_children_in_reverse_start_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """On exit each child stops (its stop hook finished) before the one started before it."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a", stop_delay=1.0),
        child(log, "b", stop_delay=1.0),
        child(log, "c", stop_delay=1.0),
    )
    async with run_tree(spec, events=rec.bus) as tree:
        log.clear()
        await trio.sleep(10.0)
    assert log.timed() == [
        (10.0, "stopping", "c"),
        (11.0, "stopped", "c"),
        (11.0, "stopping", "b"),
        (12.0, "stopped", "b"),
        (12.0, "stopping", "a"),
        (13.0, "stopped", "a"),
    ]
    assert rec.timed(ChildStopped) == [
        ("stopped", "app/c", 11.0),
        ("stopped", "app/b", 12.0),
        ("stopped", "app/a", 13.0),
    ]
    assert all(event.reason is None for event in rec.of(ChildStopped))
    assert tree.system.statistics().live == 0


async def test_nested_supervisor_stops_its_children_in_reverse_before_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The whole tree stops depth first, in reverse start order at every level."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a"),
        sup("mid", child(log, "x"), child(log, "y")),
        child(log, "b"),
    )
    async with run_tree(spec, events=rec.bus):
        log.clear()
    assert log.steps("stopped") == [
        ("stopped", "b"),
        ("stopped", "y"),
        ("stopped", "x"),
        ("stopped", "a"),
    ]
    assert rec.trail(ChildStopped) == [
        ("stopped", "app/b"),
        ("stopped", "app/mid/y"),
        ("stopped", "app/mid/x"),
        ("stopped", "app/mid"),
        ("stopped", "app/a"),
    ]


async def test_start_failure_stops_the_started_children_in_reverse_and_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """When the third child fails to start, the first two stop in reverse, the fourth never
    starts, and run_tree raises the start error itself."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a", stop_delay=1.0),
        child(log, "b", stop_delay=1.0),
        child(log, "c", start_delay=2.0, fail_start=True),
        child(log, "d"),
    )
    body_ran = False
    with pytest.raises(Boom, match="c failed to start"):
        async with run_tree(spec, events=rec.bus):
            body_ran = True
    assert not body_ran
    assert log.timed() == [
        (0.0, "starting", "a"),
        (0.0, "started", "a"),
        (0.0, "starting", "b"),
        (0.0, "started", "b"),
        (0.0, "starting", "c"),
        (2.0, "failed", "c"),
        (2.0, "stopping", "b"),
        (3.0, "stopped", "b"),
        (3.0, "stopping", "a"),
        (4.0, "stopped", "a"),
    ]
    assert rec.timed(ChildStarted, ChildStopped) == [
        ("started", "app/a", 0.0),
        ("started", "app/b", 0.0),
        ("stopped", "app/b", 3.0),
        ("stopped", "app/a", 4.0),
    ]


async def test_start_failure_in_a_nested_supervisor_unwinds_the_whole_tree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A grandchild's start failure stops its started siblings, then the root's started
    children, each in reverse, and run_tree raises it."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a"),
        sup("mid", child(log, "x"), child(log, "y", fail_start=True), child(log, "z")),
        child(log, "b"),
    )
    with pytest.raises(Boom, match="y failed to start"):
        async with run_tree(spec, events=rec.bus):
            pytest.fail("the body must not run")  # pragma: no cover
    assert log.steps("started", "failed", "stopped") == [
        ("started", "a"),
        ("started", "x"),
        ("failed", "y"),
        ("stopped", "x"),
        ("stopped", "a"),
    ]


@pytest.mark.parametrize(
    ("shutdown", "stopped_at", "handled"),
    [(2.0, 12.0, False), (0.0, 10.0, False), (INFINITY, 110.0, True), ("infinity", 110.0, True)],
)
async def test_shutdown_grace_bounds_a_busy_handler(
    autojump_clock: trio.testing.MockClock,
    shutdown: float | str,
    stopped_at: float,
    handled: bool,
) -> None:
    """A child busy with a slow message is cancelled exactly its grace after the stop begins
    (0: at once; infinity: the message finishes), then its stop hook runs."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "slow", shutdown=shutdown), child(log, "last", stop_delay=0.0))
    async with run_tree(spec, events=rec.bus) as tree:
        await trio.sleep(10.0)
        tree.lookup("slow").tell(("sleep", 100.0))
        await trio.testing.wait_all_tasks_blocked()
        log.clear()
    expected = [(10.0, "stopping", "last"), (10.0, "stopped", "last")]
    if handled:
        expected.append((110.0, "handled", "slow"))
    expected += [(stopped_at, "stopping", "slow"), (stopped_at, "stopped", "slow")]
    assert log.timed() == expected
    assert rec.timed(ChildStopped) == [
        ("stopped", "app/last", 10.0),
        ("stopped", "app/slow", stopped_at),
    ]


@pytest.mark.parametrize(
    ("shutdown", "stopped_at"),
    [
        (2.0, 12.0),
        (0.0, 10.0),
        (INFINITY, 110.0),
    ],
)
async def test_shutdown_grace_bounds_a_slow_stop_hook(
    autojump_clock: trio.testing.MockClock, shutdown: float, stopped_at: float
) -> None:
    """A child whose stop hook is slow is cancelled exactly its grace after the stop begins
    (0: at once; infinity: waited for), and the next sibling's stop begins right then."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "first"), child(log, "slow", shutdown=shutdown, stop_delay=100.0))
    async with run_tree(spec, events=rec.bus):
        await trio.sleep(10.0)
        log.clear()
    assert rec.timed(ChildStopped) == [
        ("stopped", "app/slow", stopped_at),
        ("stopped", "app/first", stopped_at),
    ]
    assert log.timed("stopping") == [(10.0, "stopping", "slow"), (stopped_at, "stopping", "first")]
    finished = [entry for entry in log.timed("stopped") if entry[2] == "slow"]
    assert finished == ([(110.0, "stopped", "slow")] if shutdown == INFINITY else [])


async def test_start_failure_raises_the_error_itself_in_a_given_system(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """In an actor system the caller owns, run_tree still raises a start error unwrapped."""
    log = Log()
    spec = sup("app", child(log, "a"), child(log, "b", fail_start=True))
    async with actors.ActorSystem() as system:
        with pytest.raises(Boom, match="b failed to start"):
            async with run_tree(spec, system=system):
                pytest.fail("the body must not run")  # pragma: no cover
        assert system.statistics().live == 0


async def test_body_error_leaves_unwrapped_in_a_given_system(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """In an actor system the caller owns, an error of the body leaves run_tree as itself,
    after the tree stopped."""
    log = Log()
    async with actors.ActorSystem() as system:
        with pytest.raises(Boom, match="body"):
            async with run_tree(sup("app", child(log, "a")), system=system):
                raise Boom("body")
        assert log.steps("stopped") == [("stopped", "a")]
