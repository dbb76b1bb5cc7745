"""The events pane on a small terminal (repeats collapsed, the tree folded where all is fine),
the colour legend, and the watch view of one service: exact text at 80 and 140 columns."""

from __future__ import annotations

import io
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from view_samples import capture, outage

import actors
from supervisor import ConfigError
from supervisor.console._collapse import collapse, fold, is_fine
from supervisor.console._history import WINDOW, ServiceHistory, resolve
from supervisor.console._monitor import monitor
from supervisor.console._render import MIN_EVENTS, render
from supervisor.console._watch import render_watch, sparkline
from supervisor.observe._snapshot import EventSnapshot, SystemSnapshot
from supervisor.tree._rule_specs import BreakerSpec
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ServiceSpec, SupervisorSpec

EXPECTED = Path(__file__).parent / "expected"


def events_rows(text: str) -> list[str]:
    """The rows of the events pane: the lines after its rule."""
    lines = text.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("Latest events"))
    return [line for line in lines[title + 3 :] if line.strip()]


def watched(name: str = "payments", seconds: int = 75) -> tuple[SystemSnapshot, ServiceHistory]:
    """A history of ``name`` fed one snapshot per second, with moving numbers."""
    history = ServiceHistory(name)
    snapshot = outage()
    for i in range(seconds):
        snapshot = outage(at=float(i))
        services = list(snapshot.services)
        pay = services[4]
        services[4] = attrs.evolve(
            pay,
            calls_per_second=float(i % 20),
            error_rate=(i % 7) / 10,
            latency=attrs.evolve(pay.latency, p99=float(i * 3)),
        )
        snapshot = attrs.evolve(snapshot, services=tuple(services))
        history.record(snapshot)
    return snapshot, history


# -- repeats ---------------------------------------------------------------------------------


def test_repeats_collapse_per_kind_and_place_with_count_and_last_time() -> None:
    """Events of one kind at one place become one row: their count, the first and last time,
    the last detail; rows are ordered by their last event."""

    def event(at: float, kind: str, path: str = "app/db", detail: str = "") -> EventSnapshot:
        return EventSnapshot(at=at, kind=kind, path=path, detail=detail or f"{kind} at {at}")

    rows = collapse(
        [
            event(1.0, "FallbackUsed"),
            event(2.0, "RequestRefused"),
            event(3.0, "FallbackUsed"),
            event(4.0, "RequestRefused", path="app/cache"),
            event(5.0, "RequestRefused"),
        ]
    )
    assert [(r.kind, r.path, r.count, r.first_at, r.at) for r in rows] == [
        ("FallbackUsed", "app/db", 2, 1.0, 3.0),
        ("RequestRefused", "app/cache", 1, 4.0, 4.0),
        ("RequestRefused", "app/db", 2, 2.0, 5.0),
    ]
    assert rows[-1].detail == "RequestRefused at 5.0"
    assert collapse([]) == ()


def test_the_pane_shows_repeats_once_with_their_count() -> None:
    """While the breaker is open, 20 refusals and 20 fallbacks of payments are two rows."""
    rows = events_rows(capture(render(outage(repeats=20), width=80, height=24), 80))
    refused = [row for row in rows if "RequestRefused" in row]
    fallback = [row for row in rows if "FallbackUsed" in row]
    assert len(refused) == len(fallback) == 1
    assert "20\u00d7 refused: circuit_open" in refused[0]
    assert refused[0].split()[0] == "22.50"  # the last one's time
    assert "20\u00d7 cache fallback answered" in fallback[0]


# -- the 80x24 pane ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payments", "search"), [("closed", "closed"), ("open", "closed"), ("open", "half_open")]
)
@pytest.mark.parametrize("status", [None, "disconnected (retrying)"])
def test_80x24_gives_the_events_pane_at_least_five_rows(
    payments: str, search: str, status: str | None
) -> None:
    """At 80x24 the demo's tree (9 nodes, 6 services) folds what is fine so that the events
    pane has at least 5 rows, and the view leaves the last line free."""
    snapshot = outage(payments=payments, search=search)
    text = capture(render(snapshot, width=80, height=24, status=status, legend=True), 80)
    assert len(text.splitlines()) <= 23
    assert len(events_rows(text)) >= MIN_EVENTS
    for name in ("payments", "search"):
        broken = {"payments": payments, "search": search}[name] != "closed"
        assert (f"── {name} [service]" in text) == broken  # drawn only when not fine


