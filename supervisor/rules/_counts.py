"""Counts by name with a bound: the most frequent names, and one bucket for the rest.

Error counters are keyed by exception class name, which the code being guarded chooses: a
dependency that raises a new class per request (``type(f"E{n}", (Exception,), {})``) would
otherwise grow them without end. :class:`TopCounts` keeps at most ``limit`` names plus
:data:`OTHER`.
"""

from __future__ import annotations

from typing import Final

from .._config import COUNT

__all__ = ["ERROR_TYPES_KEPT", "OTHER", "TopCounts"]

ERROR_TYPES_KEPT: Final = 20
"""How many exception type names ``errors_by_type`` keeps (metrics and health alike)."""
OTHER: Final = "other"
"""The key that counts every name beyond the ones kept."""


class TopCounts:
    """Counts by name, holding at most ``limit`` names plus :data:`OTHER` (pure, bounded).

    While fewer than ``limit`` names are held, each new name gets its own count. When a new name
    arrives and ``limit`` names are held, the held name with the smallest count (the oldest of
    equal ones) is folded into :data:`OTHER`, and the new name takes its place with a count of
    1. So the counts always add up to every :meth:`add`; a name held is counted exactly since it
    was last (re)admitted; and names that keep recurring stay, while a stream of one-off names
    only ever churns the smallest slot.

    Raises:
        ConfigError: ``limit`` is not an integer >= 1.
    """

    __slots__ = ("_counts", "_other", "limit")

    def __init__(self, limit: int = ERROR_TYPES_KEPT) -> None:
        self.limit = int(COUNT.check("limit", limit))
        self._counts: dict[str, int] = {}
        self._other = 0

    def add(self, name: str) -> None:
        """Count one more ``name`` (the name :data:`OTHER` itself goes to the bucket)."""
        counts = self._counts
        if name in counts:
            counts[name] += 1
            return
        if name == OTHER:
            self._other += 1
            return
        if len(counts) >= self.limit:
            smallest = min(counts, key=counts.__getitem__)
            self._other += counts.pop(smallest)
        counts[name] = 1

    def __len__(self) -> int:
        """Names held now (not counting :data:`OTHER`)."""
        return len(self._counts)

    def as_dict(self) -> dict[str, int]:
        """The counts, largest first, with :data:`OTHER` last when anything was folded in."""
        ordered = dict(sorted(self._counts.items(), key=lambda item: -item[1]))
        if self._other:
            ordered[OTHER] = self._other
        return ordered

    def __repr__(self) -> str:
        return f"<TopCounts {len(self._counts)}/{self.limit} names, {self._other} other>"
