"""A snapshot source seen over time: connected, stale, disconnected (pure)."""

from __future__ import annotations

import enum

import attrs

from ..observe._snapshot import SystemSnapshot

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