def test_a_tall_terminal_folds_nothing() -> None:
    """With room to spare every node is drawn, and no line names folded children."""
    text = capture(render(outage(), width=80, height=60), 80)
    assert "fine:" not in text
    for name in ("api-gateway", "auth", "db", "cache", "payments", "search"):
        assert f"── {name} [service]" in text


def test_fold_levels() -> None:
    """Level 0 draws all; 1 draws a fine supervisor as one line; 2 folds fine leaves into their
    supervisor's line; 3 folds every fine child. The root is always drawn."""
    tree = outage(payments="open").tree
    assert [fold(tree, level).lines() for level in range(4)] == [9, 7, 4, 3]
    level1 = fold(tree, 1)
    assert level1.children[0].folded == ("api-gateway", "auth")
    assert fold(tree, 2).children[1].folded == ("db", "cache", "search")
    assert fold(tree, 3).folded == ("frontend",)
    assert not is_fine(tree)
    assert is_fine(outage(payments="closed").tree)
    assert fold(outage(payments="closed").tree, 3).lines() == 1


def test_exact_80x24_and_140x30_views_during_an_outage() -> None:
    """The outage at 80x24 (folded tree, legend, collapsed repeats) and at 140x30 is exactly
    the stored capture."""
    for width, height in ((80, 24), (140, 30)):
        view = render(outage(payments="open"), width=width, height=height, legend=True)
        expected = (EXPECTED / f"outage_{width}x{height}.txt").read_text()
        assert capture(view, width) == expected


def test_the_legend_needs_room_and_is_off_by_default() -> None:
    """The legend line names the colours' meanings; it is shown only when asked and when it
    leaves the events more than 5 rows."""
    roomy = capture(render(outage(), width=80, height=40, legend=True), 80)
    assert roomy.splitlines()[1].startswith("key: closed half_open open · health 90+ 50+ <50")
    assert "key:" not in capture(render(outage(), width=80, height=40), 80)
    tight = outage(payments="open", search="half_open")
    assert "key:" not in capture(render(tight, width=80, height=24, legend=True), 80)


# -- the watch view --------------------------------------------------------------------------


def test_sparkline_levels() -> None:
    """Values scale from 0 to the largest; gaps are blank; all zeros are the lowest bar."""
    assert sparkline([0.0, 1.0, 2.0, None, 7.0]) == "▁▂▃ █"
    assert sparkline([0.0, 0.0]) == "▁▁"
    assert sparkline([None, None]) == "  "


def test_exact_watch_views_at_80_and_140() -> None:
    """The watch view of payments after 75 s of samples is exactly the stored capture."""
    snapshot, history = watched()
    for width, height in ((80, 24), (140, 30)):
        view = render_watch(snapshot, history, width=width, height=height)
        text = capture(view, width)
        assert text == (EXPECTED / f"watch_{width}.txt").read_text()
        assert len(text.splitlines()) <= height - 1


def test_history_is_a_bounded_ring_of_the_last_minute() -> None:
    """After 1000 snapshots, 10 per second, the history holds one sample per second of the last
    60 and gaps where no snapshot fell."""
    history = ServiceHistory("db")
    for tick in range(1000):
        history.record(outage(at=tick / 10))
    samples = history.samples()
    assert len(samples) == WINDOW
    assert len(history._slots) <= WINDOW
    assert all(sample is not None for sample in samples)
    assert samples[-1] is not None
    assert samples[-1].at == pytest.approx(99.9)
    history.record(outage(at=105.0))  # five seconds with no snapshot
    gaps = [sample is None for sample in history.samples()[-7:]]
    assert gaps == [False, True, True, True, True, True, False]


