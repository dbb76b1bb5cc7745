"""The Redis store: one breaker and one rate limit for a whole fleet of processes.

The trio shell around the pure fleet logic of :mod:`supervisor.store._fleet`. It owns two
background tasks for as long as ``async with RedisStore.connect(...)`` lasts:

* the **sync loop** wakes every ``flush_interval`` and sends, in one pipelined round trip, one
  script call per breaker that has something to say (new counted failures, a pending report, a
  lease to take, renew or give back, or ``resync_interval`` since its last sync); the answers are
  the fleet's views, applied at once. While the server is unreachable the loop keeps probing
  with the same calls.
* the **listen loop** holds a pattern subscription to the store's channels; a published
  decision reaches every process's core within one delivery. After a reconnection it asks the
  sync loop for a full resync, since messages sent in between are lost.

A throttle admission is the only request-path round trip: one script call, bounded by
``timeout``. Every failure to reach the server (refused, reset, timed out) turns the whole store
local at once (see :class:`~supervisor.store._fleet.Availability`) and publishes
:class:`~supervisor.store.StoreUnavailable`; the next answer publishes
:class:`~supervisor.store.StoreRecovered` and resyncs every rule.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING

import attrs
import trio

from .._config import DURATION, NON_NEGATIVE
from .._errors import ConfigError
from .._errors import shown as show_value
from .._groups import raise_sole_leaf
from .._listeners import Listeners
from ..rules._breaker import ExceptionTypes
from ..rules._window import SlidingWindowCore
from ._base import BreakerSettings, Store, ThrottleBinding, check_name, check_same
from ._errors import StoreAuthError, StoreConnectionError
from ._events import StoreEvent
from ._fleet import Availability, FleetBreakerCore
from ._redis_connect import _check_prefix, _coredis, _describe, _is_outage, _resolve_url
from ._redis_sync import BreakerSync
from ._redis_throttle import _FleetThrottle
from ._scripts import BREAKER_SYNC, THROTTLE_ADMIT

if TYPE_CHECKING:
    # coredis is the optional `redis` extra: imported when a store connects, so that
    # `import supervisor` (and the memory store) work without it.
    import coredis
    from coredis.commands import Script

__all__ = ["RedisStore", "RedisStoreStatistics"]


@attrs.frozen(kw_only=True)
class _Options:
    flush_interval: float
    resync_interval: float
    timeout: float
    connect_timeout: float
    window: float
    failure_ratio: float
    lease: float
    throttle_margin: float


@attrs.frozen(kw_only=True)
class RedisStoreStatistics:
    """A snapshot of a :class:`RedisStore`."""

    url: str
    """The server's URL, without its password."""
    prefix: str
    """The prefix of every key and channel."""
    available: bool
    """Whether the server answered the last operation (else every rule decides locally)."""
    down_since: float | None
    """The trio time the server became unreachable, or ``None`` while available."""
    breakers: int
    """Breakers kept in this store."""
    throttles: int
    """Throttles kept in this store."""
    commands: int
    """Redis commands sent so far (a pipelined sync of ``n`` breakers counts ``n``)."""
    failures: int
    """Operations that failed to reach the server, in total."""
    messages: int
    """Published decisions received."""
    listener_errors: int
    """Errors raised by listeners called from the store's background tasks (the store goes on;
    the latest is kept as :attr:`RedisStore.last_listener_error`)."""


