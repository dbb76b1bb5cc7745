"""The pure renderer: exact text at 80 and 140 columns, colours, fitting 80x24, edge cases."""

from __future__ import annotations

import io
from pathlib import Path

import attrs
import pytest
from rich.console import Console

from supervisor import ConfigError
from supervisor.console._render import render
from supervisor.observe._snapshot import (
    NodeSnapshot,
    SystemSnapshot,
    snapshot_from_json,
    snapshot_to_json,
)

EXPECTED = Path(__file__).parent / "expected"


def sample() -> SystemSnapshot:
    """The known snapshot the expected captures were made from."""
    return snapshot_from_json((EXPECTED / "sample.json").read_text())


def capture(snapshot: SystemSnapshot | None, width: int, **options: object) -> str:
    """Render to a recording console without colour and return the text."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(render(snapshot, width=width, **options))  # type: ignore[arg-type]
    return console.export_text()


def test_sample_round_trips_through_json() -> None:
    """The stored sample is a valid snapshot and survives a JSON round trip."""
    snapshot = sample()
    assert snapshot_from_json(snapshot_to_json(snapshot)) == snapshot


@pytest.mark.parametrize("width", [80, 140])
def test_render_matches_the_expected_capture(width: int) -> None:
    """The view of the known snapshot at 80 and 140 columns is exactly the stored capture."""
    expected = (EXPECTED / f"render_{width}.txt").read_text()
    assert capture(sample(), width) == expected


@pytest.mark.parametrize("width", [80, 100, 119, 120, 140, 200])
def test_no_line_is_wider_than_the_terminal(width: int) -> None:
    """Every line of the view fits the width it was rendered for."""
    text = capture(sample(), width)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width


def test_compact_layout_abbreviates_and_the_wide_one_adds_columns() -> None:
    """Below 120 columns the table drops breaker/refused/retries; from 120 on it shows them."""
    compact = capture(sample(), 119)
    wide = capture(sample(), 120)
    for header in ("Breaker", "Refused", "Retries"):
        assert header not in compact
        assert header in wide
    # compact: last part of the path; wide: path below the root
    assert "\npayments " in compact
    assert "backend/payments" in wide


def test_fits_80x24_with_a_status_line() -> None:
    """At 80x24 the view, status line included, leaves the last line free for the cursor."""
    text = capture(sample(), 80, height=24, status="disconnected (retrying)")
    lines = text.splitlines()
    assert len(lines) <= 23
    assert lines[1] == "disconnected (retrying)"
    assert "BulkheadRejected" in text  # the newest event is kept


def test_height_bounds_the_number_of_events() -> None:
    """A taller terminal shows more of the latest events, newest last."""
    short = capture(sample(), 80, height=20)
    tall = capture(sample(), 80, height=40)
    assert short.count("\n1") < tall.count("\n1")
    assert tall.rstrip().splitlines()[-1].startswith("111.00  BulkheadRejected")


def test_max_events_overrides_the_room() -> None:
    """`max_events` shows exactly that many of the latest events (0: none)."""
    text = capture(sample(), 140, max_events=2)
    assert "110.00" in text
    assert "111.00" in text
    assert "109.00" not in text
    none = capture(sample(), 80, max_events=0)
    assert "none yet" in none


def test_breaker_and_state_colours() -> None:
    """Breaker closed is green, half_open yellow, open red; parked and failed stand out."""
    snapshot = attrs.evolve(
        sample(),
        tree=NodeSnapshot(
            path="app",
            name="app",
            kind="supervisor",
            state="running",
            restart_budget=0,
            children=(
                NodeSnapshot(path="app/a", name="a", kind="service", state="failed"),
                NodeSnapshot(
                    path="app/b", name="b", kind="service", state="parked", breaker="open"
                ),
            ),
        ),
    )
    console = Console(width=80, record=True, color_system="standard", file=io.StringIO())
    console.print(render(sample(), width=80))
    console.print(render(snapshot, width=80))
    styled = console.export_text(styles=True)
    assert "\x1b[32mclosed\x1b[0m" in styled
    assert "\x1b[33mhalf_open\x1b[0m" in styled
    assert "\x1b[1;31mopen\x1b[0m" in styled
    assert "\x1b[35mparked\x1b[0m" in styled
    assert "\x1b[1;31mfailed\x1b[0m" in styled
    assert "budget \x1b[0m\x1b[31m0\x1b[0m" in styled  # an exhausted restart budget is red


def test_failure_and_empty_system() -> None:
    """A failed tree says why in the header; no services and no events say so."""
    snapshot = SystemSnapshot(
        at=3.0,
        name="app",
        tree=NodeSnapshot(path="app", name="app", kind="supervisor", state="failed"),
        failure="supervisor 'app' gave up",
    )
    text = capture(snapshot, 80)
    assert text.splitlines()[0] == "app  at 3.00s  0 services  FAILED: supervisor 'app' gave up"
    assert "none yet" in text
    assert "\nnone" in text


def test_nothing_received_yet() -> None:
    """Without a snapshot only the header and the status line are shown."""
    assert capture(None, 80, status="connecting...") == "no snapshot yet\nconnecting...\n"


def test_latency_formatting() -> None:
    """Latencies are shown in ms with one decimal below 100 ms, whole ms below 1 s, else in s."""
    text = capture(sample(), 80)
    assert "45.2ms" in text
    assert "820ms" in text
    assert "2.40s" in text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"width": 19}, "`width` must be >= 20 (got 19)"),
        ({"width": 80, "max_events": -1}, "`max_events` must be >= 0 (got -1)"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, int], message: str) -> None:
    """A width below 20 or a negative `max_events` raises ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        render(sample(), **options)  # type: ignore[arg-type]
    assert str(info.value) == message
