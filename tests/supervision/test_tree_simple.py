"""Dynamic supervisors (OTP's simple_one_for_one) and child starts that say ignore."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from test_tree_support import Boom, Log, Recorder, Worker, child, sup

import actors
from supervisor import IGNORE, ChildCount, ConfigError, Ignore, load_tree
from supervisor.observe._events import ChildIgnored, ChildRestarted, IntensityExceeded
from supervisor.tree._children import ChildState
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ChildSpec, Restart, ServiceSpec, Strategy, SupervisorSpec


class Job(Worker):
    """A worker instance told its job by extra arguments."""

    def __init__(self, log: Log, prefix: str, job: str, *, stop_delay: float = 0.0) -> None:
        super().__init__(log, f"{prefix}:{job}", stop_delay=stop_delay)
        self.job = job

    async def receive(self, message: Any) -> Any:
        if message == "job":
            return self.job
        return await super().receive(message)


def pool(log: Log, restart: Restart = Restart.PERMANENT, **options: Any) -> SupervisorSpec:
    template = ChildSpec(
        name="job", factory=Job, args=(log, "job"), restart=restart, kwargs=options
    )
    return sup("jobs", template, strategy=Strategy.SIMPLE_ONE_FOR_ONE, max_restarts=5)


async def test_instances_start_with_extra_args_and_restart_with_the_same(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """start_child(*args) appends the args to the template's; a crashed instance restarts in its
    slot with the same args; which_children lists instances with their args."""
    log, rec = Log(), Recorder()
    async with run_tree(sup("app", pool(log)), events=rec.bus) as tree:
        jobs = tree.dynamic("app/jobs")
        first = await jobs.start_child("a")
        second = await jobs.start_child("b")
        assert first is not None
        assert second is not None
        assert await first.ask("job") == "a"
        assert await tree.count_children("app/jobs") == ChildCount(
            specs=1, active=2, supervisors=0, workers=2
        )
        with pytest.raises(Boom):
            await second.ask("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert await second.ask("job") == "b"
        infos = await jobs.which_children()
        assert [(i.name, i.path, i.args, i.restarts) for i in infos] == [
            ("job-1", "app/jobs/job-1", ("a",), 0),
            ("job-2", "app/jobs/job-2", ("b",), 1),
        ]
        assert [e.path for e in rec.of(ChildRestarted)] == ["app/jobs/job-2"]


async def test_terminate_child_stops_and_forgets_an_instance(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """terminate_child(ref) stops the instance and forgets it; an unknown ref is refused."""
    log = Log()
    async with run_tree(sup("app", pool(log))) as tree:
        jobs = tree.dynamic("app/jobs")
        ref = await jobs.start_child("a")
        assert ref is not None
        await jobs.terminate_child(ref)
        assert not ref.is_alive
        assert await jobs.which_children() == ()
        with pytest.raises(actors.ActorNotFound):
            await jobs.terminate_child(ref)
        assert (await jobs.count_children()).active == 0


async def test_a_temporary_instance_that_crashes_is_forgotten(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Temporary instances are never restarted; a transient one is, after a crash."""
    log = Log()
    async with run_tree(sup("app", pool(log, Restart.TEMPORARY))) as tree:
        jobs = tree.dynamic("app/jobs")
        ref = await jobs.start_child("a")
        assert ref is not None
        ref.tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert await jobs.which_children() == ()


async def test_instances_stop_all_at_once_at_shutdown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Fifty instances whose stop hooks take 1 s each stop together: the tree is down 1 s after
    the stop began, not 50 s."""
    log = Log()
    async with run_tree(sup("app", pool(log, stop_delay=1.0))) as tree:
        jobs = tree.dynamic("app/jobs")
        for index in range(50):
            await jobs.start_child(str(index))
        await trio.sleep(10.0)
    assert trio.current_time() == 11.0
    assert len(log.timed("stopped")) == 50


async def test_instances_count_against_the_intensity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Restarts of instances are counted per supervisor: the sixth within the window gives up."""
    log, rec = Log(), Recorder()
    spec = sup("app", pool(log))
    async with run_tree(spec, events=rec.bus) as tree:
        jobs = tree.dynamic("app/jobs")
        refs = [await jobs.start_child(str(i)) for i in range(6)]
        for ref in refs:
            assert ref is not None
            ref.tell("crash")
            await trio.testing.wait_all_tasks_blocked()
        assert [e.path for e in rec.of(IntensityExceeded)] == ["app/jobs"]


