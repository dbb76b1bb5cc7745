"""Rendering a snapshot with rich (pure: a snapshot and a width in, a renderable out)."""

from __future__ import annotations

from typing import Final

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree as RichTree

from .._errors import ConfigError
from ..observe._snapshot import NodeSnapshot, ServiceSnapshot, SystemSnapshot
from ._collapse import FOLD_LEVELS, EventRow, Shown, collapse, fold

WIDE: Final = 120
"""From this many columns on, :func:`render` uses the wide layout."""

_COMPACT_EVENTS: Final = 5
_WIDE_EVENTS: Final = 10
MIN_EVENTS: Final = 5
"""Rows the events pane keeps on a terminal of given height: the tree folds to make room."""

# -- rendering (pure) ------------------------------------------------------------------------

_BREAKER_STYLE: Final = {"closed": "green", "half_open": "yellow", "open": "bold red"}
_STATE_STYLE: Final = {
    "running": "green",
    "restarting": "yellow",
    "parked": "magenta",
    "terminated": "dim",
    "failed": "bold red",
}


def _breaker_text(state: str | None) -> Text:
    if state is None:
        return Text("-", style="dim")
    return Text(state, style=_BREAKER_STYLE.get(state, ""))


def _state_text(state: str) -> Text:
    return Text(state, style=_STATE_STYLE.get(state, ""))


def _node_label(node: NodeSnapshot, folded: tuple[str, ...] = ()) -> Text:
    label = Text.assemble((node.name, "bold"), (f" [{node.kind}] ", "dim"), _state_text(node.state))
    label.no_wrap = True
    label.overflow = "ellipsis"
    if node.restart_budget is not None:
        style = "red" if node.restart_budget == 0 else ""
        label.append("  budget ", style="dim")
        label.append(str(node.restart_budget), style=style)
    if node.restarts:
        label.append("  restarts ", style="dim")
        label.append(str(node.restarts), style="yellow")
    if node.breaker is not None:
        label.append("  breaker ", style="dim")
        label.append_text(_breaker_text(node.breaker))
    if folded:
        label.append(f"  +{len(folded)} fine: ", style="dim")
        label.append(", ".join(folded), style="green")
    return label


def _add_children(branch: RichTree, shown: Shown) -> None:
    for child in shown.children:
        _add_children(branch.add(_node_label(child.node, child.folded)), child)


def _tree_view(root: Shown) -> RichTree:
    tree = RichTree(_node_label(root.node, root.folded), guide_style="dim")
    _add_children(tree, root)
    return tree


def legend_line() -> Text:
    """The line that says what the colours mean (breaker states, health, node states)."""
    text = Text("key: ", style="dim", no_wrap=True, overflow="ellipsis")
    for state in ("closed", "half_open", "open"):
        text.append(state, style=_BREAKER_STYLE[state])
        text.append(" ")
    text.append("· health ", style="dim")
    for label, style in (("90+", "green"), ("50+", "yellow"), ("<50", "red")):
        text.append(label, style=style)
        text.append(" ")
    text.append("· ", style="dim")
    text.append_text(
        Text(" ").join(_state_text(state) for state in ("running", "restarting", "parked"))
    )
    return text


def _nodes_by_path(node: NodeSnapshot, into: dict[str, NodeSnapshot]) -> dict[str, NodeSnapshot]:
    into[node.path] = node
    for child in node.children:
        _nodes_by_path(child, into)
    return into


def _ms(value: float) -> str:
    if value >= 1000.0:
        return f"{value / 1000.0:.2f}s"
    if value >= 100.0:
        return f"{value:.0f}ms"
    return f"{value:.1f}ms"


def _health_text(service: ServiceSnapshot) -> Text:
    score = service.health_score
    style = "green" if score >= 90.0 else "yellow" if score >= 50.0 else "red"
    text = Text(f"{score:.0f}", style=style)
    if not service.healthy:
        text.append("!", style="bold red")
    return text


def _error_text(rate: float) -> Text:
    style = "" if rate == 0.0 else "yellow" if rate < 0.1 else "red"
    return Text(f"{rate * 100.0:.1f}%", style=style)


def _relative(path: str, root: str) -> str:
    prefix = f"{root}/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def _table(title: str, *, expand: bool = False) -> Table:
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
        expand=expand,
    )


