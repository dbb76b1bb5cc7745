"""Restart intensity (giving up and escalating) and restart backoff, with exact times."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing
from test_tree_support import Boom, Log, Recorder, child, sup

import actors
from supervisor.observe._events import ChildCrashed, ChildRestarted, IntensityExceeded
from supervisor.tree._children import SupervisorGaveUp
from supervisor.tree._run import run_tree
from supervisor.tree._specs import RestartBackoff, Strategy
from supervisor.tree._tree import Tree

needs_suspend = pytest.mark.skipif(
    not hasattr(actors.ActorSystem, "suspend"),
    reason="one_for_all / rest_for_one need ActorSystem.suspend (being added to actors)",
)


async def crash_at(tree_lookup: actors.ActorRef[object], at: float) -> None:
    """Sleep until trio time ``at``, then make the actor crash."""
    await trio.sleep_until(at)
    tree_lookup.tell("crash")


async def test_the_restart_beyond_max_restarts_gives_up_and_fails_the_tree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With max_restarts=2, the third crash within the window is not restarted: the root
    publishes IntensityExceeded, stops its children in reverse order, and run_tree raises
    SupervisorGaveUp caused by that last crash."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"), child(log, "b"), child(log, "c"), max_restarts=2, within=10)
    reached_end = False
    trees: list[Tree] = []

    async def body() -> None:
        nonlocal reached_end
        async with run_tree(spec, events=rec.bus) as tree:
            trees.append(tree)
            a = tree.lookup("a")
            for at in (1.0, 2.0, 3.0):
                await crash_at(a, at)
            await trio.sleep(100.0)  # cancelled when the root gives up
            reached_end = True

    with pytest.raises(SupervisorGaveUp) as caught:
        await body()
    assert not reached_end
    assert trio.current_time() == 3.0
    error = caught.value
    assert (error.path, error.max_restarts, error.within) == ("app", 2, 10)
    assert isinstance(error.__cause__, Boom)
    assert error.__cause__ is rec.of(ChildCrashed)[-1].error
    assert rec.timed(ChildCrashed, ChildRestarted, IntensityExceeded) == [
        ("crashed", "app/a", 1.0),
        ("restarted", "app/a", 1.0),
        ("crashed", "app/a", 2.0),
        ("restarted", "app/a", 2.0),
        ("crashed", "app/a", 3.0),
        ("gave up", "app", 3.0),
    ]
    gave_up = rec.of(IntensityExceeded)[0]
    assert (gave_up.max_restarts, gave_up.within) == (2, 10)
    trail = rec.trail()
    assert trail[trail.index(("gave up", "app")) :] == [
        ("gave up", "app"),
        ("stopped", "app/c"),
        ("stopped", "app/b"),
        ("stopped", "app/a"),
    ]
    assert log.steps("stopping", "stopped") == [
        ("stopping", "c"),
        ("stopped", "c"),
        ("stopping", "b"),
        ("stopped", "b"),
    ]  # a crashed: it has no instance left to stop
    assert trees[0].system.statistics().live == 0


@pytest.mark.parametrize(("second_crash", "gives_up"), [(10.0, False), (9.5, True)])
async def test_intensity_window_is_half_open(
    autojump_clock: trio.testing.MockClock, second_crash: float, gives_up: bool
) -> None:
    """With max_restarts=1 within 10 s, a restart exactly 10 s ago no longer counts; one less
    than 10 s ago does."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"), max_restarts=1, within=10)

    async def body() -> None:
        async with run_tree(spec, events=rec.bus) as tree:
            await crash_at(tree.lookup("a"), 0.0)
            await crash_at(tree.lookup("a"), second_crash)
            await trio.sleep(1.0)

    if gives_up:
        with pytest.raises(SupervisorGaveUp):
            await body()
        assert rec.timed(ChildRestarted, IntensityExceeded) == [
            ("restarted", "app/a", 0.0),
            ("gave up", "app", second_crash),
        ]
    else:
        await body()
        assert rec.timed(ChildRestarted, IntensityExceeded) == [
            ("restarted", "app/a", 0.0),
            ("restarted", "app/a", 10.0),
        ]


async def test_restarts_are_counted_per_supervisor_not_per_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Crashes of different children add up: max_restarts=2 gives up at the third crash even
    though each child crashed at most twice."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"), child(log, "b"), max_restarts=2, within=10)

    async def body() -> None:
        async with run_tree(spec, events=rec.bus) as tree:
            await crash_at(tree.lookup("a"), 1.0)
            await crash_at(tree.lookup("b"), 2.0)
            await crash_at(tree.lookup("a"), 3.0)
            await trio.sleep(100.0)

    with pytest.raises(SupervisorGaveUp):
        await body()
    assert rec.timed(IntensityExceeded) == [("gave up", "app", 3.0)]


