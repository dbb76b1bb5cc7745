"""The live monitor: a rich view of a :class:`~supervisor._snapshot.SystemSnapshot`.

Three layers, each usable alone:

- :func:`render` is pure: a snapshot (and an optional status line) in, a rich renderable out. It
  lays the view out for the width it is given: stacked and abbreviated below 120 columns, side by
  side with more columns from 120 on.
- :class:`Feed` is the pure state machine of a snapshot source seen over time (waiting, live,
  disconnected); it takes the current time as an argument.
- :class:`Monitor` is the thin trio shell: it asks its source for a snapshot every ``interval``
  seconds and redraws, with ``rich.live.Live(auto_refresh=False)`` on a terminal (refreshed from the
  trio task; rich starts no refresh thread) or as periodic plain prints elsewhere.
  :func:`monitor` runs one beside an application: ``async with supervisor.monitor(tree):``.
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, Protocol, TypeAlias

import attrs
import trio
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text
from rich.tree import Tree as RichTree

from ._errors import ConfigError
from ._snapshot import EventSnapshot, NodeSnapshot, ServiceSnapshot, SystemSnapshot

__all__ = [
    "WIDE",
    "Feed",
    "FeedState",
    "Monitor",
    "MonitorStatistics",
    "SnapshotSource",
    "SupportsSnapshot",
    "as_snapshot_source",
    "monitor",
    "render",
]

WIDE: Final = 120
"""From this many columns on, :func:`render` uses the wide layout."""

_COMPACT_EVENTS: Final = 5
_WIDE_EVENTS: Final = 10

SnapshotSource: TypeAlias = Callable[[], SystemSnapshot | Awaitable[SystemSnapshot]]
"""A callable returning a snapshot, directly or as an awaitable."""


class SupportsSnapshot(Protocol):
    """Anything with a ``snapshot()`` method (a running tree, for one)."""

    def snapshot(self) -> SystemSnapshot | Awaitable[SystemSnapshot]:
        """The system now."""
        ...


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


def _node_label(node: NodeSnapshot) -> Text:
    label = Text.assemble((node.name, "bold"), (f" [{node.kind}] ", "dim"), _state_text(node.state))
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
    return label


def _add_children(branch: RichTree, node: NodeSnapshot) -> None:
    for child in node.children:
        _add_children(branch.add(_node_label(child)), child)


def _tree_view(root: NodeSnapshot) -> RichTree:
    tree = RichTree(_node_label(root), guide_style="dim")
    _add_children(tree, root)
    return tree


def _nodes_by_path(node: NodeSnapshot, into: dict[str, NodeSnapshot]) -> dict[str, NodeSnapshot]:
    into[node.path] = node
    for child in node.children:
        _nodes_by_path(child, into)
    return into


def _count_nodes(node: NodeSnapshot) -> int:
    return 1 + sum(_count_nodes(child) for child in node.children)


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
    # The fixed columns take 61 (compact) or 100 (wide) columns with their separators; the service
    # name gets what is left, so the table fits the width it is given.
    name_width = max(8, min(40, width - (101 if wide else 66)))
    table.add_column("Service", no_wrap=True, overflow="ellipsis", max_width=name_width)
    table.add_column("State", no_wrap=True)
    if wide:
        table.add_column("Breaker", no_wrap=True)
    table.add_column("Health", justify="right", no_wrap=True)
    table.add_column("In/Q", justify="right", no_wrap=True)
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
        cells += [
            _health_text(service),
            f"{service.in_flight}/{service.queued}",
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


def _events_table(
    snapshot: SystemSnapshot, events: tuple[EventSnapshot, ...], *, wide: bool
) -> Table:
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
        table.add_row(at, kind, where, event.detail)
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


def _events_room(snapshot: SystemSnapshot, height: int | None, *, wide: bool, status: bool) -> int:
    if height is None:
        return _WIDE_EVENTS if wide else _COMPACT_EVENTS
    header = 2 if status else 1
    services = 3 + (len(snapshot.services) or 1)  # title, head, rule, rows
    events_chrome = 3  # title, head, rule
    tree = 0 if wide else _count_nodes(snapshot.tree)  # wide: the tree sits beside the events
    room = height - 1 - header - services - events_chrome - tree  # one line left for the cursor
    return max(1, room)


def render(
    snapshot: SystemSnapshot | None,
    *,
    width: int,
    height: int | None = None,
    status: str | None = None,
    max_events: int | None = None,
) -> RenderableType:
    """The monitor's view of ``snapshot``, laid out for a terminal ``width`` columns wide.

    Below :data:`WIDE` (120) columns the tree, the services table and the latest events are
    stacked, the table shows only the columns that matter (service, state, health, in flight/queued,
    calls/s, p50, p99, errors, fallbacks) and the service column shows the last part of the path.
    From :data:`WIDE` on, the tree and the events sit side by side above a table that adds the
    breaker, refusals, retries and restarts. ``height`` (lines), when given, bounds how many events
    are shown so that the view fits; else 5 (compact) or 10 (wide). ``max_events`` overrides both.
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
    count = max_events
    if count is None:
        count = _events_room(snapshot, height, wide=wide, status=status is not None)
    events = snapshot.events[-count:] if count else ()
    tree = _tree_view(snapshot.tree)
    services = _services_table(snapshot, width=width)
    latest = _events_table(snapshot, events, wide=wide)
    if not wide:
        return Group(header, tree, services, latest)
    top = Table.grid(padding=(0, 3), expand=True)
    top.add_column(no_wrap=True, overflow="ellipsis", max_width=width // 2)
    top.add_column(ratio=1)
    top.add_row(tree, latest)
    return Group(header, top, services)


# -- the feed: a source seen over time (pure) -----------------------------------------------


class FeedState(enum.Enum):
    """Where a monitor's feed of snapshots stands."""

    WAITING = "waiting"
    """Nothing asked yet."""
    LIVE = "live"
    """The last request returned a snapshot."""
    DISCONNECTED = "disconnected"
    """The last request failed; the monitor keeps asking every interval."""


@attrs.define
class Feed:
    """The pure state machine behind a monitor: what the last requests for a snapshot gave.

    Every request ends in :meth:`on_snapshot` or :meth:`on_failure`, each given the current time.
    A failure keeps the last good snapshot (shown dimmed behind a "disconnected (retrying)" line);
    the next success makes the feed live again. Never reads a clock.
    """

    state: FeedState = FeedState.WAITING
    """Where it stands."""
    snapshot: SystemSnapshot | None = None
    """The last snapshot received, kept across failures."""
    received_at: float | None = None
    """When it was received."""
    error: str | None = None
    """Why the last request failed (``None`` while live)."""
    failures: int = 0
    """Failed requests in a row (0 while live)."""
    disconnected_since: float | None = None
    """When the current run of failures began."""
    received: int = 0
    """Snapshots received in total."""
    failed: int = 0
    """Failed requests in total."""

    def on_snapshot(self, snapshot: SystemSnapshot, now: float) -> FeedState:
        """A request returned ``snapshot`` at ``now``: the feed is live."""
        self.state = FeedState.LIVE
        self.snapshot = snapshot
        self.received_at = now
        self.error = None
        self.failures = 0
        self.disconnected_since = None
        self.received += 1
        return self.state

    def on_failure(self, reason: str, now: float) -> FeedState:
        """A request failed at ``now`` because of ``reason``: the feed is disconnected."""
        if self.state is not FeedState.DISCONNECTED:
            self.disconnected_since = now
        self.state = FeedState.DISCONNECTED
        self.error = reason
        self.failures += 1
        self.failed += 1
        return self.state

    def status(self, now: float) -> str | None:
        """The status line to show at ``now``: ``None`` while live."""
        if self.state is FeedState.LIVE:
            return None
        if self.state is FeedState.WAITING:
            return "connecting..."
        since = self.disconnected_since if self.disconnected_since is not None else now
        line = f"disconnected (retrying) for {max(0.0, now - since):.1f}s: {self.error}"
        if self.received_at is not None:
            line += f"; showing the snapshot of {self.received_at:.2f}s"
        return line


# -- the trio shell --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MonitorStatistics:
    """A snapshot of a :class:`Monitor`."""

    state: FeedState
    """Where its feed stands."""
    refreshes: int
    """Views drawn."""
    received: int
    """Snapshots received."""
    failed: int
    """Requests for a snapshot that failed."""
    live: bool
    """Whether it draws with ``rich.live.Live`` (a terminal) rather than plain prints."""


def as_snapshot_source(source: SupportsSnapshot | SnapshotSource) -> SnapshotSource:
    """The callable behind ``source``: its ``snapshot`` method if it has one, else ``source``.

    Raises:
        TypeError: ``source`` has no ``snapshot()`` and is not callable.
    """
    method = getattr(source, "snapshot", None)
    if callable(method):
        return method  # type: ignore[no-any-return]
    if callable(source):
        return source
    raise TypeError(
        f"`source` must have a snapshot() method or be callable (got {type(source).__name__})"
    )


class Monitor:
    """Shows a system's snapshots in a terminal, refreshed every ``interval`` seconds.

    Args:
        source: a running tree (anything with ``snapshot()``) or a callable returning a
            :class:`SystemSnapshot`, directly or as an awaitable (e.g. a fetch over a socket).
        interval: seconds between refreshes, start to start (> 0).
        console: where to draw (default: a new ``rich.console.Console()`` on stdout).
        max_events: events to show (default: as many as fit, see :func:`render`).

    On a terminal console the view is a ``rich.live.Live(auto_refresh=False)`` redrawn only by
    :meth:`run`'s trio task, so rich starts no thread. On any other console (a pipe, a log file)
    each refresh prints the whole view as plain text, with a rule between views.

    A source that raises an :class:`Exception` does not stop the monitor: the view keeps the last
    snapshot under a "disconnected (retrying)" line and the next refresh asks again.
    ``BaseException``\\ s that are not ``Exception``\\ s (``trio.Cancelled``, ``KeyboardInterrupt``)
    propagate.

    Raises:
        ConfigError: ``interval`` is not a finite number > 0, or ``max_events`` < 0.
        TypeError: ``source`` has no ``snapshot()`` and is not callable.
    """

    def __init__(
        self,
        source: SupportsSnapshot | SnapshotSource,
        *,
        interval: float = 1.0,
        console: Console | None = None,
        max_events: int | None = None,
    ) -> None:
        if not (isinstance(interval, int | float) and math.isfinite(interval) and interval > 0):
            raise ConfigError(f"`interval` must be a finite number > 0 (got {interval!r})")
        if max_events is not None and max_events < 0:
            raise ConfigError(f"`max_events` must be >= 0 (got {max_events})")
        self._source = as_snapshot_source(source)
        self.interval = float(interval)
        self.console = console if console is not None else Console()
        self.max_events = max_events
        self.feed = Feed()
        self._refreshes = 0
        self._live: Live | None = None

    def __repr__(self) -> str:
        return (
            f"<Monitor {self.feed.state.value}, every {self.interval}s, "
            f"{self.feed.received} snapshots, {self.feed.failed} failed>"
        )

    def statistics(self) -> MonitorStatistics:
        """Where the feed stands and how many views, snapshots and failures there were."""
        return MonitorStatistics(
            state=self.feed.state,
            refreshes=self._refreshes,
            received=self.feed.received,
            failed=self.feed.failed,
            live=self.console.is_terminal,
        )

    def view(self) -> RenderableType:
        """The current view (what the next draw shows), at the console's size."""
        now = trio.current_time()
        height = self.console.height if self.console.is_terminal else None
        return render(
            self.feed.snapshot,
            width=self.console.width,
            height=height,
            status=self.feed.status(now),
            max_events=self.max_events,
        )

    async def poll(self) -> FeedState:
        """Ask the source for one snapshot and record the outcome in :attr:`feed` (no drawing).

        An ``Exception`` from the source is recorded as a failure, not raised. Cancellation
        propagates and records nothing.
        """
        try:
            result = self._source()
            snapshot = await result if inspect.isawaitable(result) else result
        except Exception as exc:  # a source failure is shown, never fatal to the app it watches
            return self.feed.on_failure(_describe(exc), trio.current_time())
        if not isinstance(snapshot, SystemSnapshot):
            reason = f"the source returned {type(snapshot).__name__}, not a SystemSnapshot"
            return self.feed.on_failure(reason, trio.current_time())
        return self.feed.on_snapshot(snapshot, trio.current_time())

    def draw(self) -> None:
        """Draw the current view once: update the live display, or print it (non-terminal)."""
        self._refreshes += 1
        if self._live is not None:
            self._live.update(self.view(), refresh=True)
        else:
            if self._refreshes > 1:
                self.console.rule(style="dim")
            self.console.print(self.view())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Poll and draw every ``interval`` seconds (start to start) until cancelled.

        Reports started (for ``nursery.start``) once the first view is drawn. A refresh that
        falls behind skips the missed ticks instead of bunching them. On cancellation the live
        display is stopped (its last view stays on screen) and ``Cancelled`` propagates.
        """
        with contextlib.ExitStack() as stack:
            if self.console.is_terminal:
                self._live = stack.enter_context(
                    Live(console=self.console, auto_refresh=False, transient=False)
                )
                stack.callback(setattr, self, "_live", None)
            next_at = trio.current_time()
            await self.poll()
            self.draw()
            task_status.started()
            while True:
                next_at += self.interval
                now = trio.current_time()
                if next_at < now:
                    next_at += math.ceil((now - next_at) / self.interval) * self.interval
                await trio.sleep_until(next_at)
                await self.poll()
                self.draw()


def _describe(exc: Exception) -> str:
    text = str(exc)
    return text if text else type(exc).__name__


@contextlib.asynccontextmanager
async def monitor(
    source: SupportsSnapshot | SnapshotSource,
    *,
    interval: float = 1.0,
    console: Console | None = None,
    max_events: int | None = None,
) -> AsyncIterator[Monitor]:
    """Show a live monitor beside the running application for the body of ``async with``.

    ``async with supervisor.monitor(tree):`` draws the tree's snapshot every ``interval`` seconds
    (see :class:`Monitor` for ``source``, the terminal and non-terminal behaviour, and errors).
    The first view is drawn before the body starts. Leaving the block (normally, by an exception
    or by cancellation) stops the monitor; the body's exception propagates unchanged.

    Raises:
        ConfigError, TypeError: as :class:`Monitor`, on entry.
    """
    shown = Monitor(source, interval=interval, console=console, max_events=max_events)
    body_error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(shown.run)
        try:
            yield shown
        except BaseException as exc:  # re-raised below, as is, once the monitor has stopped
            body_error = exc
        finally:
            nursery.cancel_scope.cancel()
    if body_error is not None:
        raise body_error