def _services_table(snapshot: SystemSnapshot, *, width: int) -> Table:
    wide = width >= WIDE
    nodes = _nodes_by_path(snapshot.tree, {})
    table = _table("Services")
    # The fixed columns take 61 (compact) or 100 (wide; 107 with the limit) columns with their
    # separators; the service name gets what is left, so the table fits the width it is given.
    limits = wide and any(service.concurrency_limit is not None for service in snapshot.services)
    name_width = max(8, min(40, width - ((108 if limits else 101) if wide else 66)))
    table.add_column("Service", no_wrap=True, overflow="ellipsis", max_width=name_width)
    table.add_column("State", no_wrap=True)
    if wide:
        table.add_column("Breaker", no_wrap=True)
    table.add_column("Health", justify="right", no_wrap=True)
    table.add_column("In/Q", justify="right", no_wrap=True)
    if limits:
        table.add_column("Limit", justify="right", no_wrap=True)
    table.add_column("Calls/s", justify="right", no_wrap=True)
    table.add_column("p50", justify="right", no_wrap=True)
    table.add_column("p99", justify="right", no_wrap=True)
    table.add_column("Err", justify="right", no_wrap=True)
    table.add_column("Fallbacks" if wide else "Fallbk", justify="right", no_wrap=True)
    if wide:
        table.add_column("Refused", justify="right", no_wrap=True)
        table.add_column("Retries", justify="right", no_wrap=True)
    for service in snapshot.services:
        node = nodes.get(service.path)
        name = _relative(service.path, snapshot.tree.path) if wide else service.path.split("/")[-1]
        state = _state_text(node.state) if node is not None else Text("-", style="dim")
        cells: list[RenderableType] = [name, state]
        if wide:
            cells.append(_breaker_text(service.breaker))
        limit = service.concurrency_limit
        load = f"{service.in_flight}/{service.queued}"
        if not wide and limit is not None:
            load = f"{service.in_flight}({limit})/{service.queued}"
        cells += [_health_text(service), load]
        if limits:
            cells.append(Text("-", style="dim") if limit is None else str(limit))
        cells += [
            f"{service.calls_per_second:.1f}",
            _ms(service.latency.p50),
            _ms(service.latency.p99),
            _error_text(service.error_rate),
            str(sum(service.fallbacks.values())),
        ]
        if wide:
            cells += [str(sum(service.refusals.values())), str(service.retries)]
        table.add_row(*cells)
    if not snapshot.services:
        table.add_row(Text("none", style="dim"))
    return table


def _events_table(snapshot: SystemSnapshot, events: tuple[EventRow, ...], *, wide: bool) -> Table:
    table = _table("Latest events", expand=True)
    wheres = [_relative(event.path, snapshot.tree.path) for event in events]
    if not wide:
        wheres = [where.split("/")[-1] for where in wheres]
    times = [f"{event.at - snapshot.started_at:.2f}" for event in events]
    kinds = [event.kind for event in events]

    def fit(values: list[str], header: str, cap: int) -> int:
        return min(cap, max([len(header), *map(len, values)]))

    table.add_column("At", justify="right", no_wrap=True, width=fit(times, "At", 12))
    table.add_column("Event", no_wrap=True, overflow="ellipsis", width=fit(kinds, "Event", 20))
    table.add_column(
        "Where", no_wrap=True, overflow="ellipsis", width=fit(wheres, "Where", 24 if wide else 12)
    )
    table.add_column("Detail", no_wrap=True, overflow="ellipsis", ratio=1)
    for at, kind, where, event in zip(times, kinds, wheres, events, strict=True):
        detail = event.detail if event.count == 1 else f"{event.count}\u00d7 {event.detail}"
        table.add_row(at, kind, where, detail)
    if not events:
        table.add_row("", "", "", Text("none yet", style="dim"))
    return table


def _header(snapshot: SystemSnapshot | None, status: str | None) -> RenderableType:
    header = Text(no_wrap=True, overflow="ellipsis")
    if snapshot is None:
        header.append("no snapshot yet", style="dim")
    else:
        header.append(snapshot.name, style="bold")
        header.append(f"  at {snapshot.at - snapshot.started_at:.2f}s  ", style="dim")
        header.append(f"{len(snapshot.services)} services")
        if snapshot.failure is not None:
            header.append("  FAILED: ", style="bold red")
            header.append(snapshot.failure, style="red")
    if status is None:
        return header
    return Group(header, Text(status, style="bold yellow", no_wrap=True, overflow="ellipsis"))


