"""A guarded service's refusals, published per streak.

A refusal (by the throttle, the breaker or the bulkhead, on the caller's side) is counted at once,
but its :class:`~supervisor.observe._events.RequestRefused` event is published per *streak*: the
first refusal of a streak at once (``count`` 1), the streak's further refusals as one event with
their ``count`` when the streak ends. A streak is refusals of one service by one rule within one
rate bucket of the tree's metrics (``span`` seconds), with no other event of that service in
between; so the sum of ``count`` over the events is exact, and so is every rate computed from
them. The service ends the streak before it publishes any other event of its own, when its
statistics are read, and when the breaker changes state. See docs/monitoring.md.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..observe._events import Refusal, RequestRefused

if TYPE_CHECKING:
    from ..observe._bus import EventBus

__all__ = ["RefusalStreak"]


class RefusalStreak:
    """The refusals of one service: their total, and the streak going on (if any).

    Args:
        bus: where the ``RequestRefused`` events go.
        path: the service's path (the events' ``path``).
        span: seconds per rate bucket of the tree's metrics (no streak spans two buckets).
    """

    __slots__ = (
        "_at",
        "_bus",
        "_count",
        "_key",
        "_path",
        "_retry_after",
        "_since",
        "rule",
        "span",
        "total",
    )

    def __init__(self, bus: EventBus[Any], path: str, *, span: float = 1.0) -> None:
        self._bus = bus
        self._path = path
        self.total = 0
        """Refusals counted, over the service's life."""
        self.span = span
        self.rule: Refusal | None = None
        """The rule of the streak going on, or ``None`` outside a streak (read on hot paths:
        ``if streak.rule is not None: streak.end()``)."""
        self._key = 0  # the bucket of the streak
        self._count = 0  # refusals of the streak not published yet
        self._since = 0.0
        self._at = 0.0
        self._retry_after = 0.0

    def count(self, rule: Refusal, now: float, retry_after: float) -> None:
        """One refusal by ``rule`` at ``now``: counted in the streak going on, or published as the
        first of a new streak (ending the one going on first)."""
        self.total += 1
        key = math.floor(now / self.span)  # the metrics' bucket of ``now``
        if rule is self.rule and key == self._key:
            count = self._count
            if not count:
                self._since = now
            self._count = count + 1
            self._at = now
            self._retry_after = retry_after
            return
        if self.rule is not None:
            self.end()
        self.rule = rule
        self._key = key
        self._bus.publish(
            RequestRefused(path=self._path, at=now, refusal=rule, retry_after=retry_after)
        )

    def end(self) -> None:
        """End the streak going on: publish the refusals counted but not yet published, as one
        ``RequestRefused`` with their ``count`` (none if there are none). A no-op outside a
        streak."""
        rule = self.rule
        if rule is None:
            return
        self.rule = None
        count = self._count
        if count:
            self._count = 0
            self._bus.publish(
                RequestRefused(
                    path=self._path,
                    at=self._at,
                    refusal=rule,
                    retry_after=self._retry_after,
                    count=count,
                    since=self._since,
                )
            )
