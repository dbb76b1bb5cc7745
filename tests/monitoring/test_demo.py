"""The demo program: it runs its chaos schedule, prints a summary per service, and is repeatable.

The core runs under trio's MockClock (every wait is a trio sleep), so 20 seconds of demo take a
fraction of a second; the command line is run once as a user would, on the real clock.
"""

from __future__ import annotations

import io
import pathlib
import subprocess
import sys

import pytest
import trio
import trio.testing
from rich.console import Console

from supervisor.app._demo import main, run_demo
from supervisor.app._demo_summary import DemoSummary, ServiceSummary, summary_table

SERVICES = ("api-gateway", "auth", "db", "cache", "payments", "search")
COLUMNS = ("calls", "ok", "failed", "refused", "fallbacks", "retries", "restarts", "opens")


def _run(duration: float, seed: int) -> tuple[DemoSummary, str]:
    output = io.StringIO()
    console = Console(file=output, width=160)
    clock = trio.testing.MockClock(autojump_threshold=0)
    summary = trio.run(run_demo, duration, seed, console, False, clock=clock)
    return summary, output.getvalue()


@pytest.fixture(scope="module")
def twice() -> tuple[tuple[DemoSummary, str], tuple[DemoSummary, str]]:
    """Two 10-second runs with seed 7, on the mock clock."""
    return _run(10.0, 7), _run(10.0, 7)


def test_summary_table_has_a_row_per_service(
    twice: tuple[tuple[DemoSummary, str], tuple[DemoSummary, str]],
) -> None:
    """The printed summary table has its header and one row per service with its numbers."""
    summary, text = twice[0]
    lines = text.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("summary: seed 7, 10s"))
    header = lines[title + 1].split()
    assert header == ["service", *COLUMNS, "breaker", "state", "health"]
    assert set(lines[title + 2].strip()) == {"─"}
    rows = {line.split()[0]: line.split() for line in lines[title + 3 : title + 9]}
    assert tuple(rows) == SERVICES
    for row in summary.services:
        name = row.path.rpartition("/")[2]
        expected = [
            str(row.calls),
            str(row.ok),
            str(row.failed),
            str(row.refused),
            str(row.fallbacks),
            str(row.retries),
            str(row.restarts),
            str(row.breaker_opens),
            row.breaker,
            row.state,
            f"{row.health:.0f}",
        ]
        assert rows[name][1:] == expected


def test_the_summary_fits_80_columns(
    twice: tuple[tuple[DemoSummary, str], tuple[DemoSummary, str]],
) -> None:
    """At 80 columns the summary is a table of the counts and health, no wider than 80, with a
    caption for how the services ended."""
    summary, _ = twice[0]
    console = Console(width=80, record=True, color_system=None, file=io.StringIO())
    console.print(summary_table(summary, width=80))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].startswith("summary: seed 7, 10s")
    assert lines[1].split() == ["service", *COLUMNS, "health"]
    rows = [line.split() for line in lines[3:9]]
    assert [row[0] for row in rows] == list(SERVICES)
    for row, service in zip(rows, summary.services, strict=True):
        assert row[1:] == [
            str(value)
            for value in (
                service.calls,
                service.ok,
                service.failed,
                service.refused,
                service.fallbacks,
                service.retries,
                service.restarts,
                service.breaker_opens,
                f"{service.health:.0f}",
            )
        ]
    assert lines[9].startswith("at the end")