def _layout(
    snapshot: SystemSnapshot, height: int | None, *, wide: bool, status: bool, legend: bool
) -> tuple[Shown, int, bool]:
    # The tree as drawn, the events rows and whether the legend fits: the least folding that
    # leaves MIN_EVENTS rows to the events (and, wide, a tree no taller than the events pane).
    if height is None:
        return fold(snapshot.tree, 0), _WIDE_EVENTS if wide else _COMPACT_EVENTS, legend
    header = 2 if status else 1
    services = 3 + (len(snapshot.services) or 1)  # title, head, rule, rows
    events_chrome = 3  # title, head, rule
    room = 0
    for level in range(FOLD_LEVELS):
        shown = fold(snapshot.tree, level)
        tree = shown.lines()
        # One line is left for the cursor; wide: the tree sits beside the events.
        room = height - 1 - header - services - events_chrome - (0 if wide else tree)
        if room >= MIN_EVENTS and (not wide or tree <= room + events_chrome):
            break
    room = max(1, room)
    if legend and room > MIN_EVENTS:
        return shown, room - 1, True
    return shown, room, False


def render(
    snapshot: SystemSnapshot | None,
    *,
    width: int,
    height: int | None = None,
    status: str | None = None,
    max_events: int | None = None,
    legend: bool = False,
) -> RenderableType:
    """The monitor's view of ``snapshot``, laid out for a terminal ``width`` columns wide.

    Below :data:`WIDE` (120) columns the tree, the services table and the latest events are
    stacked, the table shows only the columns that matter (service, state, health, in flight/queued,
    calls/s, p50, p99, errors, fallbacks) and the service column shows the last part of the path;
    a service with an adaptive concurrency limit shows it in brackets after its in-flight count
    (``3(12)/0``). From :data:`WIDE` on, the tree and the events sit side by side above a table
    that adds the breaker, refusals, retries and restarts, and, when a service has an adaptive
    limit, the concurrency limit (``-`` for a fixed bulkhead).
    ``height`` (lines), when given, bounds how many events are shown so that the view fits, and
    when fewer than :data:`MIN_EVENTS` (5) would fit, the tree folds what is fine (see
    :func:`~supervisor.console._collapse.fold`) until they do; with
    no ``height``, 5 (compact) or 10 (wide) and no folding. ``max_events`` overrides the count.
    Repeated events are one row per (kind, where) with their count and the last time (see
    :func:`~supervisor.console._collapse.collapse`). ``legend`` adds the line that says what the
    colours mean (under the header; with a ``height``, only where it leaves the events at least
    6 rows).
    ``status``, when given, is shown under the header (e.g. "disconnected (retrying)").
    ``snapshot=None`` renders only the header and status (nothing received yet).

    Pure: reads no clock, no terminal. Raises :class:`~supervisor.ConfigError` when ``width`` is
    below 20 or ``max_events`` is negative.
    """
    if width < 20:
        raise ConfigError(f"`width` must be >= 20 (got {width})")
    if max_events is not None and max_events < 0:
        raise ConfigError(f"`max_events` must be >= 0 (got {max_events})")
    header = _header(snapshot, status)
    if snapshot is None:
        return header
    wide = width >= WIDE
    shown, count, with_legend = _layout(
        snapshot, height, wide=wide, status=status is not None, legend=legend
    )
    if max_events is not None:
        count = max_events
    rows = collapse(snapshot.events)
    events = rows[-count:] if count else ()
    tree = _tree_view(shown)
    services = _services_table(snapshot, width=width)
    latest = _events_table(snapshot, events, wide=wide)
    top_lines: list[RenderableType] = [header, legend_line()] if with_legend else [header]
    if not wide:
        return Group(*top_lines, tree, services, latest)
    top = Table.grid(padding=(0, 3), expand=True)
    top.add_column(no_wrap=True, overflow="ellipsis", max_width=width // 2)
    top.add_column(ratio=1)
    top.add_row(tree, latest)
    return Group(*top_lines, top, services)
