"""The live monitor: :class:`Monitor`, the thin trio shell over :func:`render` (``_render.py``)
and :class:`Feed` (``_feed.py``).

It asks its source for a snapshot every ``interval`` seconds and redraws, with
``rich.live.Live(auto_refresh=False)`` on a terminal (refreshed from the trio task; rich starts no
refresh thread) or as periodic plain prints elsewhere. :func:`monitor` runs one beside an
application: ``async with supervisor.monitor(tree):``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import AsyncIterator

import attrs
import trio
from rich.console import Console, RenderableType
from rich.live import Live

from .._config import DURATION, QUEUE
from .._errors import ConfigError, shown
from ..observe._snapshot import SystemSnapshot
from ..observe._source import SnapshotSource, SupportsSnapshot, as_snapshot_source
from ._feed import Feed, FeedState
from ._history import ServiceHistory
from ._render import render
from ._watch import render_watch

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


class Monitor:
    """Shows a system's snapshots in a terminal, refreshed every ``interval`` seconds.

    Args:
        source: a running tree (anything with ``snapshot()``) or a callable returning a
            :class:`SystemSnapshot`, directly or as an awaitable (e.g. a fetch over a socket).
        interval: seconds between refreshes, start to start (> 0).
        console: where to draw (default: a new ``rich.console.Console()`` on stdout).
        max_events: events to show (default: as many as fit, see :func:`render`).
        watch: a service (its path, its path below the root, or its name) to show alone: its
            last minute as sparklines, its breaker's transitions and its events (see
            :func:`~supervisor.console._watch.render_watch`); the history is kept in
            :attr:`history`, bounded to the last 60 seconds.

    On a terminal console the view is a ``rich.live.Live(auto_refresh=False)`` redrawn only by
    :meth:`run`'s trio task, so rich starts no thread. On any other console (a pipe, a log file)
    each refresh prints the whole view as plain text, with a rule between views.

    A source that raises an :class:`Exception` does not stop the monitor: the view keeps the last
    snapshot under a "disconnected (retrying)" line and the next refresh asks again.
    ``BaseException``\\ s that are not ``Exception``\\ s (``trio.Cancelled``, ``KeyboardInterrupt``)
    propagate.

    Raises:
        ConfigError: ``interval`` is not a finite number > 0, ``max_events`` < 0, or ``watch``
            is empty.
        TypeError: ``source`` has no ``snapshot()`` and is not callable.
    """

    def __init__(
        self,
        source: SupportsSnapshot | SnapshotSource,
        *,
        interval: float = 1.0,
        console: Console | None = None,
        max_events: int | None = None,
        watch: str | None = None,
    ) -> None:
        if not DURATION.admits(interval):
            raise ConfigError(f"`interval` must be a finite number > 0 (got {shown(interval)})")
        if max_events is not None and not QUEUE.admits(max_events):
            raise ConfigError(f"`max_events` must be >= 0 (got {shown(max_events)})")
        self._source = as_snapshot_source(source)
        self.interval = float(interval)
        self.console = console if console is not None else Console()
        self.max_events = max_events
        self.feed = Feed()
        self.history = None if watch is None else ServiceHistory(watch)
        """The watched service's history (``None`` without ``watch``)."""
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
        console = self.console
        height = console.height if console.is_terminal else None
        status = self.feed.status(now)
        if self.history is not None:
            return render_watch(
                self.feed.snapshot, self.history, width=console.width, height=height, status=status
            )
        return render(
            self.feed.snapshot,
            width=console.width,
            height=height,
            status=status,
            max_events=self.max_events,
            legend=console.is_terminal and console.color_system is not None,
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
        if self.history is not None:
            self.history.record(snapshot)
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
    watch: str | None = None,
) -> AsyncIterator[Monitor]:
    """Show a live monitor beside the running application for the body of ``async with``.

    ``async with supervisor.monitor(tree):`` draws the tree's snapshot every ``interval`` seconds
    (see :class:`Monitor` for ``source``, ``watch``, the terminal and non-terminal behaviour,
    and errors). The first view is drawn before the body starts. Leaving the block (normally, by
    an exception or by cancellation) stops the monitor; the body's exception propagates unchanged.

    Raises:
        ConfigError, TypeError: as :class:`Monitor`, on entry.
    """
    shown = Monitor(source, interval=interval, console=console, max_events=max_events, watch=watch)
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
