"""The event bus: one stream of frozen events that metrics, health, the monitor and users read.

Publishing never blocks and never waits for a subscriber, so the request path pays only for a
function call per subscriber:

- A **callback** subscriber (:meth:`EventBus.add_listener`) is called synchronously, in the
  publisher's task, in subscription order. It must be quick and must not block. One that raises an
  ``Exception`` is removed (so it cannot fail every later request) and a :class:`SubscriberFailed`
  event carrying the error is published to the others. ``BaseException`` s propagate.
- A **stream** subscriber (:meth:`EventBus.subscribe`) reads events with ``async for`` from its own
  bounded buffer. When it falls behind by more than ``maxlen`` events, the *oldest* unread events
  are dropped and counted in :attr:`Subscription.dropped`: a slow reader loses history, never
  slows the program.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

import attrs
import trio

from .._errors import shown

__all__ = ["CallTracer", "EventBus", "SubscriberFailed", "Subscription"]

E = TypeVar("E")


@attrs.frozen(kw_only=True)
class SubscriberFailed:
    """A callback subscriber raised and was removed from the bus."""

    callback: str
    """The repr of the removed callback."""
    error: Exception
    """What it raised."""


class Subscription(Generic[E]):
    """A bounded buffer of events for one stream subscriber; iterate it with ``async for``.

    Iteration ends when the subscription or its bus is closed. Leaving ``async with`` closes it.
    """

    def __init__(self, bus: EventBus[E], maxlen: int) -> None:
        self._bus = bus
        self._buffer: collections.deque[E] = collections.deque()
        self._maxlen = maxlen
        self._wakeup: trio.Event | None = None
        self._closed = False
        self.dropped = 0
        """How many events were dropped because this subscriber fell more than ``maxlen`` behind."""

    def _push(self, event: E) -> None:
        if len(self._buffer) >= self._maxlen:
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append(event)
        wakeup = self._wakeup
        if wakeup is not None:
            # Consumed here, so that every reader waiting on it wakes and a later wait makes a
            # fresh one (two tasks reading one subscription must not strand each other).
            self._wakeup = None
            wakeup.set()

    def close(self) -> None:
        """Stop receiving; a pending ``async for`` ends after the buffered events. Idempotent."""
        if not self._closed:
            self._closed = True
            self._bus._subscriptions.discard(self)
            wakeup = self._wakeup
            if wakeup is not None:
                self._wakeup = None
                wakeup.set()

    def pending(self) -> int:
        """Events buffered and not yet read."""
        return len(self._buffer)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> E:
        """The next buffered event, waiting for one if none is buffered.

        Always a checkpoint. Raises :class:`StopAsyncIteration` once the subscription (or its bus)
        is closed and the buffer is empty. Cancelled while waiting, or at the checkpoint, it
        consumes no event.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._buffer:
            if self._closed:
                await trio.lowlevel.cancel_shielded_checkpoint()
                raise StopAsyncIteration
            wakeup = self._wakeup
            if wakeup is None:
                wakeup = self._wakeup = trio.Event()
            await wakeup.wait()
            if self._buffer:
                return self._buffer.popleft()
        event = self._buffer.popleft()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return event

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Subscription {len(self._buffer)}/{self._maxlen} buffered, {self.dropped} dropped>"


class CallTracer(Protocol):
    """What wraps every call to a guarded service publishing on a bus whose
    :attr:`EventBus.call_tracer` is set (an exporter of spans, e.g. the OpenTelemetry one)."""

    async def trace(
        self, path: str, deadline: float, call: Callable[..., Awaitable[Any]], *args: Any
    ) -> Any:
        """Return (or raise) what ``await call(*args)`` does, around it: ``path`` is the
        service's, ``deadline`` the call's trio deadline (``inf``: none). The events the call
        publishes are published in the caller's task, from inside ``call``."""
        ...


class EventBus(Generic[E]):
    """Fans each published event out to callback and stream subscribers without ever blocking."""

    def __init__(self) -> None:
        self.call_tracer: CallTracer | None = None
        """The hook wrapping every call of the guarded services publishing here (``None``, the
        default, costs one attribute check per call). Set by an exporter of spans."""
        self._callbacks: list[Callable[[Any], object]] = []
        self._subscriptions: set[Subscription[E]] = set()
        self._closed = False
        self.published = 0
        """How many events were published."""

    @property
    def audience(self) -> int:
        """How many listeners and open subscriptions receive what is published now."""
        return len(self._callbacks) + len(self._subscriptions)

    def add_listener(self, callback: Callable[[Any], object]) -> None:
        """Call ``callback(event)`` synchronously for every event published from now on."""
        if not callable(callback):
            raise TypeError(f"a listener must be callable (got {shown(callback)})")
        self._callbacks.append(callback)

    def remove_listener(self, callback: Callable[[Any], object]) -> None:
        """Stop calling ``callback``; raises :class:`ValueError` if it was not added."""
        self._callbacks.remove(callback)

    def subscribe(self, *, maxlen: int = 10_000) -> Subscription[E]:
        """A new stream subscription receiving every event published from now on.

        Raises:
            ValueError: ``maxlen`` is not an integer >= 1.
            RuntimeError: the bus is closed.
        """
        if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1:
            raise ValueError(f"`maxlen` must be an integer >= 1 (got {shown(maxlen)})")
        if self._closed:
            raise RuntimeError("the event bus is closed")
        subscription = Subscription(self, maxlen)
        self._subscriptions.add(subscription)
        return subscription

    def publish(self, event: E) -> None:
        """Hand ``event`` to every subscriber. Never blocks; see the module doc for slow ones."""
        self.published += 1
        if self._subscriptions:  # no copy to make without subscribers: the common case
            for subscription in tuple(self._subscriptions):
                subscription._push(event)
        if self._callbacks:
            self._call_listeners(event)

    def _call_listeners(self, event: Any) -> None:
        failed: list[SubscriberFailed] | None = None  # made on the first failure only
        for callback in tuple(self._callbacks):
            try:
                callback(event)
            except Exception as exc:
                # It may already be gone: a callback may remove itself (or another) and then raise.
                if callback in self._callbacks:
                    self._callbacks.remove(callback)
                if failed is None:
                    failed = []
                failed.append(SubscriberFailed(callback=repr(callback), error=exc))
        if failed is not None:
            for notice in failed:
                self.publish(notice)  # type: ignore[arg-type]

    def close(self) -> None:
        """End every stream subscription (after its buffered events). Idempotent."""
        self._closed = True
        for subscription in tuple(self._subscriptions):
            subscription.close()

    def __repr__(self) -> str:
        return (
            f"<EventBus {len(self._callbacks)} listeners, {len(self._subscriptions)} streams, "
            f"{self.published} published>"
        )
