"""The Redis store's shared throttle: one admission by the whole fleet, one script call.

:class:`_FleetThrottle` is the :class:`~supervisor.store.FleetThrottleLink` a
:class:`~supervisor.store.RedisStore` gives each throttle: an admission is decided on Redis's
clock, bounded by the store's ``timeout``; an unreachable server turns the store local and
leaves the decision to the throttle's own window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import trio

from ._redis_connect import _is_outage

if TYPE_CHECKING:
    from ._redis import RedisStore

__all__ = ["_FleetThrottle"]


class _FleetThrottle:
    """One throttle's admission by the fleet: one script call on Redis's clock."""

    __slots__ = ("_args", "_key", "_store", "name")

    def __init__(self, store: RedisStore, name: str, max_calls: int, period: float) -> None:
        self._store = store
        self.name = name
        self._key = store._key(name, "log")
        period_us = round((period + store._options.throttle_margin) * 1e6)
        self._args = (str(period_us), str(max_calls))

    async def admit(self, *, wait: bool) -> float | None:
        """See :class:`~supervisor.store.FleetThrottleLink`."""
        store = self._store
        if not store._availability.up or store._closed:
            return None
        member = store._next_member()
        mode = "wait" if wait else "raise"
        try:
            with trio.fail_after(store._options.timeout):
                store._commands += 1
                reply: Any = await store._throttle_script(
                    [self._key], [self._args[0], self._args[1], mode, member]
                )
        except BaseException as exc:
            if wait:  # the slot may have been booked before the answer was lost or abandoned
                store._cancel_booking(self._key, member)
            if not _is_outage(exc):
                raise
            store._failed(exc)
            return None
        admitted, delay_us = cast("Sequence[int]", reply)
        delay = int(delay_us) / 1e6
        if not admitted:
            return delay if delay > 0.0 else 1e-6
        if delay > 0.0:
            try:
                await trio.sleep(delay)
            except BaseException:
                store._cancel_booking(self._key, member)  # a cancelled waiter takes no slot
                raise
        return 0.0
