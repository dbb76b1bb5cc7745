"""Dynamic children (start, terminate, restart, delete), which_children, and lookup."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from test_tree_support import Boom, Log, Recorder, child, sup

import actors
from supervisor._errors import ConfigError
from supervisor.observe._events import ChildStarted, ChildStopped
from supervisor.tree._children import ChildInfo, ChildState
from supervisor.tree._run import run_tree
from supervisor.tree._specs import Restart


async def test_which_children_describes_every_child_in_start_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """which_children lists name, path, kind, state, restart type, restarts and ref per child."""
    log = Log()
    spec = sup(
        "app",
        child(log, "a"),
        sup("mid", child(log, "x")),
        child(log, "t", restart=Restart.TRANSIENT),
    )
    async with run_tree(spec) as tree:
        infos = await tree.which_children()
        assert infos == (
            ChildInfo(
                name="a",
                path="app/a",
                kind="worker",
                state=ChildState.RUNNING,
                restart=Restart.PERMANENT,
                restarts=0,
                ref=tree.lookup("app/a"),
            ),
            ChildInfo(
                name="mid",
                path="app/mid",
                kind="supervisor",
                state=ChildState.RUNNING,
                restart=Restart.PERMANENT,
                restarts=0,
                ref=tree.lookup("app/mid"),
            ),
            ChildInfo(
                name="t",
                path="app/t",
                kind="worker",
                state=ChildState.RUNNING,
                restart=Restart.TRANSIENT,
                restarts=0,
                ref=tree.lookup("app/t"),
            ),
        )
        (x,) = await tree.which_children("app/mid")
        assert (x.path, x.ref) == ("app/mid/x", tree.lookup("app/mid/x"))


async def test_start_child_appends_a_running_child_and_returns_its_ref(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """start_child starts the child (start hook done) as the last child and returns its ref; it
    is then stopped first on exit."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"), sup("mid", child(log, "x")))
    async with run_tree(spec, events=rec.bus) as tree:
        await trio.sleep(1.0)
        ref = await tree.start_child("app", child(log, "d", start_delay=2.0))
        assert trio.current_time() == 3.0
        assert ref is tree.lookup("app/d")
        assert await ref.ask(("serve", "hi")) == await ref.ask("serial")
        ref2 = await tree.start_child("app/mid", child(log, "y"))
        assert ref2 is tree.lookup("app/mid/y")
        assert [info.name for info in await tree.which_children()] == ["a", "mid", "d"]
        assert [info.name for info in await tree.which_children("app/mid")] == ["x", "y"]
        assert rec.timed(ChildStarted)[-2:] == [
            ("started", "app/d", 3.0),
            ("started", "app/mid/y", 3.0),
        ]
        log.clear()
    assert log.steps("stopped") == [
        ("stopped", "d"),
        ("stopped", "y"),
        ("stopped", "x"),
        ("stopped", "a"),
    ]


async def test_dynamic_child_is_supervised_like_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A crash of a child added by start_child is restarted by its supervisor."""
    log, rec = Log(), Recorder()
    async with run_tree(sup("app", child(log, "a")), events=rec.bus) as tree:
        ref = await tree.start_child("app", child(log, "d"))
        rec.clear()
        ref.tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert rec.trail() == [("crashed", "app/d"), ("restarted", "app/d")]


async def test_start_child_error_reaches_the_caller_and_nothing_is_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failing start raises its error in the caller; no child is kept, the supervisor and its
    other children go on unharmed, and the name can be used again."""
    log, rec = Log(), Recorder()
    async with run_tree(sup("app", child(log, "a")), events=rec.bus) as tree:
        root = tree.root
        with pytest.raises(Boom, match="d failed to start"):
            await tree.start_child("app", child(log, "d", fail_start=True))
        await trio.testing.wait_all_tasks_blocked()
        assert [info.name for info in await tree.which_children()] == ["a"]
        assert root.statistics().state is actors.ActorState.RUNNING
        assert root.statistics().failures == 0
        assert tree.failure is None
        with pytest.raises(actors.ActorNotFound):
            tree.lookup("app/d")
        ref = await tree.start_child("app", child(log, "d"))
        assert ref.is_alive
        assert rec.trail() == [("started", "app/a"), ("started", "app/d")]


async def test_start_child_with_a_taken_name_raises_config_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A sibling name already in use is refused with ConfigError naming it; nothing changes."""
    log = Log()
    async with run_tree(sup("app", child(log, "a"))) as tree:
        a = tree.lookup("a")
        with pytest.raises(ConfigError, match="'a'"):
            await tree.start_child("app", child(log, "a"))
        assert tree.lookup("a") is a
        assert [info.name for info in await tree.which_children()] == ["a"]
        assert tree.failure is None
        assert tree.root.statistics().failures == 0


async def test_terminate_child_stops_it_and_keeps_its_spec(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """terminate_child stops a permanent child within its grace and does not restart it; it
    stays listed as terminated, with no ref."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"), child(log, "b", stop_delay=1.0))
    async with run_tree(spec, events=rec.bus) as tree:
        await trio.sleep(10.0)
        rec.clear()
        log.clear()
        await tree.terminate_child("app/b")
        assert trio.current_time() == 11.0
        await trio.testing.wait_all_tasks_blocked()
        assert log.timed() == [(10.0, "stopping", "b"), (11.0, "stopped", "b")]
        assert rec.timed() == [("stopped", "app/b", 11.0)]
        infos = await tree.which_children()
        assert [(i.name, i.state, i.ref) for i in infos] == [
            ("a", ChildState.RUNNING, tree.lookup("a")),
            ("b", ChildState.TERMINATED, None),
        ]
        with pytest.raises(actors.ActorNotFound):
            tree.lookup("app/b")