@given(st.lists(st.floats(min_value=0, max_value=500, allow_nan=False), max_size=60))
def test_history_holds_at_most_a_minute_whatever_the_times(times: list[float]) -> None:
    """Whatever the order of the snapshots' times, at most 60 samples are kept, each within the
    minute before the newest recorded one."""
    history = ServiceHistory("db")
    for at in times:
        history.record(outage(at=at))
    assert len(history._slots) <= WINDOW
    if times:
        newest = max(times)
        kept = [sample for sample in history.samples() if sample is not None]
        assert all(newest - 60 < sample.at <= newest for sample in kept)


def test_transitions_are_kept_once_and_bounded() -> None:
    """A breaker change seen in many snapshots is kept once; only the last few are kept."""
    history = ServiceHistory("payments", max_transitions=2)
    base = outage()
    for n in range(4):
        change = EventSnapshot(
            at=40.0 + n, kind="CircuitStateChange", path="app/backend/payments", detail=f"c{n}"
        )
        base = attrs.evolve(base, at=40.0 + n, events=(*base.events, change))
        history.record(base)
        history.record(base)
    assert [t.detail for t in history.transitions] == ["c2", "c3"]


def test_resolve_names_and_problems() -> None:
    """A path, a path below the root or a unique name designates a service; anything else says
    why, naming the services there are."""
    snapshot = outage()
    for name in ("app/backend/db", "backend/db", "db"):
        found = resolve(name, snapshot)
        assert not isinstance(found, str)
        assert found.path == "app/backend/db"
    problem = resolve("nope", snapshot)
    assert isinstance(problem, str)
    assert problem.startswith("no service named 'nope' (services: frontend/api-gateway,")
    history = ServiceHistory("nope")
    assert history.record(snapshot) is False
    text = capture(render_watch(snapshot, history, width=80), 80)
    assert text.splitlines()[1].startswith("watch: no service named 'nope'")
    with pytest.raises(ConfigError, match="watch"):
        ServiceHistory("")
    with pytest.raises(ConfigError, match="max_transitions"):
        ServiceHistory("db", max_transitions=0)


class Backend(actors.Actor[object]):
    """Answers; raises on "fail"."""

    async def receive(self, message: object) -> object:
        if message == "fail":
            raise RuntimeError("down")
        return message


async def test_the_in_process_monitor_watches_one_service(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``monitor(tree, watch=...)`` draws the watch view, with the breaker's opening listed."""
    spec = SupervisorSpec(
        name="app",
        max_restarts=50,
        children=(
            ServiceSpec(
                name="db", factory=Backend, breaker=BreakerSpec(failure_threshold=1, timeout=5.0)
            ),
        ),
    )
    out = io.StringIO()
    console = Console(file=out, width=80, color_system=None)
    async with run_tree(spec) as tree, monitor(tree, interval=1.0, console=console, watch="db"):
        db = tree.service("db")
        for _ in range(3):
            await db.call("ok")
            await trio.sleep(1.0)
        with pytest.raises(RuntimeError):
            await db.call("fail")
        await trio.sleep(1.5)
    text = out.getvalue()
    assert "Watching db" in text
    assert "breaker closed -> open (failure_threshold)" in text.split("Breaker transitions")[-1]


@pytest.mark.parametrize("width", [40, 60, 79, 80, 99, 100, 119, 120, 140, 200])
def test_no_line_of_the_new_views_is_wider_than_the_terminal(width: int) -> None:
    """The folded view and the watch view fit every width; narrow sparklines show the latest
    seconds."""
    snapshot, history = watched()
    for view in (
        render(outage(), width=width, height=24, legend=True),
        render_watch(snapshot, history, width=width, height=24),
    ):
        text = capture(view, width)
        assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    spark = capture(render_watch(snapshot, history, width=width), width).splitlines()[2]
    assert spark.startswith("calls/s ")
    assert len(spark.split()[1]) == min(WINDOW, width - 17 - (13 if width >= 100 else 0))
