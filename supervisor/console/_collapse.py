"""Repeated events collapsed into one row per (kind, where), and the supervision tree folded where
all is fine: what lets the latest events keep their room on a small terminal (pure)."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ..observe._snapshot import EventSnapshot, NodeSnapshot

# -- repeats ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class EventRow:
    """One row of the events pane: the events of one kind at one place, collapsed."""

    kind: str
    """The events' class name."""
    path: str
    """Where they happened."""
    at: float
    """Trio time of the last of them."""
    detail: str
    """The last one's detail."""
    count: int = 1
    """How many there were (among the events the snapshot keeps)."""
    first_at: float = 0.0
    """Trio time of the first of them."""


def collapse(events: Iterable[EventSnapshot]) -> tuple[EventRow, ...]:
    """``events`` (oldest first) as rows, one per ``(kind, path)``: the count, the last time and
    the last detail of its events, whatever came between them; rows are ordered by their last
    event, oldest first (so a row moves down when its kind happens again)."""
    rows: dict[tuple[str, str], EventRow] = {}
    for event in events:
        key = (event.kind, event.path)
        row = rows.pop(key, None)
        rows[key] = EventRow(
            kind=event.kind,
            path=event.path,
            at=event.at,
            detail=event.detail,
            count=1 if row is None else row.count + 1,
            first_at=event.at if row is None else row.first_at,
        )
    return tuple(rows.values())


# -- folding the tree --------------------------------------------------------------------------


def is_fine(node: NodeSnapshot) -> bool:
    """Running, its breaker (if any) closed, and for a supervisor every child fine too."""
    if node.state != "running" or node.breaker not in (None, "closed"):
        return False
    return all(is_fine(child) for child in node.children)


@attrs.frozen(kw_only=True)
class Shown:
    """A node of the tree as drawn: its children drawn, and the fine ones folded into it."""

    node: NodeSnapshot
    children: tuple[Shown, ...] = ()
    folded: tuple[str, ...] = ()
    """Names of the children not drawn (each fine, with its whole subtree)."""

    def lines(self) -> int:
        """Lines this node and its drawn descendants take."""
        return 1 + sum(child.lines() for child in self.children)


FOLD_LEVELS = 4
"""Fold levels: 0 draws every node; 1 draws a supervisor whose whole subtree is fine as one line;
2 also folds every fine leaf child into its supervisor's line; 3 folds every fine child."""


def fold(node: NodeSnapshot, level: int) -> Shown:
    """The tree of ``node`` as drawn at fold ``level`` (see :data:`FOLD_LEVELS`); ``node`` and
    its children are always drawn, except that level 3 folds its fine children too. A folded
    child's name is listed on its parent's line."""
    return _fold(node, level, root=True)


def _fold(node: NodeSnapshot, level: int, *, root: bool) -> Shown:
    if level >= 1 and not root and node.children and is_fine(node):
        return Shown(node=node, folded=tuple(child.name for child in node.children))
    children: list[Shown] = []
    folded: list[str] = []
    for child in node.children:
        if is_fine(child) and (level >= 3 or (level >= 2 and not child.children)):
            folded.append(child.name)
        else:
            children.append(_fold(child, level, root=False))
    return Shown(node=node, children=tuple(children), folded=tuple(folded))