async def test_max_restarts_zero_gives_up_at_the_first_crash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """max_restarts=0 allows no restart at all."""
    log, rec = Log(), Recorder()
    spec = sup("app", child(log, "a"), max_restarts=0)

    async def body() -> None:
        async with run_tree(spec, events=rec.bus) as tree:
            await crash_at(tree.lookup("a"), 5.0)
            await trio.sleep(100.0)

    with pytest.raises(SupervisorGaveUp):
        await body()
    assert rec.timed(ChildCrashed, ChildRestarted, IntensityExceeded) == [
        ("crashed", "app/a", 5.0),
        ("gave up", "app", 5.0),
    ]


async def test_nested_supervisor_that_gives_up_is_restarted_by_its_parent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A nested supervisor beyond its intensity stops its children in reverse and fails; its
    parent (one_for_one) restarts it, and its children start again in order."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a"),
        sup("mid", child(log, "x"), child(log, "y"), max_restarts=0),
        child(log, "b"),
    )
    async with run_tree(spec, events=rec.bus) as tree:
        await trio.sleep(10.0)
        mid = tree.lookup("app/mid")
        log.clear()
        rec.clear()
        tree.lookup("x").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert rec.timed() == [
            ("crashed", "app/mid/x", 10.0),
            ("gave up", "app/mid", 10.0),
            ("stopped", "app/mid/y", 10.0),
            ("stopped", "app/mid/x", 10.0),
            ("crashed", "app/mid", 10.0),
            ("started", "app/mid/x", 10.0),
            ("started", "app/mid/y", 10.0),
            ("restarted", "app/mid", 10.0),
        ]
        assert isinstance(rec.of(ChildCrashed)[1].error, SupervisorGaveUp)
        assert log.steps() == [
            ("crash", "x"),
            ("stopping", "y"),
            ("stopped", "y"),
            ("starting", "x"),
            ("started", "x"),
            ("starting", "y"),
            ("started", "y"),
        ]
        assert tree.lookup("app/mid") is mid
        assert [info.restarts for info in await tree.which_children()] == [0, 1, 0]
        assert [info.restarts for info in await tree.which_children("app/mid")] == [0, 0]


@needs_suspend
async def test_nested_supervisor_that_gives_up_is_restarted_per_parent_strategy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Under a one_for_all parent, a nested supervisor's failure stops its siblings in reverse
    and restarts the whole group in start order (the nested one's children again in order)."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a"),
        sup("mid", child(log, "x"), max_restarts=0),
        child(log, "b"),
        strategy=Strategy.ONE_FOR_ALL,
    )
    async with run_tree(spec, events=rec.bus) as tree:
        log.clear()
        rec.clear()
        tree.lookup("x").tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert log.steps() == [
            ("crash", "x"),
            ("stopping", "b"),
            ("stopped", "b"),
            ("stopping", "a"),
            ("stopped", "a"),
            ("restarting", "a"),
            ("restarted", "a"),
            ("starting", "x"),
            ("started", "x"),
            ("restarting", "b"),
            ("restarted", "b"),
        ]
        assert rec.trail(ChildRestarted, IntensityExceeded) == [
            ("gave up", "app/mid"),
            ("restarted", "app/a"),
            ("restarted", "app/mid"),
            ("restarted", "app/b"),
        ]


async def test_escalation_through_two_levels_fails_the_root(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A leaf supervisor gives up, then its parent, then the root: each stops its children in
    reverse, and run_tree raises the root's SupervisorGaveUp, chained down to the crash."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a"),
        sup("mid", child(log, "m"), sup("leaf", child(log, "x"), max_restarts=0), max_restarts=0),
        child(log, "b"),
        max_restarts=0,
    )
    trees: list[Tree] = []

    async def body() -> None:
        async with run_tree(spec, events=rec.bus) as tree:
            trees.append(tree)
            await crash_at(tree.lookup("x"), 7.0)
            await trio.sleep(100.0)

    with pytest.raises(SupervisorGaveUp) as caught:
        await body()
    root = caught.value
    mid = root.__cause__
    assert isinstance(mid, SupervisorGaveUp)
    leaf = mid.__cause__
    assert isinstance(leaf, SupervisorGaveUp)
    assert isinstance(leaf.__cause__, Boom)
    assert [root.path, mid.path, leaf.path] == ["app", "app/mid", "app/mid/leaf"]
    assert rec.timed(IntensityExceeded) == [
        ("gave up", "app/mid/leaf", 7.0),
        ("gave up", "app/mid", 7.0),
        ("gave up", "app", 7.0),
    ]
    assert log.steps("crash", "stopped") == [
        ("crash", "x"),
        ("stopped", "m"),
        ("stopped", "b"),
        ("stopped", "a"),
    ]
    assert trees[0].system.statistics().live == 0


