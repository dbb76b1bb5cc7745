"""OTP's supervisor rules beyond the basic strategies, as supervisor_SUITE checks them: temporary
bystanders, rest_for_one retries, terminated siblings in a group restart, a transient supervisor
that gives up, shutdown bounding a subtree, Ctrl-C in a handler, and deleting a service."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from test_tree_support import Log, Recorder, Worker, child, sup

import actors
from supervisor.observe._events import ChildCrashed, ChildRestarted, ChildStopped
from supervisor.tree._children import ChildState, SupervisorGaveUp
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ChildSpec, Restart, ServiceSpec, Strategy


async def states(tree: Any, path: str | None = None) -> list[tuple[str, ChildState, int]]:
    return [(i.name, i.state, i.restarts) for i in await tree.which_children(path)]


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_a_temporary_bystander_is_stopped_and_removed_not_restarted(
    autojump_clock: trio.testing.MockClock, strategy: Strategy
) -> None:
    """When a sibling's crash restarts the group, a temporary child in it is stopped and
    forgotten (OTP's temporary_bystander), while the others restart."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a"),
        child(log, "t", restart=Restart.TEMPORARY),
        child(log, "b"),
        strategy=strategy,
    )
    async with run_tree(spec, events=rec.bus) as tree:
        log.clear()
        tree.lookup("a").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert await states(tree) == [("a", ChildState.RUNNING, 1), ("b", ChildState.RUNNING, 1)]
        assert ("stopped", "app/t") in rec.trail(ChildStopped)
        assert [e.path for e in rec.of(ChildRestarted)] == ["app/a", "app/b"]
        assert log.steps("stopped", "restarted") == [
            ("stopped", "b"),
            ("stopped", "t"),
            ("restarted", "a"),
            ("restarted", "b"),
        ]


async def test_rest_for_one_retry_restarts_from_the_child_that_failed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """c1 crashes; its restart succeeds; c2's restart fails: the retry restarts c2 and c3 only,
    never c1 again."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "c1"),
        child(log, "c2", fail_start=2),  # its second start (the first restart) fails
        child(log, "c3"),
        strategy=Strategy.REST_FOR_ONE,
    )
    async with run_tree(spec, events=rec.bus) as tree:
        log.clear()
        tree.lookup("c1").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert log.steps() == [
            ("crash", "c1"),
            ("stopping", "c3"),
            ("stopped", "c3"),
            ("stopping", "c2"),
            ("stopped", "c2"),
            ("restarting", "c1"),
            ("restarted", "c1"),
            ("restarting", "c2"),
            ("failed", "c2"),
            ("restarting", "c2"),
            ("restarted", "c2"),
            ("restarting", "c3"),
            ("restarted", "c3"),
        ]
        assert await states(tree) == [
            ("c1", ChildState.RUNNING, 1),
            ("c2", ChildState.RUNNING, 1),
            ("c3", ChildState.RUNNING, 1),
        ]
        assert rec.trail(ChildCrashed) == [("crashed", "app/c1"), ("crashed", "app/c2")]


async def test_one_for_all_retry_restarts_the_whole_group_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Under one_for_all a failed start restarts every child again (OTP), each counted once."""
    log = Log()
    spec = sup(
        "app",
        child(log, "c1"),
        child(log, "c2", fail_start=2),
        strategy=Strategy.ONE_FOR_ALL,
    )
    async with run_tree(spec) as tree:
        log.clear()
        tree.lookup("c1").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert log.steps("restarted", "failed", "stopped") == [
            ("stopped", "c2"),
            ("restarted", "c1"),
            ("failed", "c2"),
            ("stopped", "c1"),
            ("restarted", "c1"),
            ("restarted", "c2"),
        ]
        assert await states(tree) == [("c1", ChildState.RUNNING, 2), ("c2", ChildState.RUNNING, 1)]


@pytest.mark.parametrize("restart", [Restart.PERMANENT, Restart.TRANSIENT])
@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_a_group_restart_also_starts_a_terminated_sibling(
    autojump_clock: trio.testing.MockClock, restart: Restart, strategy: Strategy
) -> None:
    """A non-temporary sibling stopped with terminate_child is started again by a group restart
    (OTP restarts every non-temporary spec of the group)."""
    log = Log()
    spec = sup("app", child(log, "a"), child(log, "b", restart=restart), strategy=strategy)
    async with run_tree(spec) as tree:
        await tree.terminate_child("app/b")
        tree.lookup("a").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert await states(tree) == [("a", ChildState.RUNNING, 1), ("b", ChildState.RUNNING, 1)]