def test_the_show_happens(
    twice: tuple[tuple[DemoSummary, str], tuple[DemoSummary, str]],
) -> None:
    """Breakers open and close, fallbacks answer, retries and restarts happen, the bulkhead
    refuses the surge, and every call ends as answered, failed or refused."""
    summary, text = twice[0]
    assert not summary.interrupted
    rows = {row.path.rpartition("/")[2]: row for row in summary.services}
    assert len(rows) == 6
    for row in summary.services:
        assert row.calls == row.ok + row.failed + row.refused
        assert row.breaker == "closed"
        assert row.state == "running"
    assert rows["db"].breaker_opens >= 1
    assert rows["search"].breaker_opens >= 1
    assert rows["payments"].breaker_opens >= 1
    assert rows["payments"].fallbacks >= 1
    assert rows["api-gateway"].refused >= 20  # the surge met a full bulkhead
    assert rows["auth"].restarts >= 1
    assert rows["cache"].restarts >= 1  # restarted with db: rest_for_one
    assert sum(row.retries for row in summary.services) >= 1
    for expected in (
        "chaos failure burst: db",
        "chaos latency spike: search",
        "chaos outage: payments",
        "chaos crash loop: auth",
        "chaos traffic surge: api-gateway",
        "breaker open: db (failure_rate)",  # db's breaker decides on the rate of a window
        "retry budget spent: db",  # and db's retries stay within its retry budget
        "breaker closed: db",
        "restarted db on probation",
        "crashed frontend/auth: auth: cannot load its configuration",
        "restarted cache after",
        "-- snapshot at 3.3s --",
    ):
        assert expected in text


def test_same_seed_same_summary(
    twice: tuple[tuple[DemoSummary, str], tuple[DemoSummary, str]],
) -> None:
    """Two runs with the same seed on the mock clock give the same summary and the same text."""
    (first, first_text), (second, second_text) = twice
    assert first == second
    assert first_text == second_text


def test_another_seed_another_show() -> None:
    """A different seed draws different latencies and errors."""
    first, _ = _run(2.0, 1)
    second, _ = _run(2.0, 2)
    assert first.services != second.services


def test_bad_duration_is_refused() -> None:
    """A duration that is not a finite number > 0 raises ValueError naming it."""
    with pytest.raises(ValueError, match=r"`duration` must be a finite number > 0 \(got 0\)"):
        trio.run(run_demo, 0, 1, Console(file=io.StringIO()), False)


def test_main_runs_on_the_real_clock(capsys: pytest.CaptureFixture[str]) -> None:
    """``main`` with a short duration and --plain exits 0 and prints the summary and the seed."""
    assert main(["--duration", "0.2", "--seed", "5", "--plain"]) == 0
    out = capsys.readouterr().out
    assert "summary: seed 5, 0.2s" in out
    for name in SERVICES:
        assert f"\n{name} " in out
    assert "run it again with --seed 5" in out


def test_main_rejects_a_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --duration is a usage error (exit code 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--duration", "-1"])
    assert exit_info.value.code == 2
    assert "--duration: must be > 0" in capsys.readouterr().err


@pytest.mark.skipif(
    not (pathlib.Path(__file__).parents[2] / "supervisor" / "__main__.py").exists(),
    reason="the command line (supervisor/__main__.py) is not there",
)
def test_command_line_demo() -> None:
    """``python -m supervisor demo --duration 2 --seed 1`` (not a terminal) exits 0, prints
    plain snapshots and the summary."""
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", "demo", "--duration", "2", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "-- snapshot at" in result.stdout
    assert "summary: seed 1, 2s" in result.stdout
    title = result.stdout.index("summary: seed 1, 2s")
    for name in SERVICES:
        assert f"\n{name} " in result.stdout[title:]
    for column in COLUMNS:
        assert f" {column} " in result.stdout[title:]  # wide enough: no header is cut short


def test_the_compact_summary_names_services_that_did_not_end_well() -> None:
    """The 80-column caption lists each service not running with a closed breaker at the end."""

    def row(name: str, state: str, breaker: str) -> ServiceSummary:
        return ServiceSummary(
            path=f"app/backend/{name}",
            calls=1,
            ok=1,
            failed=0,
            refused=0,
            fallbacks=0,
            retries=0,
            restarts=0,
            breaker_opens=0,
            breaker=breaker,
            state=state,
            health=100.0,
        )

    summary = DemoSummary(
        seed=1,
        duration=5.0,
        services=(row("db", "running", "closed"), row("payments", "parked", "open")),
    )
    console = Console(width=80, record=True, color_system=None, file=io.StringIO())
    console.print(summary_table(summary, width=80))
    assert console.export_text().splitlines()[-1].rstrip() == (
        "at the end: payments parked, breaker open"
    )
