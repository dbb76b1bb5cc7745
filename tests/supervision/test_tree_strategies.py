"""Restart strategies (one_for_one, one_for_all, rest_for_one) and restart types (permanent,
transient, temporary): exactly which children restart, in which order, with mailboxes kept."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from test_tree_support import Boom, Log, Recorder, child, sup

import actors
from supervisor.observe._events import ChildCrashed, ChildRestarted, ChildStarted, ChildStopped
from supervisor.tree._children import ChildState
from supervisor.tree._run import run_tree
from supervisor.tree._specs import Restart, RestartBackoff, Strategy

needs_suspend = pytest.mark.skipif(
    not hasattr(actors.ActorSystem, "suspend"),
    reason="one_for_all / rest_for_one need ActorSystem.suspend (being added to actors)",
)


async def settle() -> None:
    """Let every task run until all are blocked (the supervisor has handled what it got)."""
    await trio.testing.wait_all_tasks_blocked()


async def test_one_for_one_restarts_only_the_crashed_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Under one_for_one a crash restarts that child alone, in its slot; siblings are untouched."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"), child(log, "b"), child(log, "c"))
    async with run_tree(spec, events=rec.bus) as tree:
        await trio.sleep(10.0)
        ref = tree.lookup("b")
        log.clear()
        rec.clear()
        with pytest.raises(Boom, match="b crashed"):  # the ask in hand gets the crash
            await ref.ask("crash")
        await settle()
        assert log.timed() == [
            (10.0, "crash", "b"),
            (10.0, "restarting", "b"),
            (10.0, "restarted", "b"),
        ]
        assert rec.timed() == [("crashed", "app/b", 10.0), ("restarted", "app/b", 10.0)]
        (restarted,) = rec.of(ChildRestarted)
        assert (restarted.restarts, restarted.delay, restarted.probation) == (1, 0.0, False)
        assert isinstance(rec.of(ChildCrashed)[0].error, Boom)
        assert tree.lookup("b") is ref  # same slot, same ref
        infos = await tree.which_children()
        assert [(i.name, i.state, i.restarts) for i in infos] == [
            ("a", ChildState.RUNNING, 0),
            ("b", ChildState.RUNNING, 1),
            ("c", ChildState.RUNNING, 0),
        ]


async def test_one_for_one_mailbox_survives_the_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Messages queued behind the crashing one are served, in order, by the new instance."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"))
    async with run_tree(spec, events=rec.bus) as tree:
        ref = tree.lookup("a")
        old = await ref.ask("serial")
        log.clear()
        ref.tell("crash")
        ref.tell(("serve", "m1"))
        ref.tell(("serve", "m2"))
        new = await ref.ask("serial")
        assert new != old
        assert log.steps() == [
            ("crash", "a"),
            ("restarting", "a"),
            ("restarted", "a"),
            ("served:m1", "a"),
            ("served:m2", "a"),
        ]


@needs_suspend
async def test_one_for_all_stops_the_others_in_reverse_then_restarts_all_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Under one_for_all the siblings stop in reverse start order (each after the other's stop
    hook finished), then every child restarts in start order."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        *(child(log, name, stop_delay=1.0) for name in "abcd"),
        strategy=Strategy.ONE_FOR_ALL,
    )
    async with run_tree(spec, events=rec.bus) as tree:
        await trio.sleep(10.0)
        refs = {name: tree.lookup(name) for name in "abcd"}
        log.clear()
        rec.clear()
        refs["b"].tell("crash")
        await trio.sleep(10.0)
        assert log.timed() == [
            (10.0, "crash", "b"),
            (10.0, "stopping", "d"),
            (11.0, "stopped", "d"),
            (11.0, "stopping", "c"),
            (12.0, "stopped", "c"),
            (12.0, "stopping", "a"),
            (13.0, "stopped", "a"),
            (13.0, "restarting", "a"),
            (13.0, "restarted", "a"),
            (13.0, "restarting", "b"),
            (13.0, "restarted", "b"),
            (13.0, "restarting", "c"),
            (13.0, "restarted", "c"),
            (13.0, "restarting", "d"),
            (13.0, "restarted", "d"),
        ]
        assert rec.trail(ChildCrashed, ChildRestarted) == [
            ("crashed", "app/b"),
            ("restarted", "app/a"),
            ("restarted", "app/b"),
            ("restarted", "app/c"),
            ("restarted", "app/d"),
        ]
        assert {name: tree.lookup(name) for name in "abcd"} == refs  # slots kept
        infos = await tree.which_children()
        assert [(i.state, i.restarts) for i in infos] == [(ChildState.RUNNING, 1)] * 4


@needs_suspend
async def test_rest_for_one_restarts_the_crashed_child_and_those_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Under rest_for_one the children started after the crashed one stop in reverse order,
    then the crashed one and they restart in start order; earlier children are untouched."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        *(child(log, name, stop_delay=1.0) for name in "abcd"),
        strategy=Strategy.REST_FOR_ONE,
    )
    async with run_tree(spec, events=rec.bus) as tree:
        await trio.sleep(10.0)
        log.clear()
        rec.clear()
        tree.lookup("b").tell("crash")
        await trio.sleep(10.0)
        assert log.timed() == [
            (10.0, "crash", "b"),
            (10.0, "stopping", "d"),
            (11.0, "stopped", "d"),
            (11.0, "stopping", "c"),
            (12.0, "stopped", "c"),
            (12.0, "restarting", "b"),
            (12.0, "restarted", "b"),
            (12.0, "restarting", "c"),
            (12.0, "restarted", "c"),
            (12.0, "restarting", "d"),
            (12.0, "restarted", "d"),
        ]
        assert rec.trail(ChildCrashed, ChildRestarted) == [
            ("crashed", "app/b"),
            ("restarted", "app/b"),
            ("restarted", "app/c"),
            ("restarted", "app/d"),
        ]
        infos = await tree.which_children()
        assert [i.restarts for i in infos] == [0, 1, 1, 1]


async def test_rest_for_one_crash_of_the_last_child_restarts_it_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Under rest_for_one the last child's crash touches no sibling."""
    log, rec = Log(), Recorder()
    spec = sup("app", *(child(log, name) for name in "abc"), strategy=Strategy.REST_FOR_ONE)
    async with run_tree(spec, events=rec.bus) as tree:
        log.clear()
        tree.lookup("c").tell("crash")
        await settle()
        assert log.steps() == [("crash", "c"), ("restarting", "c"), ("restarted", "c")]


