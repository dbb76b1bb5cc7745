"""Where snapshots come from: a tree (anything with ``snapshot()``) or a callable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeAlias

from ._snapshot import SystemSnapshot

SnapshotSource: TypeAlias = Callable[[], SystemSnapshot | Awaitable[SystemSnapshot]]
"""A callable returning a snapshot, directly or as an awaitable."""


class SupportsSnapshot(Protocol):
    """Anything with a ``snapshot()`` method (a running tree, for one)."""

    def snapshot(self) -> SystemSnapshot | Awaitable[SystemSnapshot]:
        """The system now."""
        ...


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