async def test_a_transient_supervisor_that_gives_up_is_not_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A transient child supervisor beyond its intensity exits with OTP's reason shutdown, a
    normal exit for it: its parent publishes its stop and leaves it terminated."""
    log, rec = Log(), Recorder()
    inner = sup("mid", child(log, "x"), max_restarts=0, restart=Restart.TRANSIENT)
    async with run_tree(sup("app", inner, child(log, "b")), events=rec.bus) as tree:
        tree.lookup("x").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert await states(tree) == [
            ("mid", ChildState.TERMINATED, 0),
            ("b", ChildState.RUNNING, 0),
        ]
        assert [e.path for e in rec.of(ChildRestarted)] == []
        assert rec.trail(ChildCrashed) == [("crashed", "app/mid/x")]
        (stopped,) = [e for e in rec.of(ChildStopped) if e.path == "app/mid"]
        assert isinstance(stopped.reason, SupervisorGaveUp)
        assert tree.nodes().restart_budget == 3


async def test_a_permanent_supervisor_that_gives_up_is_restarted_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A permanent child supervisor beyond its intensity is restarted, one restart counted."""
    log = Log()
    inner = sup("mid", child(log, "x"), max_restarts=0)
    async with run_tree(sup("app", inner), events=Recorder().bus) as tree:
        tree.lookup("x").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert await states(tree) == [("mid", ChildState.RUNNING, 1)]
        assert tree.nodes().restart_budget == 2


async def test_a_supervisor_grace_bounds_its_whole_subtree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An inner supervisor with shutdown=1 whose children's stop hooks take 5 s is stopped 1 s
    after the stop began: what still runs below is cancelled then, every child's stop is
    published, and no child outlives it."""
    log, rec = Log(), Recorder()
    inner = sup(
        "inner",
        child(log, "x", stop_delay=5.0, shutdown=10.0),
        child(log, "y", stop_delay=5.0, shutdown=10.0),
        shutdown=1.0,
    )
    refs: list[actors.ActorRef[Any]] = []
    async with actors.ActorSystem() as system:
        async with run_tree(sup("app", inner), system=system, events=rec.bus) as tree:
            refs = [tree.lookup("x"), tree.lookup("y")]
            await trio.sleep(10.0)
            log.clear()
        assert trio.current_time() == 11.0
        assert not any(ref.is_alive for ref in refs)
        assert [ref.statistics().stop_hooks_cut_off for ref in refs] == [1, 1]
    assert log.timed() == [(10.0, "stopping", "y"), (11.0, "stopping", "x")]
    assert rec.timed(ChildStopped) == [
        ("stopped", "app/inner/y", 11.0),
        ("stopped", "app/inner/x", 11.0),
        ("stopped", "app/inner", 11.0),
    ]


class Interrupted(Worker):
    """A worker whose handler raises KeyboardInterrupt (a Ctrl-C landing in it)."""

    async def receive(self, message: Any) -> Any:
        if message == "interrupt":
            raise KeyboardInterrupt
        return await super().receive(message)


def test_keyboard_interrupt_in_a_handler_leaves_run_tree_as_itself() -> None:
    """A KeyboardInterrupt raised by a child's handler leaves run_tree as a bare
    KeyboardInterrupt (not in a group with the caller's ActorStopped)."""
    log = Log()
    spec = sup("app", ChildSpec(name="k", factory=Interrupted, args=(log, "k")))
    caught: list[BaseException] = []

    async def main() -> None:
        try:
            async with run_tree(spec) as tree:
                await tree.lookup("k").ask("interrupt")
        except KeyboardInterrupt as exc:
            caught.append(exc)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert len(caught) == 1
    assert type(caught[0]) is KeyboardInterrupt


class Echo(actors.Actor[Any]):
    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def receive(self, message: Any) -> Any:
        return (self.tag, message)


async def test_delete_child_removes_a_service_and_a_readded_one_is_reachable_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """delete_child takes a service out of tree.services(); a ServiceRef taken before reaches
    the service added again under the same name with a new spec."""
    async with run_tree(sup("app", ServiceSpec(name="s", factory=Echo, args=("old",)))) as tree:
        handle = tree.service("s")
        assert await handle.call(1) == ("old", 1)
        await tree.terminate_child("app/s")
        await tree.delete_child("app/s")
        assert tree.services() == {}
        with pytest.raises(KeyError):
            tree.service("s")
        await tree.start_child("app", ServiceSpec(name="s", factory=Echo, args=("new",)))
        assert await handle.call(2) == ("new", 2)
        assert tree.services() == {"app/s": handle}
        assert tree.service("s") is handle


async def test_a_failed_restart_is_one_more_restart_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failed restart under one_for_one is retried as a message and counted against the
    intensity: two restarts spent of three."""
    log = Log()
    spec = sup("app", child(log, "a", fail_start=2), max_restarts=3)
    async with run_tree(spec) as tree:
        tree.lookup("a").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert await states(tree) == [("a", ChildState.RUNNING, 1)]
        assert tree.nodes().restart_budget == 1