@needs_suspend
@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_group_restart_keeps_the_mailboxes_of_the_stopped_siblings(
    autojump_clock: trio.testing.MockClock, strategy: Strategy
) -> None:
    """A request sent to a sibling while the group restarts waits in its mailbox and is served
    by the sibling's new instance once the backoff is over."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a"),
        child(log, "b"),
        strategy=strategy,
        backoff=RestartBackoff(initial_delay=1.0, jitter=False),
    )
    async with run_tree(spec, events=rec.bus) as tree:
        a, b = tree.lookup("a"), tree.lookup("b")
        old = await b.ask("serial")
        await trio.sleep(10.0)
        log.clear()
        a.tell("crash")
        a.tell(("serve", "for-a"))
        await trio.sleep(0.5)
        assert b.statistics().state is actors.ActorState.SUSPENDED
        new = await b.ask(("serve", "for-b"))  # queued at 10.5, served at 11
        assert trio.current_time() == 11.0
        assert new != old
        entries = log.timed("served:for-a", "served:for-b", "restarted")
        assert sorted(entries) == sorted(
            [
                (11.0, "restarted", "a"),
                (11.0, "restarted", "b"),
                (11.0, "served:for-a", "a"),
                (11.0, "served:for-b", "b"),
            ]
        )
        # each request is served by its child's new instance, after that restart
        for name in "ab":
            steps = [what for _, what, who in entries if who == name]
            assert steps == ["restarted", f"served:for-{name}"]
        assert entries.index((11.0, "restarted", "a")) < entries.index((11.0, "restarted", "b"))


# -- restart types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart", "restarted"),
    [(Restart.PERMANENT, True), (Restart.TRANSIENT, True), (Restart.TEMPORARY, False)],
)
async def test_restart_type_after_a_crash(
    autojump_clock: trio.testing.MockClock, restart: Restart, restarted: bool
) -> None:
    """After a crash permanent and transient children are restarted; a temporary one is not,
    and it is forgotten (gone from which_children)."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"), child(log, "w", restart=restart), child(log, "z"))
    async with run_tree(spec, events=rec.bus) as tree:
        rec.clear()
        log.clear()
        tree.lookup("w").tell("crash")
        await settle()
        names = [info.name for info in await tree.which_children()]
        if restarted:
            assert rec.trail() == [("crashed", "app/w"), ("restarted", "app/w")]
            assert log.steps() == [("crash", "w"), ("restarting", "w"), ("restarted", "w")]
            assert names == ["a", "w", "z"]
            assert tree.lookup("w").is_alive
        else:
            assert rec.trail() == [("crashed", "app/w"), ("stopped", "app/w")]
            assert log.steps() == [("crash", "w")]
            assert names == ["a", "z"]
            with pytest.raises(actors.ActorNotFound):
                tree.lookup("app/w")


@pytest.mark.parametrize(
    ("restart", "restarted"),
    [(Restart.PERMANENT, True), (Restart.TRANSIENT, False), (Restart.TEMPORARY, False)],
)
async def test_restart_type_after_a_normal_stop(
    autojump_clock: trio.testing.MockClock, restart: Restart, restarted: bool
) -> None:
    """A child stopped normally from outside is restarted only if permanent; a transient one
    stays terminated (listed), a temporary one is forgotten."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"), child(log, "w", restart=restart), child(log, "z"))
    async with run_tree(spec, events=rec.bus) as tree:
        await trio.sleep(10.0)
        rec.clear()
        log.clear()
        await tree.system.stop(tree.lookup("w"))
        await settle()
        infos = {info.name: info for info in await tree.which_children()}
        assert rec.timed(ChildStopped)[0] == ("stopped", "app/w", 10.0)
        assert rec.of(ChildStopped)[0].reason is None
        if restarted:
            assert log.steps() == [
                ("stopping", "w"),
                ("stopped", "w"),
                ("starting", "w"),
                ("started", "w"),
            ]
            assert ("restarted", "app/w") in rec.trail()
            assert infos["w"].state is ChildState.RUNNING
            assert infos["w"].restarts == 1
            assert tree.lookup("w").is_alive
        else:
            assert log.steps() == [("stopping", "w"), ("stopped", "w")]
            assert rec.trail(ChildStarted, ChildRestarted) == []
            if restart is Restart.TRANSIENT:
                assert infos["w"].state is ChildState.TERMINATED
                assert infos["w"].ref is None
            else:
                assert "w" not in infos
            with pytest.raises(actors.ActorNotFound):
                tree.lookup("app/w")
        assert list(infos) == (["a", "w", "z"] if restart is not Restart.TEMPORARY else ["a", "z"])
