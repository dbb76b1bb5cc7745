"""A supervisor that is backing off stays responsive (OTP's try_again): which_children,
terminate_child, a second crash and a stop are all served during a backoff, with exact times."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from test_tree_support import Boom, Log, Recorder, Worker, child, sup

import actors
from supervisor import ConfigError
from supervisor.observe._events import ChildCrashed, ChildRestarted, RestartScheduled
from supervisor.tree._children import ChildState
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ChildSpec, RestartBackoff, Strategy

LONG = RestartBackoff(initial_delay=60.0, factor=1.0, max_delay=60.0, jitter=False)
TEN = RestartBackoff(initial_delay=10.0, factor=1.0, max_delay=10.0, jitter=False)


class FailsAfterFirst(Worker):
    """A worker whose every start after its first fails (a dependency that stays down)."""

    async def on_restart(self, error: Exception | None) -> None:
        self.log.add("restarting", self.name)
        raise Boom(f"{self.name} cannot start")

    async def on_start(self) -> None:
        if self.log.starts.get(self.name):
            self.log.add("failed", self.name)
            raise Boom(f"{self.name} cannot start")
        await super().on_start()


def stays_down(log: Log, name: str) -> ChildSpec:
    return ChildSpec(name=name, factory=FailsAfterFirst, args=(log, name))


async def states(tree: Any, path: str | None = None) -> list[tuple[str, ChildState, int]]:
    return [(i.name, i.state, i.restarts) for i in await tree.which_children(path)]


async def test_which_children_answers_during_a_backoff_and_lists_restarting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A child waiting 60 s for its restart is listed as restarting at once (the supervisor is
    not asleep in a handler), and it restarts exactly 60 s after its crash."""
    log, rec = Log(), Recorder()
    async with run_tree(
        sup("app", child(log, "a"), child(log, "b"), backoff=LONG), events=rec.bus
    ) as tree:
        tree.lookup("a").tell("crash")
        await trio.sleep(1.0)
        assert await states(tree) == [("a", ChildState.RESTARTING, 0), ("b", ChildState.RUNNING, 0)]
        assert trio.current_time() == 1.0
        (scheduled,) = rec.of(RestartScheduled)
        assert (scheduled.path, scheduled.at, scheduled.delay) == ("app/a", 0.0, 60.0)
        await trio.sleep(60.0)
        assert await states(tree) == [("a", ChildState.RUNNING, 1), ("b", ChildState.RUNNING, 0)]
    assert [(e.path, e.at, e.delay) for e in rec.of(ChildRestarted)] == [("app/a", 60.0, 60.0)]


async def test_terminate_child_during_a_backoff_cancels_the_pending_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """terminate_child of a restarting child returns at once and its restart never happens;
    restart_child brings it back later."""
    log, rec = Log(), Recorder()
    async with run_tree(sup("app", child(log, "a"), backoff=LONG), events=rec.bus) as tree:
        tree.lookup("a").tell("crash")
        await trio.sleep(1.0)
        await tree.terminate_child("app/a")
        assert trio.current_time() == 1.0
        await trio.sleep(100.0)
        assert await states(tree) == [("a", ChildState.TERMINATED, 0)]
        assert rec.of(ChildRestarted) == []
        await tree.restart_child("app/a")
        assert await states(tree) == [("a", ChildState.RUNNING, 0)]


async def test_delete_and_start_child_of_a_restarting_child_say_restarting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """delete_child, restart_child and start_child (same name) of a child waiting for its
    restart are refused with a ConfigError that says it is restarting."""
    log = Log()
    async with run_tree(sup("app", child(log, "a"), backoff=LONG)) as tree:
        tree.lookup("a").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ConfigError, match="'app/a' is restarting; terminate it first"):
            await tree.delete_child("app/a")
        with pytest.raises(ConfigError, match="'app/a' is restarting, not terminated"):
            await tree.restart_child("app/a")
        with pytest.raises(ConfigError, match=r"'a' is already a child of 'app' \(restarting\)"):
            await tree.start_child("app", child(log, "a"))
        assert trio.current_time() == 0.0


