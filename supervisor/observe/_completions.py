"""The answered requests of one service, written down by the service and counted by the metrics
later, in order.

An answered request is the commonest event of a running tree, and counting it at once (the
service's aggregates, its rate bucket, its latency samples, its health window) touches half a
dozen objects that the actor round trip in between has pushed out of the CPU's caches: measured,
it was the largest part of the metrics' cost per call. So a guarded service whose tree has
metrics does not publish a :class:`~supervisor.observe._events.RequestCompleted` for them (unless
someone else listens on the bus); it appends the request's time, latency and attempts to its
:class:`CompletionLog`, and the metrics count the log's entries in one pass (``drain``):

* before they count any other event of the same service, so each service's events are counted in
  the order they happened (the failure a retry pairs with, the breaker change a success causes);
* before a health check's result of that service is recorded, so its health window sees calls
  and checks in the order they happened;
* before any reading (snapshots, statistics, a service's aggregates or health);
* when the log holds ``limit`` entries.

So every figure read is exactly what counting each event at once would give.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["CompletionLog", "draining"]


class CompletionLog:
    """The answered requests of one service not counted yet (see the module docstring).

    Args:
        drain: counts the log's entries and empties it (:meth:`take`); called by :meth:`add`
            when the log is full, and by the metrics whenever they must be up to date.
        limit: how many entries the log holds before :meth:`add` drains it.
    """

    __slots__ = ("_drain", "ats", "attempts", "latencies", "limit")

    def __init__(self, drain: Callable[[CompletionLog], None], *, limit: int = 256) -> None:
        self._drain = drain
        self.limit = limit
        self.ats: list[float] = []
        """Trio times of the answers, oldest first."""
        self.latencies: list[float] = []
        """Seconds from each call to its answer, retries included."""
        self.attempts: list[int] = []
        """Attempts each call made."""

    def __len__(self) -> int:
        return len(self.ats)

    def add(self, at: float, latency: float, attempts: int) -> None:
        """Write down one answered request (the fields of its ``RequestCompleted``)."""
        ats = self.ats
        ats.append(at)
        self.latencies.append(latency)
        self.attempts.append(attempts)
        if len(ats) >= self.limit:
            self._drain(self)

    def drain(self) -> None:
        """Have the entries counted now (a no-op when there are none)."""
        if self.ats:
            self._drain(self)

    def take(self) -> tuple[list[float], list[float], list[int]]:
        """The entries (times, latencies, attempts), oldest first; the log is empty after."""
        taken = self.ats, self.latencies, self.attempts
        self.ats, self.latencies, self.attempts = [], [], []
        return taken


def draining(check: Callable[[], Any], drain: Callable[[], None]) -> Callable[[], Any]:
    """``check`` (a health check, plain or async) with ``drain()`` right as it ends: an async one
    awaited to its end, also when it is cut off. The tracker records the result next, with no
    checkpoint in between, so the health window sees the service's answered requests and this
    check in the order they happened."""

    def check_then_drain() -> Any:
        try:
            result = check()
        except BaseException:
            drain()
            raise
        if inspect.isawaitable(result):
            return _drained_after(result, drain)
        drain()
        return result

    return check_then_drain


async def _drained_after(awaitable: Awaitable[Any], drain: Callable[[], None]) -> Any:
    try:
        return await awaitable
    finally:
        drain()
