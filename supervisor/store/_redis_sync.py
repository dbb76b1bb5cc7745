"""The Redis store's shared breaker machinery: the sync loop and the listen loop.

:class:`BreakerSync` is the part of :class:`~supervisor.store.RedisStore` that keeps every
breaker of the store in step with the fleet: the sync loop sends, in one pipelined round trip,
what each breaker has to say and applies the fleet's views that come back; the listen loop
holds the pattern subscription through which published decisions arrive. The state it works on
belongs to the store (declared here for the type checker only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs
import trio

from ._fleet import Availability, FleetBreakerCore, FleetState, FleetView, LeaseAction, Report
from ._redis_connect import _coredis, _is_outage

if TYPE_CHECKING:
    import coredis
    from coredis.commands import Script

    from ._redis import _Options

__all__ = ["BreakerSync"]


@attrs.define(eq=False)
class _Sync:
    # One breaker's part of a pipelined sync: what was taken from its core, to apply or restore.
    core: FleetBreakerCore
    report: Report | None
    action: LeaseAction | None
    request: Any = None


class BreakerSync:
    """The store's breakers kept in step with the fleet (a base of :class:`RedisStore`)."""

    if TYPE_CHECKING:
        _client: coredis.Redis[str]
        _prefix: str
        _options: _Options
        _availability: Availability
        _holder: str
        _breakers: dict[str, FleetBreakerCore]
        _cancelled: list[tuple[str, str]]
        _breaker_script: Script[str]
        _resync_all: bool
        _closed: bool
        _commands: int
        _messages: int

        def _key(self, name: str, part: str) -> str: ...
        def _name_of(self, channel: str) -> str | None: ...
        def _failed(self, error: BaseException) -> None: ...
        def _succeeded(self) -> None: ...
        def _notify(self, name: str, core: FleetBreakerCore) -> None: ...

    # -- the sync loop ----------------------------------------------------------------------------

    async def _sync_loop(self) -> None:
        while True:
            await trio.sleep(self._options.flush_interval)
            await self.sync()

    def _plan(self, now: float) -> list[_Sync]:
        options = self._options
        everything = self._resync_all or not self._availability.up
        self._resync_all = False
        plan = []
        for core in self._breakers.values():
            if everything:
                core.resync()
            elif not core.sync_due(now, resync=options.resync_interval, lease=options.lease):
                continue
            plan.append(_Sync(core, core.take_report(), core.lease_action(now, options.lease)))
        return plan

    def _breaker_args(self, sync: _Sync) -> tuple[list[str], list[str]]:
        core, options = sync.core, self._options
        name = core.name
        successes, failures = core.take_counts()
        timeout_ms = max(1, round(core.timeout * 1000))
        window_ms = max(10, round(options.window * 1000))
        keys = [self._key(name, "state"), self._key(name, "window"), self._key(name, "lease")]
        args = [
            "sync" if sync.report is None else sync.report.value,
            str(successes),
            str(failures),
            str(core.failure_threshold),
            repr(options.failure_ratio),
            str(window_ms),
            str(max(1, window_ms // 10)),
            str(timeout_ms),
            "" if sync.action is None else sync.action.value,
            self._holder,
            str(max(1, round(options.lease * 1000))),
            self._key(name, "bus"),
            str(max(86_400_000, 10 * (timeout_ms + window_ms))),
        ]
        return keys, args

    async def sync(self, *, final: bool = False) -> None:
        """Run one sync now (the sync loop does this every ``flush_interval``): send what the
        breakers have to say, take back the fleet's views, and drop cancelled throttle bookings.
        ``final``: only what must not be lost (reports, counted failures, bookings), as the
        store closes.

        Never raises for an unreachable server: the store turns local instead.
        """
        if self._closed or (final and not self._availability.up):
            return
        now = trio.current_time()
        plan = self._plan(now)
        if final:
            plan = [s for s in plan if s.report is not None or s.core.failures_unsent]
        cancelled, self._cancelled = self._cancelled, []
        probe = not plan and not cancelled and not self._availability.up
        if not plan and not cancelled and not probe:
            return
        try:
            with trio.fail_after(self._options.timeout):
                async with self._client.pipeline(transaction=False) as pipe:
                    for sync in plan:
                        keys, args = self._breaker_args(sync)
                        sync.request = self._breaker_script(keys, args, client=pipe)
                    for key, member in cancelled:
                        pipe.zrem(key, [member])
                    if probe:
                        pipe.ping()
                self._commands += len(plan) + len(cancelled) + probe
                replies = [await sync.request for sync in plan]
        except BaseException as exc:
            if not _is_outage(exc):
                raise
            for sync in plan:
                if sync.report is not None:
                    sync.core.restore_report(sync.report)  # sent again after the outage
            self._failed(exc)
            return
        self._succeeded()
        now = trio.current_time()
        for sync, reply in zip(plan, replies, strict=True):
            self._apply_reply(sync, cast("Sequence[Any]", reply), now)

    def _apply_reply(self, sync: _Sync, reply: Sequence[Any], now: float) -> None:
        state, epoch, generation, remaining_ms, holder, cause, granted = reply
        core = sync.core
        view = FleetView(
            state=FleetState(state),
            epoch=int(epoch),
            generation=str(generation),
            remaining=int(remaining_ms) / 1000,
            holder=str(holder),
            cause=str(cause),
        )
        if sync.report in (Report.CLOSE, Report.REOPEN) and view.cause != sync.report.value:
            core.resync()  # the fleet refused the report (the lease was gone): follow it anew
        core.apply(view, now)
        if int(granted):
            core.lease_granted(now)
        core.synced(now)
        self._notify(core.name, core)

    # -- the listen loop --------------------------------------------------------------------------

    async def _listen_loop(self) -> None:
        pattern = f"{self._prefix}:{{*}}:bus"
        while True:
            try:
                async with self._client.pubsub(
                    patterns=[pattern],
                    ignore_subscribe_messages=True,
                    retry_policy=_coredis().retry.NoRetryPolicy(),
                ) as pubsub:
                    self._resync_all = True  # what was published while unsubscribed is lost
                    async for message in pubsub:
                        self._on_message(str(message["channel"]), str(message["data"]))
            except BaseException as exc:
                if not _is_outage(exc):
                    raise
            await trio.sleep(self._options.flush_interval)

    def _on_message(self, channel: str, data: str) -> None:
        name = self._name_of(channel)
        core = None if name is None else self._breakers.get(name)
        if core is None:
            return
        try:
            state, epoch, generation, remaining_ms, holder, cause = data.split(" ")
            view = FleetView(
                state=FleetState(state),
                epoch=int(epoch),
                generation=generation,
                remaining=int(remaining_ms) / 1000,
                holder="" if holder == "-" else holder,
                cause=cause,
            )
        except ValueError:
            return  # not one of ours: the periodic resync still brings the state
        self._messages += 1
        core.apply(view, trio.current_time())
        self._notify(core.name, core)