async def test_a_restart_loop_spread_past_the_window_ends_with_terminate_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A child that can never start again, retried every 2 s with a 1 s intensity window, loops
    forever on its own; terminate_child at t=5 is served between two attempts and ends it."""
    log, rec = Log(), Recorder()
    backoff = RestartBackoff(initial_delay=2.0, factor=1.0, max_delay=2.0, jitter=False)
    spec = sup("app", stays_down(log, "a"), max_restarts=1, within=1.0, backoff=backoff)
    async with run_tree(spec, events=rec.bus) as tree:
        tree.lookup("a").tell("crash")
        await trio.sleep(5.0)
        await tree.terminate_child("app/a")
        assert trio.current_time() == 5.0
        await trio.sleep(20.0)
        assert await states(tree) == [("a", ChildState.TERMINATED, 0)]
    assert [e.at for e in rec.of(RestartScheduled)] == [0.0, 2.0, 4.0]
    assert [e.at for e in rec.of(ChildCrashed)] == [0.0, 2.0, 4.0]
    assert log.timed("restarting") == [(2.0, "restarting", "a"), (4.0, "restarting", "a")]


async def test_leaving_the_tree_during_a_backoff_is_prompt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """1 s into a 60 s backoff, leaving run_tree stops the tree at once (t=1, not t=60)."""
    log, rec = Log(), Recorder()
    async with run_tree(
        sup("app", child(log, "a"), child(log, "b"), backoff=LONG), events=rec.bus
    ) as tree:
        tree.lookup("a").tell("crash")
        await trio.sleep(1.0)
    assert trio.current_time() == 1.0
    assert rec.of(ChildRestarted) == []
    assert log.timed("stopped") == [(1.0, "stopped", "b")]


async def test_a_second_crash_is_not_held_behind_the_first_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Under one_for_one each child has its own timer: a crash at t=0 and one at t=1, both with
    a 10 s backoff, restart at t=10 and t=11."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"), child(log, "b"), max_restarts=10, backoff=TEN)
    async with run_tree(spec, events=rec.bus) as tree:
        tree.lookup("a").tell("crash")
        await trio.sleep(1.0)
        tree.lookup("b").tell("crash")
        await trio.sleep(20.0)
    assert [(e.path, e.at) for e in rec.of(ChildRestarted)] == [("app/a", 10.0), ("app/b", 11.0)]


async def test_a_group_restart_waits_its_backoff_with_the_group_restarting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Under one_for_all the whole group is restarting during the backoff (the others were
    stopped at the crash), and comes back in start order when it is over."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"), child(log, "b"), strategy=Strategy.ONE_FOR_ALL, backoff=TEN)
    async with run_tree(spec, events=rec.bus) as tree:
        log.clear()
        tree.lookup("a").tell("crash")
        await trio.sleep(1.0)
        assert await states(tree) == [
            ("a", ChildState.RESTARTING, 0),
            ("b", ChildState.RESTARTING, 0),
        ]
        await trio.sleep(10.0)
        assert await states(tree) == [("a", ChildState.RUNNING, 1), ("b", ChildState.RUNNING, 1)]
    assert log.timed("stopped", "restarted")[:3] == [
        (0.0, "stopped", "b"),
        (10.0, "restarted", "a"),
        (10.0, "restarted", "b"),
    ]
    (scheduled,) = rec.of(RestartScheduled)
    assert scheduled.group == ("app/a", "app/b")


async def test_terminate_child_of_one_group_member_restarts_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Terminating one member of a group that waits for its backoff takes only that one out:
    the others restart when the backoff is over."""
    log = Log()
    spec = sup("app", child(log, "a"), child(log, "b"), strategy=Strategy.ONE_FOR_ALL, backoff=TEN)
    async with run_tree(spec) as tree:
        tree.lookup("a").tell("crash")
        await trio.sleep(1.0)
        await tree.terminate_child("app/a")
        await trio.sleep(10.0)
        assert await states(tree) == [("a", ChildState.TERMINATED, 0), ("b", ChildState.RUNNING, 1)]


async def test_a_child_killed_while_it_waits_restarts_in_a_new_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A restarting child whose suspended slot is stopped from outside still restarts when its
    backoff is over, in a new slot."""
    log = Log()
    async with run_tree(sup("app", child(log, "a"), backoff=TEN)) as tree:
        old = tree.lookup("a")
        old.tell("crash")
        await trio.sleep(1.0)
        await tree.system.stop(old)
        await trio.sleep(10.0)
        assert await states(tree) == [("a", ChildState.RUNNING, 1)]
        assert tree.lookup("a") is not old
        with pytest.raises(actors.ActorStopped):
            await old.ask("serial")
