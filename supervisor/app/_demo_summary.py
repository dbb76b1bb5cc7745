"""The demo's end-of-run summary."""

from __future__ import annotations

from typing import Final

import attrs
from rich import box
from rich.table import Table

# -- the summary -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ServiceSummary:
    """What one service went through during a demo run."""

    path: str
    """The service's path, e.g. ``"app/backend/db"``."""
    calls: int
    """Calls the demo's callers made."""
    ok: int
    """Calls the service answered."""
    failed: int
    """Calls whose last attempt failed (the fallback may then have answered)."""
    refused: int
    """Calls refused by the breaker or the bulkhead (the fallback may then have answered)."""
    fallbacks: int
    """Calls answered by the fallback."""
    retries: int
    """Retries scheduled."""
    restarts: int
    """Restarts of the service actor by its supervisor."""
    breaker_opens: int
    """Times its breaker opened."""
    breaker: str
    """The breaker's state at the end."""
    state: str
    """The child's state at the end (``running``, ``parked``, ...)."""
    health: float
    """Its health score (0 to 100) at the end."""


@attrs.frozen(kw_only=True)
class DemoSummary:
    """The outcome of :func:`run_demo`."""

    seed: int
    """The seed of the run."""
    duration: float
    """Seconds the callers ran."""
    services: tuple[ServiceSummary, ...]
    """One row per service, in tree order."""
    interrupted: bool = False
    """Whether the run was cut short (Ctrl-C)."""


def _at_the_end(summary: DemoSummary) -> str:
    # The caption of the compact table: the services not running with a closed breaker.
    odd = [
        f"{row.path.rpartition('/')[2]} {row.state}, breaker {row.breaker}"
        for row in summary.services
        if row.state != "running" or row.breaker not in ("closed", "-")
    ]
    if not odd:
        return "at the end every service was running, its breaker closed"
    return "at the end: " + "; ".join(odd)


def summary_table(summary: DemoSummary, *, width: int | None = None) -> Table:
    """The summary as a rich table: one row per service.

    From :data:`_TABLE_WIDTH` (100) columns on (or with no ``width``), every column; narrower
    (down to 80 columns), the breaker's and the child's state at the end leave the table for its
    caption, which names the services that did not end running with a closed breaker.
    """
    compact = width is not None and width < _TABLE_WIDTH
    title = f"summary: seed {summary.seed}, {summary.duration:g}s"
    if summary.interrupted:
        title += " (interrupted)"
    # The service's name only (the tree is in the title), one space between columns, no padding.
    table = Table(
        title=title,
        caption=_at_the_end(summary) if compact else None,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        show_edge=False,
        padding=0,
    )
    table.add_column("service", no_wrap=True)
    for header in ("calls", "ok", "failed", "refused", "fallbacks", "retries", "restarts", "opens"):
        table.add_column(header, justify="right", no_wrap=True)
    if not compact:
        table.add_column("breaker", no_wrap=True)
        table.add_column("state", no_wrap=True)
    table.add_column("health", justify="right", no_wrap=True)
    for row in summary.services:
        counts = (
            row.calls,
            row.ok,
            row.failed,
            row.refused,
            row.fallbacks,
            row.retries,
            row.restarts,
            row.breaker_opens,
        )
        ends = () if compact else (row.breaker, row.state)
        table.add_row(
            row.path.rpartition("/")[2],
            *(str(value) for value in counts),
            *ends,
            f"{row.health:.0f}",
        )
    return table


_TABLE_WIDTH: Final = 100
"""Columns the whole summary table needs; a narrower console gets the compact one."""


def summary_lines(summary: DemoSummary) -> list[str]:
    """The summary as one line of text per service (for logs)."""
    lines = [
        f"summary: seed {summary.seed}, {summary.duration:g}s"
        + (" (interrupted)" if summary.interrupted else "")
    ]
    for row in summary.services:
        lines.append(
            f"  {row.path.rpartition('/')[2]}: {row.calls} calls, {row.ok} ok, "
            f"{row.failed} failed, {row.refused} refused, {row.fallbacks} fallbacks, "
            f"{row.retries} retries, {row.restarts} restarts, {row.breaker_opens} opens; "
            f"breaker {row.breaker}, {row.state}, health {row.health:.0f}"
        )
    return lines
