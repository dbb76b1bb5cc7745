"""Significant children and auto_shutdown (OTP 24): which exits shut a supervisor down, how
that escalates, and what never triggers it; with exact times."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from test_tree_support import Log, Recorder, child, sup

from supervisor import AutoShutdown, ConfigError, load_tree
from supervisor.observe._events import AutoShutdownTriggered, ChildRestarted, ChildStopped
from supervisor.tree._children import ChildState, SupervisorShutdown
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ChildSpec, Restart, ServiceSpec, Strategy, SupervisorSpec

ANY = AutoShutdown.ANY_SIGNIFICANT
ALL = AutoShutdown.ALL_SIGNIFICANT


async def states(tree: Any, path: str | None = None) -> list[tuple[str, ChildState]]:
    return [(i.name, i.state) for i in await tree.which_children(path)]


def significant(log: Log, name: str, restart: Restart = Restart.TRANSIENT, **kw: Any) -> ChildSpec:
    spec = child(log, name, restart=restart, **kw)
    return ChildSpec(
        name=spec.name,
        factory=spec.factory,
        args=spec.args,
        kwargs=spec.kwargs,
        restart=restart,
        shutdown=spec.shutdown,
        significant=True,
    )


async def test_a_significant_child_exiting_normally_shuts_its_supervisor_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """any_significant: a transient significant child that stops normally by itself at t=5
    makes its supervisor stop its other children and exit with reason shutdown; a transient
    supervisor is then not restarted by its parent."""
    log, rec = Log(), Recorder()
    mid = sup(
        "mid",
        child(log, "w", stop_delay=1.0),
        significant(log, "s"),
        auto_shutdown=ANY,
        restart=Restart.TRANSIENT,
    )
    async with run_tree(sup("app", mid, child(log, "b")), events=rec.bus) as tree:
        await trio.sleep(5.0)
        await tree.system.stop(tree.lookup("s"))
        await trio.sleep(2.0)
        assert await states(tree) == [("mid", ChildState.TERMINATED), ("b", ChildState.RUNNING)]
        (triggered,) = rec.of(AutoShutdownTriggered)
        assert (triggered.path, triggered.at, triggered.significant) == (
            "app/mid",
            5.0,
            "app/mid/s",
        )
        (stopped,) = [e for e in rec.of(ChildStopped) if e.path == "app/mid"]
        assert isinstance(stopped.reason, SupervisorShutdown)
        assert stopped.at == 6.0
        assert log.timed("stopped") == [(5.0, "stopped", "s"), (6.0, "stopped", "w")]
        assert rec.of(ChildRestarted) == []


async def test_auto_shutdown_escalates_through_significant_supervisors_and_ends_the_tree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A significant transient supervisor that shuts down is itself a significant exit: its
    parent shuts down too, and when the root does, run_tree's body is cancelled and the block
    ends normally."""
    log, rec = Log(), Recorder()
    mid = sup(
        "mid", significant(log, "s"), auto_shutdown=ANY, restart=Restart.TRANSIENT, significant=True
    )
    reached = []
    async with run_tree(
        sup("app", child(log, "w"), mid, auto_shutdown=ANY), events=rec.bus
    ) as tree:
        await trio.sleep(3.0)
        await tree.system.stop(tree.lookup("s"))
        await trio.sleep(100.0)
        reached.append("end of body")  # pragma: no cover
    assert reached == []
    assert trio.current_time() == 3.0
    assert tree.shut_down
    assert tree.failure is None
    assert [(e.path, e.significant) for e in rec.of(AutoShutdownTriggered)] == [
        ("app/mid", "app/mid/s"),
        ("app", "app/mid"),
    ]


async def test_all_significant_waits_for_the_last_significant_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """all_significant: the first temporary significant child's exit (a crash) leaves the
    supervisor running; the last one's exit shuts it down."""
    log, rec = Log(), Recorder()
    mid = sup(
        "mid",
        child(log, "w"),
        significant(log, "t1", Restart.TEMPORARY),
        significant(log, "t2", Restart.TEMPORARY),
        auto_shutdown=ALL,
        restart=Restart.TRANSIENT,
    )
    async with run_tree(sup("app", mid), events=rec.bus) as tree:
        tree.lookup("t1").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert await states(tree, "app/mid") == [
            ("w", ChildState.RUNNING),
            ("t2", ChildState.RUNNING),
        ]
        assert rec.of(AutoShutdownTriggered) == []
        await trio.sleep(2.0)
        await tree.system.stop(tree.lookup("t2"))
        await trio.testing.wait_all_tasks_blocked()
        assert await states(tree) == [("mid", ChildState.TERMINATED)]
        assert [(e.at, e.significant) for e in rec.of(AutoShutdownTriggered)] == [
            (2.0, "app/mid/t2")
        ]