async def test_escalation_through_two_levels_restarts_the_subtree_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """When the leaf and its parent give up but the root may restart, the root restarts the
    middle supervisor, which starts its whole subtree again in order."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a"),
        sup("mid", child(log, "m"), sup("leaf", child(log, "x"), max_restarts=0), max_restarts=0),
        child(log, "b"),
        max_restarts=1,
    )
    async with run_tree(spec, events=rec.bus) as tree:
        log.clear()
        rec.clear()
        await crash_at(tree.lookup("x"), 7.0)
        await trio.testing.wait_all_tasks_blocked()
        assert log.steps("crash", "stopped", "started") == [
            ("crash", "x"),
            ("stopped", "m"),
            ("started", "m"),
            ("started", "x"),
        ]
        assert rec.trail() == [
            ("crashed", "app/mid/leaf/x"),
            ("gave up", "app/mid/leaf"),
            ("stopped", "app/mid/leaf/x"),
            ("crashed", "app/mid/leaf"),
            ("gave up", "app/mid"),
            ("stopped", "app/mid/leaf"),
            ("stopped", "app/mid/m"),
            ("crashed", "app/mid"),
            ("started", "app/mid/m"),
            ("started", "app/mid/leaf/x"),
            ("started", "app/mid/leaf"),
            ("restarted", "app/mid"),
        ]


# -- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("within", "crashes", "delays"),
    [
        # initial 1, factor 2, capped at 5: the n-th restart in the window waits 1, 2, 4, 5.
        (100.0, (10.0, 20.0, 30.0, 40.0), (1.0, 2.0, 4.0, 5.0)),
        # a restart that left the 25 s window no longer counts for n.
        (25.0, (10.0, 20.0, 36.0), (1.0, 2.0, 2.0)),
    ],
)
async def test_backoff_delays_without_jitter_are_exact(
    autojump_clock: trio.testing.MockClock,
    within: float,
    crashes: tuple[float, ...],
    delays: tuple[float, ...],
) -> None:
    """Without jitter, restart n within the window waits min(max_delay, initial * factor**(n-1))."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        child(log, "a"),
        max_restarts=10,
        within=within,
        backoff=RestartBackoff(initial_delay=1.0, factor=2.0, max_delay=5.0, jitter=False),
    )
    async with run_tree(spec, events=rec.bus) as tree:
        for at in crashes:
            await crash_at(tree.lookup("a"), at)
        await trio.sleep(10.0)
    restarted = rec.of(ChildRestarted)
    assert [event.delay for event in restarted] == list(delays)
    assert [event.at for event in restarted] == [
        c + d for c, d in zip(crashes, delays, strict=True)
    ]
    assert log.timed("restarted") == [(event.at, "restarted", "a") for event in restarted]


async def test_backoff_with_jitter_stays_within_its_ceiling(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With jitter each delay is drawn from [0, ceiling], the restart happens exactly that much
    after the crash, and the same seed gives the same delays."""
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]

    async def delays(seed: int) -> list[float]:
        log, rec = Log(), Recorder()
        spec = sup(
            "app",
            child(log, "a"),
            max_restarts=10,
            within=1000.0,
            backoff=RestartBackoff(initial_delay=1.0, factor=2.0, max_delay=8.0, jitter=True),
        )
        start = trio.current_time()
        crashes = [start + 10.0 * (i + 1) for i in range(len(ceilings))]
        async with run_tree(spec, events=rec.bus, rng=random.Random(seed)) as tree:
            for at in crashes:
                await crash_at(tree.lookup("a"), at)
            await trio.sleep(10.0)
        restarted = rec.of(ChildRestarted)
        assert len(restarted) == len(ceilings)
        for event, at, ceiling in zip(restarted, crashes, ceilings, strict=True):
            assert 0.0 <= event.delay <= ceiling
            assert event.at == pytest.approx(at + event.delay, abs=1e-9)
        return [event.delay for event in restarted]

    first = await delays(7)
    assert first == await delays(7)
    assert first != [*ceilings]  # drawn, not the ceilings themselves
    assert len(set(first)) > 1
