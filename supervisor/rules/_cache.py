"""The cache behind ``cache_fallback`` and a service's cache fallback: TTL and LRU, pure."""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

import attrs

from .._config import COUNT, DURATION

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
# --------------------------------------------------------------------------------------------------
# cache_fallback


class _Miss(enum.Enum):
    MISS = "MISS"


MISS = _Miss.MISS
"""Returned by :meth:`TtlLruCache.get` when no fresh value is stored."""


class TtlLruCache(Generic[K, V]):
    """Pure cache of at most ``maxsize`` values, each served while at most ``ttl`` seconds old.

    A value stored at time ``t`` is served by :meth:`get` at every ``now <= t + ttl`` (a value
    exactly ``ttl`` old is still served) and dropped at the first :meth:`get` after that. When a
    :meth:`put` would exceed ``maxsize``, the least recently used entry goes first; both
    :meth:`get` (a hit) and :meth:`put` count as a use. Nothing here reads a clock.
    """

    __slots__ = ("_entries", "expired", "hits", "maxsize", "misses", "ttl")

    def __init__(self, ttl: float, maxsize: int) -> None:
        self.ttl = float(DURATION.check("ttl", ttl))
        self.maxsize = int(COUNT.check("maxsize", maxsize))
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[K]:
        """The stored keys, least recently used first (expired ones included until read)."""
        return list(self._entries)

    def get(self, key: K, now: float) -> V | _Miss:
        """The value stored under ``key`` if at most ``ttl`` old at ``now``, else :data:`MISS`."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return MISS
        value, stored_at = entry
        if now > stored_at + self.ttl:
            del self._entries[key]
            self.expired += 1
            self.misses += 1
            return MISS
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: K, value: V, now: float) -> K | None:
        """Store ``value`` under ``key`` at time ``now``; return the key evicted, if any."""
        entries = self._entries
        entries[key] = (value, now)
        entries.move_to_end(key)
        if len(entries) > self.maxsize:
            evicted, _ = entries.popitem(last=False)
            return evicted
        return None

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()

    def __repr__(self) -> str:
        return f"<TtlLruCache {len(self._entries)}/{self.maxsize} entries, ttl={self.ttl}s>"


@attrs.frozen(kw_only=True)
class CacheStatistics:
    """A snapshot of the cache behind one function decorated with :func:`cache_fallback`."""

    size: int
    """Entries stored."""
    maxsize: int
    """At most this many entries."""
    ttl: float
    """Seconds a value stays servable."""
    served: int
    """Failures answered from the cache so far."""
    missed: int
    """Failures re-raised because no fresh value was stored."""