class RedisStore(BreakerSync, Store):
    """Rule state shared through Redis by every process that uses the same server and prefix.

    Open it with ``async with RedisStore.connect(url) as store:`` under trio, and give it to
    breakers and throttles (``store=store``) or to a whole tree (``run_tree(spec,
    store=store)``). Two breakers (or throttles) with the same name, given stores on the same
    server with the same prefix, are one rule across every process.

    **Breakers.** No Redis round trip on the request path: each process counts locally and the
    sync loop sends its counts every ``flush_interval`` (failures at once, successes at least
    every ``resync_interval``) to one atomic script that opens the breaker fleet-wide when,
    within the last ``window`` seconds of Redis's clock, the fleet's counted failures reach
    ``failure_threshold`` and are at least ``failure_ratio`` of the calls. The decision is
    published; every process refuses as soon as it arrives. From ``timeout`` after the opening
    (on Redis's clock) exactly one process holds the trial lease (``SET ... NX PX``, ``lease``
    seconds, renewed while its trials run); the others refuse, as a half-open breaker with no
    trial slot free. The holder's trials close the breaker everywhere, or reopen it everywhere.
    ``reset()`` and ``force_open()`` act fleet-wide. Each process's own breaker keeps working
    alongside: it opens on its own run of failures whatever the fleet says.

    **Throttles.** Exact: at most ``max_calls`` admissions in any window of ``period`` across
    the fleet, decided by one script on a sliding log on Redis's clock. ``on_limit="wait"``
    books the next free slot and sleeps until it (a cancelled waiter gives its slot back);
    ``"raise"`` refuses with the fleet's ``retry_after``. ``throttle_margin`` seconds are added
    to each admission's time in the window, so that the calls' actual starts (which follow
    Redis's decision by a round trip and a wake-up) also keep the bound.

    **Failures.** No request waits on Redis longer than ``timeout``: a throttle admission that
    gets no answer in time is decided locally, and from then on every rule of the store is local
    (breakers: their own state, open ones half-open on their own timers; throttles: their local
    window) until the server answers the sync loop again, which it probes every
    ``flush_interval``. Then every rule resyncs. Each transition is published to the store's
    listeners as :class:`~supervisor.store.StoreUnavailable` /
    :class:`~supervisor.store.StoreRecovered`.
    """

    def __init__(
        self,
        *,
        client: coredis.Redis[str],
        url: str,
        prefix: str,
        options: _Options,
    ) -> None:
        """Private: use :meth:`connect`."""
        self._client = client
        self._prefix = prefix
        self._options = options
        self._availability = Availability(url)
        self._holder = "{}/{}/{}".format(
            "".join(socket.gethostname().split()) or "host", os.getpid(), secrets.token_hex(4)
        )
        self._members = itertools.count()
        self._breakers: dict[str, FleetBreakerCore] = {}
        self._watchers: dict[str, list[Callable[[], object]]] = {}
        self._throttles: dict[str, tuple[SlidingWindowCore, _FleetThrottle]] = {}
        self._cancelled: list[tuple[str, str]] = []
        self._listeners: Listeners[StoreEvent] = Listeners()
        self._breaker_script: Script[str] = client.register_script(BREAKER_SYNC)
        self._throttle_script: Script[str] = client.register_script(THROTTLE_ADMIT)
        self._resync_all = False
        self._closed = False
        self._commands = 0
        self._messages = 0
        self._listener_errors = 0
        self.last_listener_error: Exception | None = None
        """The latest error a listener raised when called from a background task."""

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        url: str | None = None,
        *,
        prefix: str = "supervisor",
        flush_interval: float = 0.1,
        resync_interval: float = 1.0,
        timeout: float = 0.1,
        connect_timeout: float = 2.0,
        window: float = 10.0,
        failure_ratio: float = 0.5,
        lease: float = 1.0,
        throttle_margin: float = 0.0,
    ) -> AbstractAsyncContextManager[RedisStore]:
        """Connect to the Redis server at ``url`` and keep the store's tasks running inside the
        ``async with`` block; on leaving it, every rule of the store goes on locally.

        Args:
            url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` or
                ``unix://path``; default: environment variable ``SUPERVISOR_REDIS_URL``.
            prefix: the first part of every key and channel (stores with another prefix on the
                same server share nothing).
            flush_interval: seconds between syncs of the breakers' counts (``> 0``).
            resync_interval: at most this many seconds between two syncs of a breaker, which
                also carry its successes and make up for lost published messages (``> 0``).
            timeout: the longest any operation on the request path (a throttle admission) or
                in the background waits for the server before the store turns local (``> 0``).
            connect_timeout: how long the first ``PING`` may take (``> 0``).
            window: the fleet's failure window in seconds, counted in tenths (``> 0``).
            failure_ratio: the smallest share of counted failures among the window's calls
                that opens the breaker fleet-wide, with at least ``failure_threshold`` of them
                (``> 0`` and ``<= 1``).
            lease: seconds a trial lease lasts unless renewed; a dead holder's lease runs out
                after this (``> 0``).
            throttle_margin: seconds added to each throttle admission's stay in the window
                (``>= 0``).

        Raises:
            ConfigError: at this call, for a bad URL (the message shows it without its
                password), a missing ``SUPERVISOR_REDIS_URL``, or a bad option.
            StoreConnectionError: on entering, the server is unreachable or did not answer
                ``PING`` within ``connect_timeout``.
            StoreAuthError: on entering, the server refused the credentials.
        """
        target, shown = _resolve_url(url)
        _coredis()  # fail here, at the call, without the extra
        options = _Options(
            flush_interval=DURATION.check("flush_interval", flush_interval),
            resync_interval=DURATION.check("resync_interval", resync_interval),
            timeout=DURATION.check("timeout", timeout),
            connect_timeout=DURATION.check("connect_timeout", connect_timeout),
            window=DURATION.check("window", window),
            failure_ratio=DURATION.check("failure_ratio", failure_ratio),
            lease=DURATION.check("lease", lease),
            throttle_margin=NON_NEGATIVE.check("throttle_margin", throttle_margin),
        )
        if options.failure_ratio > 1:
            raise ConfigError(
                f"`failure_ratio` must be a number > 0 and <= 1 (got {show_value(failure_ratio)})"
            )
        return cls._open(target, shown, _check_prefix(prefix), options)

    @classmethod
    @contextlib.asynccontextmanager
    async def _open(
        cls, target: str, shown: str, prefix: str, options: _Options
    ) -> AsyncIterator[RedisStore]:
        # coredis wraps whatever leaves its client's block in an exception group; one source
        # leaves as itself, so the body's own exception (and a cancellation) comes out unchanged.
        try:
            async with cls._session(target, shown, prefix, options) as store:
                yield store
        except BaseExceptionGroup as group:
            raise_sole_leaf(group)

    @classmethod
    @contextlib.asynccontextmanager
    async def _session(
        cls, target: str, shown: str, prefix: str, options: _Options
    ) -> AsyncIterator[RedisStore]:
        redis = _coredis()
        client: coredis.Redis[str] = redis.Redis.from_url(
            target,
            decode_responses=True,
            retry_policy=redis.retry.NoRetryPolicy(),
            connect_timeout=options.connect_timeout,
        )
        async with AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(client)
                with trio.fail_after(options.connect_timeout):
                    await client.ping()
            except BaseException as exc:
                leaf = _describe(exc)
                if isinstance(
                    leaf,
                    redis.exceptions.AuthenticationError | redis.exceptions.AuthorizationError,
                ):
                    raise StoreAuthError(
                        shown, f"Redis at {shown} refused the credentials: {leaf}"
                    ) from exc
                if isinstance(leaf, trio.TooSlowError):
                    raise StoreConnectionError(
                        shown,
                        f"Redis at {shown} did not answer PING within {options.connect_timeout}s",
                    ) from exc
                if _is_outage(exc):
                    raise StoreConnectionError(
                        shown, f"cannot reach Redis at {shown}: {leaf}"
                    ) from exc
                raise
            store = cls(client=client, url=shown, prefix=prefix, options=options)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store._sync_loop)
                nursery.start_soon(store._listen_loop)
                try:
                    yield store
                finally:
                    # What is pending (a reset, the holder's close, counted failures) still goes
                    # out, within `timeout`, even when the block is left by a cancellation.
                    with trio.CancelScope(shield=True) as final:
                        final.deadline = trio.current_time() + options.timeout
                        await store.sync(final=True)
                    store._close()
                    nursery.cancel_scope.cancel()

    def _close(self) -> None:
        self._closed = True
        for core in self._breakers.values():
            core.go_local()

    # -- the Store interface ----------------------------------------------------------------------

    def breaker_core(
        self,
        *,
        name: str,
        failure_threshold: int,
        success_threshold: int,
        timeout: float,
        half_open_max_calls: int,
        expected_exception: ExceptionTypes,
        on_change: Callable[[], object] | None = None,
    ) -> FleetBreakerCore:
        """See :meth:`~supervisor.store.Store.breaker_core`; the core follows the fleet from
        the store's next sync on."""
        check_name("breaker", name)
        core = FleetBreakerCore(
            holder_id=self._holder,
            name=name,
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            timeout=timeout,
            half_open_max_calls=half_open_max_calls,
            expected_exception=expected_exception,
        )
        existing = self._breakers.get(name)
        if existing is not None:
            check_same("breaker", name, BreakerSettings.of(existing), BreakerSettings.of(core))
            core = existing
        else:
            self._breakers[name] = core
            self._watchers[name] = []
        if on_change is not None:
            self._watchers[name].append(on_change)
        return core

    def throttle_binding(self, *, name: str, max_calls: int, period: float) -> ThrottleBinding:
        """See :meth:`~supervisor.store.Store.throttle_binding`; admissions go to the fleet
        while the server answers, to the local core otherwise."""
        check_name("throttle", name)
        core = SlidingWindowCore(max_calls, period)
        existing = self._throttles.get(name)
        if existing is not None:
            had = existing[0]
            check_same("throttle", name, (had.max_calls, had.period), (max_calls, core.period))
            return ThrottleBinding(core=had, fleet=existing[1])
        link = _FleetThrottle(self, name, core.max_calls, core.period)
        self._throttles[name] = (core, link)
        return ThrottleBinding(core=core, fleet=link)

    # -- inspection -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's URL, without its password."""
        return self._availability.url

    @property
    def available(self) -> bool:
        """Whether the server answered the last operation."""
        return self._availability.up and not self._closed

    @property
    def holder_id(self) -> str:
        """This store's id among the fleet (the value of a trial lease it holds)."""
        return self._holder

    def statistics(self) -> RedisStoreStatistics:
        """A snapshot of the store."""
        availability = self._availability
        return RedisStoreStatistics(
            url=availability.url,
            prefix=self._prefix,
            available=self.available,
            down_since=availability.down_since,
            breakers=len(self._breakers),
            throttles=len(self._throttles),
            commands=self._commands,
            failures=availability.failures,
            messages=self._messages,
            listener_errors=self._listener_errors,
        )

    def __repr__(self) -> str:
        state = "available" if self.available else "local (server unreachable)"
        return (
            f"<RedisStore {self.url} prefix={self._prefix!r} {state}, "
            f"{len(self._breakers)} breakers, {len(self._throttles)} throttles>"
        )

    def add_listener(self, callback: Callable[[StoreEvent], object]) -> None:
        """Call ``callback(event)`` for each :class:`~supervisor.store.StoreUnavailable` and
        :class:`~supervisor.store.StoreRecovered`, synchronously, from the task that noticed."""
        self._listeners.add(callback)

    def remove_listener(self, callback: Callable[[StoreEvent], object]) -> None:
        """Stop calling ``callback``; :class:`ValueError` if it was never added."""
        self._listeners.remove(callback)

    # -- keys -------------------------------------------------------------------------------------

    def _key(self, name: str, part: str) -> str:
        # Every key and the channel of one rule share the hash tag {name}: one cluster slot.
        return f"{self._prefix}:{{{name}}}:{part}"

    def _name_of(self, channel: str) -> str | None:
        head, tail = f"{self._prefix}:{{", "}:bus"
        if channel.startswith(head) and channel.endswith(tail):
            return channel[len(head) : -len(tail)]
        return None

    def _next_member(self) -> str:
        return f"{self._holder}#{next(self._members)}"

    def _cancel_booking(self, key: str, member: str) -> None:
        self._cancelled.append((key, member))

    # -- availability -----------------------------------------------------------------------------

    def _emit(self, event: StoreEvent) -> None:
        try:
            self._listeners.emit(event)
        except Exception as exc:  # a broken listener must not stop the store's tasks
            self._listener_errors += 1
            self.last_listener_error = exc

    def _failed(self, error: BaseException) -> None:
        event = self._availability.failed(trio.current_time(), _describe(error))
        if event is not None:
            for core in self._breakers.values():
                core.go_local()
            self._emit(event)

    def _succeeded(self) -> None:
        event = self._availability.succeeded(trio.current_time())
        if event is not None:
            self._resync_all = True
            self._emit(event)

    def _notify(self, name: str, core: FleetBreakerCore) -> None:
        if not core.has_changes:
            return
        for callback in self._watchers.get(name, ()):
            try:
                callback()
            except Exception as exc:  # the owner's listeners: counted, never fatal here
                self._listener_errors += 1
                self.last_listener_error = exc
