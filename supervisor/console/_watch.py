"""The watch view: one service's last minute as sparklines, its breaker's transitions and its
latest events (pure: a snapshot, a history and a width in, a renderable out)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .._errors import ConfigError
from ..observe._snapshot import ServiceSnapshot, SystemSnapshot
from ._collapse import collapse
from ._history import WINDOW, Sample, ServiceHistory
from ._render import (
    _breaker_text,
    _events_table,
    _header,
    _health_text,
    _ms,
    _nodes_by_path,
    _relative,
    _state_text,
    _table,
)

BARS: Final = "▁▂▃▄▅▆▇█"
"""The sparkline's levels, lowest first: a sample is drawn at its share of the window's
maximum; a second with no sample is blank."""

_LABEL: Final = 8


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value: ``BARS`` scaled from 0 to the largest value (all lowest when
    every value is 0), a space for ``None``."""
    top = max((value for value in values if value is not None), default=0.0)
    last = len(BARS) - 1
    return "".join(
        " "
        if value is None
        else BARS[0]
        if top <= 0.0
        else BARS[min(last, max(0, round(value / top * last)))]
        for value in values
    )


def _series(
    samples: Sequence[Sample | None], pick: Callable[[Sample], float]
) -> list[float | None]:
    return [None if sample is None else pick(sample) for sample in samples]


def _percent(value: float) -> str:
    return f"{value * 100.0:.1f}%"


def _rate(value: float) -> str:
    return f"{value:.1f}/s"


def _title(snapshot: SystemSnapshot, service: ServiceSnapshot) -> Text:
    title = Text(no_wrap=True, overflow="ellipsis")
    title.append("Watching ", style="bold")
    title.append(_relative(service.path, snapshot.tree.path), style="bold")
    node = _nodes_by_path(snapshot.tree, {}).get(service.path)
    if node is not None:
        title.append("  ")
        title.append_text(_state_text(node.state))
    title.append("  breaker ", style="dim")
    title.append_text(_breaker_text(service.breaker))
    title.append("  health ", style="dim")
    title.append_text(_health_text(service))
    title.append(f"  in/q {service.in_flight}/{service.queued}", style="dim")
    return title


def _sparklines(history: ServiceHistory, width: int) -> Table:
    wide = width >= 100
    cells = max(1, min(WINDOW, width - _LABEL - 9 - (13 if wide else 0)))
    samples = history.samples()[-cells:]
    lines = Table.grid(padding=(0, 1))
    lines.add_column(width=_LABEL - 1, no_wrap=True)
    lines.add_column(width=cells, no_wrap=True)
    lines.add_column(justify="right", width=8, no_wrap=True)
    if wide:
        lines.add_column(justify="right", width=12, no_wrap=True)
    rows: list[tuple[str, Callable[[Sample], float], Callable[[float], str], str]] = [
        ("calls/s", lambda s: s.calls_per_second, _rate, "cyan"),
        ("p99", lambda s: s.p99, _ms, "yellow"),
        ("errors", lambda s: s.error_rate, _percent, "red"),
    ]
    for label, pick, show, style in rows:
        series = _series(samples, pick)
        known = [value for value in series if value is not None]
        cells_: list[RenderableType] = [
            Text(label, style="dim"),
            Text(sparkline(series), style=style),
            show(known[-1]) if known else "-",
        ]
        if wide:
            cells_.append(Text(f"max {show(max(known))}" if known else "", style="dim"))
        lines.add_row(*cells_)
    axis = Text(f"-{len(samples)}s".ljust(max(1, len(samples) - 3)) + "now", style="dim")
    lines.add_row("", axis)
    return lines


def _transitions(snapshot: SystemSnapshot, history: ServiceHistory) -> Table:
    transitions = _table("Breaker transitions")
    transitions.min_width = len("Breaker transitions")  # the title never wraps
    transitions.add_column("At", justify="right", no_wrap=True)
    transitions.add_column("Change", no_wrap=True, overflow="ellipsis")
    for change in history.transitions:
        transitions.add_row(f"{change.at - snapshot.started_at:.2f}", change.detail)
    if not history.transitions:
        transitions.add_row("", Text("none seen", style="dim"))
    return transitions


def render_watch(
    snapshot: SystemSnapshot | None,
    history: ServiceHistory,
    *,
    width: int,
    height: int | None = None,
    status: str | None = None,
) -> RenderableType:
    """The watch view of ``history``'s service, ``width`` columns wide.

    Under the header: the service's path, state, breaker, health and load; three sparklines of
    the last :data:`~supervisor.console._history.WINDOW` (60) seconds, one character per second
    (calls/s, p99 latency, error rate; the last value beside each, and from 100 columns the
    window's maximum); the breaker's last transitions with their times; the service's latest
    events, collapsed as in :func:`~supervisor.console._render.render`. ``height`` bounds the
    events shown. Narrower than 77 columns, the sparklines show the latest seconds that fit.

    Pure. Raises :class:`~supervisor.ConfigError` when ``width`` is below 20.
    """
    if width < 20:
        raise ConfigError(f"`width` must be >= 20 (got {width})")
    header = _header(snapshot, status)
    if snapshot is None:
        return header
    service = history.current
    if history.problem is not None or service is None or history.path is None:
        problem = history.problem or f"no snapshot of {history.name!r} yet"
        return Group(header, Text(f"watch: {problem}", style="bold yellow"))
    title = _title(snapshot, service)
    lines = _sparklines(history, width)
    transitions = _transitions(snapshot, history)
    events = collapse(event for event in snapshot.events if event.path == service.path)
    count = 5
    if height is not None:
        used = (2 if status else 1) + 1 + 4 + 3 + (len(history.transitions) or 1) + 3
        count = max(1, height - 1 - used)
    latest = _events_table(snapshot, events[-count:], wide=width >= 120)
    latest.title = f"Latest events of {service.path.rpartition('/')[2]}"
    return Group(header, title, lines, transitions, latest)