async def test_terminate_child_forgets_a_temporary_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A terminated temporary child is removed from its supervisor."""
    log = Log()
    spec = sup("app", child(log, "a"), child(log, "t", restart=Restart.TEMPORARY))
    async with run_tree(spec) as tree:
        await tree.terminate_child("app/t")
        assert [info.name for info in await tree.which_children()] == ["a"]


async def test_restart_child_starts_a_terminated_child_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """restart_child starts a terminated child from its spec and returns its new ref; it keeps
    its place among its siblings."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"), child(log, "b"), child(log, "c"))
    async with run_tree(spec, events=rec.bus) as tree:
        old = tree.lookup("b")
        await tree.terminate_child("app/b")
        log.clear()
        rec.clear()
        new = await tree.restart_child("app/b")
        assert new is not old
        assert new is tree.lookup("app/b")
        assert log.steps() == [("starting", "b"), ("started", "b")]
        assert rec.trail() == [("started", "app/b")]
        infos = await tree.which_children()
        assert [(i.name, i.state) for i in infos] == [
            ("a", ChildState.RUNNING),
            ("b", ChildState.RUNNING),
            ("c", ChildState.RUNNING),
        ]
        log.clear()
    assert log.steps("stopped") == [("stopped", "c"), ("stopped", "b"), ("stopped", "a")]


async def test_restart_child_of_a_running_child_raises_config_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Only a terminated child can be restarted by restart_child."""
    log = Log()
    async with run_tree(sup("app", child(log, "a"))) as tree:
        a = tree.lookup("a")
        with pytest.raises(ConfigError, match="app/a"):
            await tree.restart_child("app/a")
        assert tree.lookup("a") is a
        assert tree.failure is None


async def test_delete_child_forgets_a_terminated_child_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """delete_child refuses a running child with ConfigError; a terminated one is forgotten and
    can no longer be restarted, and its name is free again."""
    log = Log()
    async with run_tree(sup("app", child(log, "a"), child(log, "b"))) as tree:
        with pytest.raises(ConfigError, match="app/b"):
            await tree.delete_child("app/b")
        await tree.terminate_child("app/b")
        await tree.delete_child("app/b")
        assert [info.name for info in await tree.which_children()] == ["a"]
        with pytest.raises(actors.ActorNotFound):
            await tree.restart_child("app/b")
        ref = await tree.start_child("app", child(log, "b"))
        assert ref.is_alive
        assert tree.failure is None


async def test_unknown_child_names_raise_actor_not_found(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """terminate/restart/delete of a name that is no child raise ActorNotFound and harm
    nothing."""
    log = Log()
    async with run_tree(sup("app", child(log, "a"))) as tree:
        for operation in (tree.terminate_child, tree.restart_child, tree.delete_child):
            with pytest.raises(actors.ActorNotFound):
                await operation("app/nope")
        assert tree.failure is None
        assert tree.root.statistics().failures == 0


async def test_lookup_by_full_path_and_by_bare_name(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """lookup finds a child by its path or by its bare name when that is unique; an ambiguous
    bare name raises LookupError listing the paths; an unknown one raises ActorNotFound."""
    log = Log()
    spec = sup(
        "app",
        child(log, "a"),
        sup("left", child(log, "db"), child(log, "x")),
        sup("right", child(log, "db")),
    )
    async with run_tree(spec) as tree:
        assert tree.lookup("app/a") is tree.lookup("a")
        assert tree.lookup("x") is tree.lookup("app/left/x")
        assert tree.lookup("left") is tree.lookup("app/left")
        assert tree.lookup("app") is tree.root
        assert tree.lookup("app/left/db") is not tree.lookup("app/right/db")
        with pytest.raises(LookupError, match="app/left/db, app/right/db") as caught:
            tree.lookup("db")
        assert not isinstance(caught.value, actors.ActorNotFound)
        with pytest.raises(actors.ActorNotFound):
            tree.lookup("nope")
        with pytest.raises(actors.ActorNotFound):
            tree.lookup("app/nope")


async def test_lookup_of_a_terminated_child_raises_actor_not_found(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A child that is not running cannot be looked up, by path or by name."""
    log, rec = Log(), Recorder()
    async with run_tree(sup("app", child(log, "a"), child(log, "b")), events=rec.bus) as tree:
        await tree.terminate_child("app/b")
        for key in ("b", "app/b"):
            with pytest.raises(actors.ActorNotFound):
                tree.lookup(key)
        assert rec.trail(ChildStopped) == [("stopped", "app/b")]