async def test_a_dynamic_supervisor_refuses_the_static_operations(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """start_child with a spec, restart_child and delete_child do not apply to a dynamic
    supervisor; tree.dynamic of a static one is refused."""
    log = Log()
    async with run_tree(sup("app", pool(log))) as tree:
        with pytest.raises(ConfigError, match="simple_one_for_one supervisor"):
            await tree.start_child("app/jobs", child(log, "x"))
        with pytest.raises(ConfigError, match="no simple_one_for_one supervisor at 'app'"):
            tree.dynamic("app")
        ref = await tree.dynamic("app/jobs").start_child("a")
        assert ref is not None
        await tree.terminate_child("app/jobs/job-1")
        assert await tree.which_children("app/jobs") == ()


def test_a_dynamic_supervisor_has_exactly_one_template() -> None:
    """simple_one_for_one needs exactly one child spec, also when loaded from data."""
    with pytest.raises(ConfigError, match="exactly one template"):
        SupervisorSpec(name="jobs", strategy="simple_one_for_one")
    spec = load_tree(
        {
            "name": "app",
            "children": [
                {
                    "name": "jobs",
                    "strategy": "simple_one_for_one",
                    "children": [{"name": "job", "factory": "test_tree_support:Worker"}],
                }
            ],
        }
    )
    assert spec.children[0].strategy is Strategy.SIMPLE_ONE_FOR_ONE  # type: ignore[union-attr]


# -- ignore ---------------------------------------------------------------------------------------


class Sometimes(Worker):
    """A worker whose start says ignore while ``log.starts`` has no ``"go"`` entry."""

    async def on_start(self) -> None:
        if "go" not in self.log.starts:
            raise Ignore
        await super().on_start()

    async def on_restart(self, error: Exception | None) -> None:
        await self.on_start()


def maybe(log: Log, name: str) -> Any:
    return IGNORE if "go" not in log.starts else Worker(log, name)


async def test_a_start_that_says_ignore_keeps_the_child_terminated(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A factory returning IGNORE or an on_start raising Ignore: the start succeeds with no
    actor; the spec is kept terminated (restart_child starts it later) and a temporary one is
    forgotten."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        ChildSpec(name="f", factory=maybe, args=(log, "f")),
        ChildSpec(name="h", factory=Sometimes, args=(log, "h")),
        ChildSpec(name="t", factory=maybe, args=(log, "t"), restart=Restart.TEMPORARY),
        child(log, "w"),
    )
    async with run_tree(spec, events=rec.bus) as tree:
        assert [(i.name, i.state) for i in await tree.which_children()] == [
            ("f", ChildState.TERMINATED),
            ("h", ChildState.TERMINATED),
            ("w", ChildState.RUNNING),
        ]
        assert [e.path for e in rec.of(ChildIgnored)] == ["app/f", "app/h", "app/t"]
        assert await tree.restart_child("app/h") is None  # still says ignore
        log.starts["go"] = 1
        assert await tree.restart_child("app/f") is not None
        assert await tree.restart_child("app/h") is not None
        assert (
            await tree.start_child("app", ChildSpec(name="t", factory=maybe, args=(log, "t")))
            is not None
        )


async def test_a_restart_that_says_ignore_leaves_the_child_terminated(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A crashed child whose restart says ignore is terminated, without a crash counted."""
    log, rec = Log(), Recorder()
    log.starts["go"] = 1
    async with run_tree(
        sup("app", ChildSpec(name="h", factory=Sometimes, args=(log, "h"))), events=rec.bus
    ) as tree:
        del log.starts["go"]
        tree.lookup("h").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert [(i.name, i.state) for i in await tree.which_children()] == [
            ("h", ChildState.TERMINATED)
        ]
        assert [e.path for e in rec.of(ChildIgnored)] == ["app/h"]
        assert rec.of(ChildRestarted) == []


async def test_a_dynamic_instance_that_says_ignore_is_not_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """start_child of a dynamic supervisor returns None for an ignored instance and keeps
    nothing."""
    log = Log()
    template = ChildSpec(name="job", factory=maybe, args=(log,))
    spec = sup("app", sup("jobs", template, strategy=Strategy.SIMPLE_ONE_FOR_ONE))
    async with run_tree(spec) as tree:
        jobs = tree.dynamic("app/jobs")
        assert await jobs.start_child("x") is None
        assert await jobs.which_children() == ()


class Echo(actors.Actor[Any]):
    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def receive(self, message: Any) -> Any:
        return (self.tag, message)


async def test_a_service_template_makes_guarded_instances(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A ServiceSpec template gives each instance its own guarded service, listed in
    tree.services() while it lives and gone once terminated."""
    template = ServiceSpec(name="conn", factory=Echo)
    spec = sup("app", sup("pool", template, strategy=Strategy.SIMPLE_ONE_FOR_ONE))
    async with run_tree(spec) as tree:
        pool = tree.dynamic("app/pool")
        first = await pool.start_child("db1")
        await pool.start_child("db2")
        assert sorted(tree.services()) == ["app/pool/conn-1", "app/pool/conn-2"]
        assert await tree.service("app/pool/conn-2").call("q") == ("db2", "q")
        assert first is not None
        await pool.terminate_child(first)
        assert sorted(tree.services()) == ["app/pool/conn-2"]


async def test_count_children_of_a_static_supervisor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """count_children counts every spec, the running ones, and supervisors and workers (dead or
    alive), as OTP's count_children."""
    log = Log()
    spec = sup("app", child(log, "a"), child(log, "b"), sup("mid", child(log, "x")))
    async with run_tree(spec) as tree:
        await tree.terminate_child("app/b")
        assert await tree.count_children() == ChildCount(
            specs=3, active=2, supervisors=1, workers=2
        )
