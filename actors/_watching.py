"""Watching: which cells watch which, and the ``Down`` a stopped cell sends its watchers.

The watch state belongs to the cell's slot, so it survives a restart of either side; each part
is made on first use, to keep an idle actor small:

- ``cell._watchers``: the cells to tell when ``cell`` stops (a dict used as an ordered set);
- ``cell._watching``: the cells ``cell`` watches, so that its own stop leaves their lists;
- ``cell._system_lane``: the ``Down`` messages not yet served; the run loops (``_cell.py``,
  ``_pool.py``) serve it before the mailbox, so a ``Down`` never queues behind user messages.

These functions take the cell and run on the cold paths only (a watch, an unwatch, a stop); the
run loops read ``cell._system_lane`` themselves.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

from ._messages import ActorState, Down

if TYPE_CHECKING:
    from ._cell import Cell

__all__ = ["deliver_down", "end_watches", "unwatch", "watch"]


def watch(cell: Cell[Any], target: Cell[Any]) -> None:
    """Make ``cell`` a watcher of ``target`` (see ``ActorContext.watch``)."""
    if target.state is ActorState.STOPPED:
        deliver_down(cell, Down(ref=target.ref, reason=target._stop_reason))
        return
    if target._watchers is None:
        target._watchers = {}
    target._watchers[cell] = None
    if cell._watching is None:
        cell._watching = {}
    cell._watching[target] = None


def unwatch(cell: Cell[Any], target: Cell[Any]) -> None:
    """Stop ``cell`` watching ``target``; drop its undelivered ``Down``."""
    if target._watchers is not None:
        target._watchers.pop(cell, None)
    if cell._watching is not None:
        cell._watching.pop(target, None)
    lane = cell._system_lane
    if lane:
        cell._system_lane = collections.deque(d for d in lane if d.ref is not target.ref)


def deliver_down(cell: Cell[Any], down: Down) -> None:
    """Put ``down`` on ``cell``'s system lane (served before user messages)."""
    if cell.state is ActorState.STOPPED:
        return
    if cell._system_lane is None:
        cell._system_lane = collections.deque()
    cell._system_lane.append(down)
    cell._wake()


def end_watches(cell: Cell[Any], reason: BaseException | None) -> None:
    """``cell`` has stopped with ``reason``: leave the lists of the cells it watched, and give
    each of its watchers ``Down(ref, reason)``."""
    if cell._watching:
        for target in cell._watching:
            if target._watchers is not None:
                target._watchers.pop(cell, None)
        cell._watching = None
    if cell._watchers:
        down = Down(ref=cell.ref, reason=reason)
        watchers, cell._watchers = cell._watchers, None
        for watcher in watchers:
            deliver_down(watcher, down)
