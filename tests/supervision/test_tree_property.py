"""Random crash storms against the restart intensity rule, under every strategy."""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from test_tree_support import Log, Recorder, child, sup

from supervisor.observe._events import ChildCrashed, ChildRestarted, IntensityExceeded
from supervisor.tree._children import SupervisorGaveUp
from supervisor.tree._run import run_tree
from supervisor.tree._specs import Strategy
from supervisor.tree._tree import Tree

NAMES = "abc"


@settings(max_examples=40)  # each example is a whole trio.run; 40 keep it under a second
@given(
    strategy=st.sampled_from([s for s in Strategy if s is not Strategy.SIMPLE_ONE_FOR_ONE]),
    max_restarts=st.integers(min_value=0, max_value=3),
    within=st.sampled_from([1.0, 2.5, 5.0]),
    crashes=st.lists(
        st.tuples(st.integers(0, len(NAMES) - 1), st.sampled_from([0.5, 1.0, 2.5])),
        max_size=8,
    ),
)
def test_random_crashes_never_exceed_the_intensity_unless_the_supervisor_gives_up(
    strategy: Strategy,
    max_restarts: int,
    within: float,
    crashes: list[tuple[int, float]],
) -> None:
    """Every crash is restarted while at most max_restarts crashes fall in the half-open window;
    the first one beyond gives up (IntensityExceeded, then SupervisorGaveUp, no more restarts);
    and after run_tree no actor is alive."""
    log, rec = Log(), Recorder()
    spec = sup(
        "app",
        *(child(log, name) for name in NAMES),
        strategy=strategy,
        max_restarts=max_restarts,
        within=within,
    )
    trees: list[Tree] = []
    gave_up: list[SupervisorGaveUp] = []

    async def main() -> None:
        try:
            async with run_tree(spec, events=rec.bus) as tree:
                trees.append(tree)
                for index, gap in crashes:
                    await trio.sleep(gap)
                    tree.lookup(NAMES[index]).tell("crash")
                await trio.sleep(1.0)
        except SupervisorGaveUp as exc:
            gave_up.append(exc)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    crash_times = [event.at for event in rec.of(ChildCrashed)]
    assert len(crash_times) <= len(crashes)
    exceeded = rec.of(IntensityExceeded)
    allowed = 0
    for index, now in enumerate(crash_times):
        in_window = sum(1 for t in crash_times[: index + 1] if now - within < t <= now)
        if in_window > max_restarts:
            # the first crash beyond the intensity: the supervisor gives up right then
            assert index == len(crash_times) - 1
            assert [event.at for event in exceeded] == [now]
            break
        allowed += 1
    else:
        assert exceeded == []
    assert bool(gave_up) == bool(exceeded)
    if gave_up:
        assert gave_up[0].__cause__ is rec.of(ChildCrashed)[-1].error
        tail = rec.events[rec.events.index(exceeded[0]) :]
        assert not any(isinstance(event, ChildRestarted) for event in tail)

    # each allowed crash restarted its group once: 1 child, all, or the crashed one and after
    restarted = rec.of(ChildRestarted)
    expected = 0
    for event in rec.of(ChildCrashed)[:allowed]:
        position = NAMES.index(event.path.rpartition("/")[2])
        expected += {
            Strategy.ONE_FOR_ONE: 1,
            Strategy.ONE_FOR_ALL: len(NAMES),
            Strategy.REST_FOR_ONE: len(NAMES) - position,
        }[strategy]
    assert len(restarted) == expected

    statistics = trees[0].system.statistics()
    assert statistics.live == 0
    assert statistics.closed
    assert statistics.by_state == {}