async def test_terminate_child_of_a_significant_child_never_shuts_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Stopping a significant child through the API is not an exit of its own."""
    log, rec = Log(), Recorder()
    async with run_tree(
        sup("app", child(log, "w"), significant(log, "s"), auto_shutdown=ANY), events=rec.bus
    ) as tree:
        await tree.terminate_child("app/s")
        await trio.sleep(1.0)
        assert await states(tree) == [("w", ChildState.RUNNING), ("s", ChildState.TERMINATED)]
    assert rec.of(AutoShutdownTriggered) == []
    assert not tree.shut_down


async def test_a_crash_of_a_transient_significant_child_restarts_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An abnormal exit of a transient significant child is restarted as usual, no shutdown."""
    log, rec = Log(), Recorder()
    async with run_tree(
        sup("app", significant(log, "s"), auto_shutdown=ANY), events=rec.bus
    ) as tree:
        tree.lookup("s").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert await states(tree) == [("s", ChildState.RUNNING)]
    assert rec.of(AutoShutdownTriggered) == []


async def test_collateral_exits_of_a_group_restart_never_shut_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Under one_for_all a significant temporary bystander stopped for a sibling's restart is
    removed, and that does not trigger auto_shutdown."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a"),
        significant(log, "t", Restart.TEMPORARY),
        strategy=Strategy.ONE_FOR_ALL,
        auto_shutdown=ANY,
    )
    async with run_tree(spec, events=rec.bus) as tree:
        tree.lookup("a").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert await states(tree) == [("a", ChildState.RUNNING)]
    assert rec.of(AutoShutdownTriggered) == []


async def test_a_permanent_supervisor_that_shuts_down_is_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A permanent child supervisor's auto_shutdown is an exit like any for its parent: it is
    restarted (from its spec, so its significant child is back)."""
    log = Log()
    mid = sup("mid", significant(log, "s"), auto_shutdown=ANY)
    async with run_tree(sup("app", mid)) as tree:
        await tree.system.stop(tree.lookup("s"))
        await trio.testing.wait_all_tasks_blocked()
        assert [(i.name, i.state, i.restarts) for i in await tree.which_children()] == [
            ("mid", ChildState.RUNNING, 1)
        ]
        assert await states(tree, "app/mid") == [("s", ChildState.RUNNING)]


def test_significant_permanent_and_significant_under_never_are_config_errors() -> None:
    """OTP's checks: a permanent child cannot be significant; a supervisor whose auto_shutdown is
    never cannot have significant children. The message names the field."""
    with pytest.raises(ConfigError, match="`significant` must be false for a permanent child"):
        ChildSpec(name="a", factory=object, significant=True)
    with pytest.raises(ConfigError, match="`significant` must be false for a permanent child"):
        ServiceSpec(name="a", factory=object, significant=True)
    with pytest.raises(ConfigError, match="`significant` must be false for a permanent child"):
        SupervisorSpec(name="a", significant=True)
    with pytest.raises(ConfigError, match="`significant` must be true or false"):
        ChildSpec(name="a", factory=object, restart="transient", significant="yes")
    with pytest.raises(
        ConfigError, match=r"`children\[0\].significant` is true but `auto_shutdown`"
    ):
        SupervisorSpec(
            name="s",
            children=[ChildSpec(name="a", factory=object, restart="transient", significant=True)],
        )
    with pytest.raises(ConfigError, match="`auto_shutdown` 'some' is not one of never"):
        SupervisorSpec(name="s", auto_shutdown="some")


async def test_start_child_refuses_a_significant_child_under_never(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """start_child checks the same rule at run time."""
    log = Log()
    async with run_tree(sup("app")) as tree:
        with pytest.raises(ConfigError, match="`significant` is true but the `auto_shutdown`"):
            await tree.start_child("app", significant(log, "s"))
        assert await tree.which_children() == ()


def test_significant_and_auto_shutdown_load_from_data() -> None:
    """`significant` and `auto_shutdown` load from TOML-like data, with the path in errors."""
    spec = load_tree(
        {
            "name": "app",
            "auto_shutdown": "all_significant",
            "children": [
                {
                    "name": "a",
                    "factory": "test_tree_support:Worker",
                    "restart": "temporary",
                    "significant": True,
                },
                {"name": "mid", "auto_shutdown": "any_significant"},
            ],
        }
    )
    assert spec.auto_shutdown is ALL
    assert spec.children[0].significant
    assert isinstance(spec.children[1], SupervisorSpec)
    assert spec.children[1].auto_shutdown is ANY
    with pytest.raises(ConfigError, match=r"children\[0\].significant: `significant` must be"):
        load_tree(
            {
                "name": "app",
                "auto_shutdown": "any_significant",
                "children": [
                    {"name": "a", "factory": "test_tree_support:Worker", "significant": True}
                ],
            }
        )
    with pytest.raises(ConfigError, match=r"children\[0\].significant: 1 is not true or false"):
        load_tree(
            {
                "name": "app",
                "children": [
                    {"name": "a", "factory": "test_tree_support:Worker", "significant": 1}
                ],
            }
        )
