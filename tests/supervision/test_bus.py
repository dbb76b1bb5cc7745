"""The event bus: non-blocking publish, callback and stream subscribers, drops, failures, close."""

from __future__ import annotations

import gc
import inspect
from typing import TypeVar

import attrs
import pytest
import trio
import trio.testing

from supervisor.observe._bus import EventBus, SubscriberFailed, Subscription

E = TypeVar("E")


async def drain(subscription: Subscription[E]) -> list[E]:
    """Every event the subscription yields until its iteration ends."""
    return [event async for event in subscription]


# --- publishing and callbacks --------------------------------------------------------------------


def test_publish_without_subscribers_only_counts() -> None:
    """Publishing to nobody is fine and counted in ``published``."""
    bus: EventBus[int] = EventBus()
    for i in range(5):
        bus.publish(i)
    assert bus.published == 5
    assert repr(bus) == "<EventBus 0 listeners, 0 streams, 5 published>"


def test_callbacks_are_called_synchronously_in_subscription_order() -> None:
    """Each callback sees each event before publish returns, callbacks in the order added."""
    bus: EventBus[int] = EventBus()
    calls: list[tuple[str, int]] = []
    bus.add_listener(lambda event: calls.append(("first", event)))
    bus.add_listener(lambda event: calls.append(("second", event)))
    bus.publish(1)
    assert calls == [("first", 1), ("second", 1)]
    bus.publish(2)
    assert calls == [("first", 1), ("second", 1), ("first", 2), ("second", 2)]


def test_callback_added_later_sees_only_later_events() -> None:
    """A callback receives only the events published after it was added."""
    bus: EventBus[int] = EventBus()
    bus.publish(0)
    seen: list[int] = []
    bus.add_listener(seen.append)
    bus.publish(1)
    assert seen == [1]


def test_remove_listener() -> None:
    """A removed callback is not called again; removing one never added raises ValueError."""
    bus: EventBus[int] = EventBus()
    seen: list[int] = []
    bus.add_listener(seen.append)
    bus.publish(1)
    bus.remove_listener(seen.append)
    bus.publish(2)
    assert seen == [1]
    with pytest.raises(ValueError):
        bus.remove_listener(seen.append)


def test_same_callback_twice_is_called_twice() -> None:
    """A callback added twice is called twice per event until removed once per add."""
    bus: EventBus[int] = EventBus()
    seen: list[int] = []
    bus.add_listener(seen.append)
    bus.add_listener(seen.append)
    bus.publish(1)
    bus.remove_listener(seen.append)
    bus.publish(2)
    assert seen == [1, 1, 2]


@pytest.mark.parametrize("value", [None, 3, "print"])
def test_add_listener_refuses_non_callables(value: object) -> None:
    """A listener that cannot be called is refused at once with TypeError naming it."""
    bus: EventBus[int] = EventBus()
    with pytest.raises(TypeError, match=r"a listener must be callable \(got "):
        bus.add_listener(value)  # type: ignore[arg-type]


def test_failing_callback_is_removed_and_reported() -> None:
    """A callback that raises is removed, the rest still get the event, then SubscriberFailed."""
    bus: EventBus[object] = EventBus()
    before: list[object] = []
    after: list[object] = []
    error = RuntimeError("listener bug")
    calls = 0

    def broken(_event: object) -> None:
        nonlocal calls
        calls += 1
        raise error

    bus.add_listener(before.append)
    bus.add_listener(broken)
    bus.add_listener(after.append)
    bus.publish("e1")
    notice = SubscriberFailed(callback=repr(broken), error=error)
    assert before == ["e1", notice]
    assert after == ["e1", notice]
    assert before[1].error is error  # type: ignore[attr-defined]
    bus.publish("e2")
    assert calls == 1
    assert after == ["e1", notice, "e2"]
    assert bus.published == 3
    assert repr(bus) == "<EventBus 2 listeners, 0 streams, 3 published>"


async def test_failure_notice_reaches_stream_subscribers() -> None:
    """Stream subscribers get the failing event and then the SubscriberFailed notice."""
    bus: EventBus[object] = EventBus()
    subscription = bus.subscribe()

    def broken(_event: object) -> None:
        raise ValueError("nope")

    bus.add_listener(broken)
    bus.publish("e1")
    bus.publish("e2")
    bus.close()
    events = await drain(subscription)
    assert events[0] == "e1"
    assert isinstance(events[1], SubscriberFailed)
    assert isinstance(events[1].error, ValueError)
    assert events[1].callback == repr(broken)
    assert events[2:] == ["e2"]


def test_several_failures_in_one_publish() -> None:
    """Two callbacks failing on one event are both removed, reported in their order."""
    bus: EventBus[object] = EventBus()
    seen: list[object] = []

    def broken_a(_event: object) -> None:
        raise KeyError("a")

    def broken_b(_event: object) -> None:
        raise LookupError("b")

    bus.add_listener(broken_a)
    bus.add_listener(seen.append)
    bus.add_listener(broken_b)
    bus.publish("e")
    assert seen[0] == "e"
    assert [notice.callback for notice in seen[1:]] == [repr(broken_a), repr(broken_b)]  # type: ignore[attr-defined]
    assert bus.published == 3


def test_callback_failing_on_the_notice_is_removed_too() -> None:
    """A callback that fails only on SubscriberFailed events is removed when it gets one."""
    bus: EventBus[object] = EventBus()
    seen: list[object] = []

    def broken(_event: object) -> None:
        raise RuntimeError("always")

    def picky(event: object) -> None:
        if isinstance(event, SubscriberFailed):
            raise TypeError("cannot handle notices")

    bus.add_listener(broken)
    bus.add_listener(picky)
    bus.add_listener(seen.append)
    bus.publish("e")
    assert seen[0] == "e"
    notices = seen[1:]
    assert [type(n.error) for n in notices] == [RuntimeError, TypeError]  # type: ignore[attr-defined]
    assert [n.callback for n in notices] == [repr(broken), repr(picky)]  # type: ignore[attr-defined]
    bus.publish("later")
    assert seen[-1] == "later"
    assert repr(bus).startswith("<EventBus 1 listeners")


def test_callback_that_removes_itself_then_raises() -> None:
    """A callback that removes itself and then raises does not make publish raise."""
    bus: EventBus[object] = EventBus()
    seen: list[object] = []

    def one_shot(_event: object) -> None:
        bus.remove_listener(one_shot)
        raise RuntimeError("after removing myself")

    bus.add_listener(one_shot)
    bus.add_listener(seen.append)
    bus.publish("e")
    assert seen[0] == "e"
    assert isinstance(seen[1], SubscriberFailed)


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_base_exceptions_from_callbacks_propagate(exc_type: type[BaseException]) -> None:
    """A BaseException that is not an Exception propagates out of publish and is not counted."""
    bus: EventBus[object] = EventBus()
    seen: list[object] = []

    def interrupt(_event: object) -> None:
        raise exc_type

    bus.add_listener(interrupt)
    bus.add_listener(seen.append)
    with pytest.raises(exc_type):
        bus.publish("e")
    assert seen == []
    assert repr(bus).startswith("<EventBus 2 listeners")


def test_subscriber_failed_is_a_frozen_event() -> None:
    """SubscriberFailed is an immutable value carrying the callback's repr and the error."""
    error = ValueError("x")
    notice = SubscriberFailed(callback="<cb>", error=error)
    assert notice == SubscriberFailed(callback="<cb>", error=error)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        notice.callback = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        SubscriberFailed("<cb>", error)  # type: ignore[call-arg]


def test_callback_publishing_from_inside_a_callback() -> None:
    """A callback may publish: the nested event reaches every callback, counted once each."""
    bus: EventBus[object] = EventBus()
    seen: list[object] = []

    def echo(event: object) -> None:
        if event == "ping":
            bus.publish("pong")

    bus.add_listener(echo)
    bus.add_listener(seen.append)
    bus.publish("ping")
    assert sorted(map(str, seen)) == ["ping", "pong"]
    assert bus.published == 2


# --- stream subscriptions ------------------------------------------------------------------------


async def test_stream_receives_events_in_order() -> None:
    """A stream subscriber receives every event published after it subscribed, in order."""
    bus: EventBus[int] = EventBus()
    bus.publish(-1)
    subscription = bus.subscribe()
    for i in range(100):
        bus.publish(i)
    assert subscription.pending() == 100
    bus.close()
    assert await drain(subscription) == list(range(100))
    assert subscription.dropped == 0
    assert subscription.pending() == 0


async def test_stream_waits_for_the_next_event() -> None:
    """A reader with nothing buffered blocks until the next publish, then gets that event."""
    bus: EventBus[str] = EventBus()
    subscription = bus.subscribe()
    received: list[str] = []

    async def reader() -> None:
        async for event in subscription:
            received.append(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert received == []
        bus.publish("a")
        await trio.testing.wait_all_tasks_blocked()
        assert received == ["a"]
        bus.publish("b")
        bus.publish("c")
        await trio.testing.wait_all_tasks_blocked()
        assert received == ["a", "b", "c"]
        subscription.close()
    assert received == ["a", "b", "c"]


async def test_fifty_concurrent_subscribers_each_get_every_event_in_order() -> None:
    """50 reader tasks each receive all 500 events, in publish order, with none dropped."""
    bus: EventBus[int] = EventBus()
    subscriptions = [bus.subscribe(maxlen=1_000) for _ in range(50)]
    results: dict[int, list[int]] = {}

    async def reader(index: int, subscription: Subscription[int]) -> None:
        results[index] = [event async for event in subscription]

    async with trio.open_nursery() as nursery:
        for index, subscription in enumerate(subscriptions):
            nursery.start_soon(reader, index, subscription)
        await trio.testing.wait_all_tasks_blocked()
        for batch in range(10):
            for i in range(50):
                bus.publish(batch * 50 + i)
            await trio.testing.wait_all_tasks_blocked()
        bus.close()
    assert len(results) == 50
    for events in results.values():
        assert events == list(range(500))
    assert all(s.dropped == 0 for s in subscriptions)


async def test_slow_subscriber_drops_oldest_with_exact_count() -> None:
    """A subscriber more than ``maxlen`` behind loses the oldest events, each one counted."""
    bus: EventBus[int] = EventBus()
    slow = bus.subscribe(maxlen=3)
    fast = bus.subscribe(maxlen=100)
    for i in range(10):
        bus.publish(i)
    assert slow.pending() == 3
    assert slow.dropped == 7
    assert repr(slow) == "<Subscription 3/3 buffered, 7 dropped>"
    bus.close()
    assert await drain(slow) == [7, 8, 9]
    assert await drain(fast) == list(range(10))
    assert fast.dropped == 0


async def test_drops_counted_across_reads() -> None:
    """Reading frees room: only events beyond ``maxlen`` unread are dropped."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe(maxlen=2)
    iterator = aiter(subscription)
    bus.publish(1)
    bus.publish(2)
    assert await anext(iterator) == 1
    bus.publish(3)
    assert subscription.dropped == 0
    bus.publish(4)
    assert subscription.dropped == 1
    assert await anext(iterator) == 3
    assert await anext(iterator) == 4
    for i in range(5, 10):
        bus.publish(i)
    assert subscription.dropped == 4
    assert subscription.pending() == 2
    assert await anext(iterator) == 8


async def test_maxlen_one_keeps_only_the_latest() -> None:
    """With ``maxlen=1`` a lagging reader sees only the most recent event."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe(maxlen=1)
    for i in range(4):
        bus.publish(i)
    bus.close()
    assert await drain(subscription) == [3]
    assert subscription.dropped == 3


async def test_slow_reader_on_the_clock(autojump_clock: trio.testing.MockClock) -> None:
    """A reader taking 1 s per event behind a publisher every 0.3 s keeps the newest 2 events."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe(maxlen=2)
    received: list[tuple[int, float]] = []

    async def publisher() -> None:
        for i in range(10):
            await trio.sleep_until(0.1 + 0.3 * i)
            bus.publish(i)
        await trio.sleep_until(3.0)
        bus.close()

    async def reader() -> None:
        await trio.sleep_until(0.55)
        async for event in subscription:
            received.append((event, trio.current_time()))
            await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(publisher)
        nursery.start_soon(reader)
    assert [event for event, _ in received] == [0, 3, 7, 8, 9]
    assert [round(at, 9) for _, at in received] == [0.55, 1.55, 2.55, 3.55, 4.55]
    assert subscription.dropped == 5
    assert trio.current_time() == pytest.approx(5.55)


def test_publish_never_blocks_on_a_stuck_subscriber() -> None:
    """Publish is a plain function: 10,000 events to a reader that never reads just drop."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe(maxlen=10)
    for i in range(10_000):
        bus.publish(i)
    assert subscription.dropped == 9_990
    assert subscription.pending() == 10
    assert not inspect.iscoroutinefunction(bus.publish)


async def test_many_publishing_tasks() -> None:
    """Events from 100 publishing tasks all arrive, each task's events in its own order."""
    bus: EventBus[tuple[int, int]] = EventBus()
    subscription = bus.subscribe(maxlen=100_000)
    counted: list[tuple[int, int]] = []
    bus.add_listener(counted.append)

    async def publisher(task: int) -> None:
        for seq in range(20):
            bus.publish((task, seq))
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        for task in range(100):
            nursery.start_soon(publisher, task)
    bus.close()
    events: list[tuple[int, int]] = [event async for event in subscription]
    assert len(events) == 2_000
    assert bus.published == 2_000
    assert events == counted
    for task in range(100):
        assert [seq for t, seq in events if t == task] == list(range(20))
    assert len({task for task, _ in events[:100]}) > 1  # the tasks really interleaved


async def test_two_readers_share_one_subscription(autojump_clock: trio.testing.MockClock) -> None:
    """Two tasks reading one subscription split its events between them and neither hangs."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe()
    got: dict[str, list[int]] = {"a": [], "b": []}

    async def reader(name: str) -> None:
        async for event in subscription:
            got[name].append(event)

    # A reader stranded on a stale wakeup would hang: fail_after turns that into an error.
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader, "a")
            nursery.start_soon(reader, "b")
            for i in range(20):
                await trio.testing.wait_all_tasks_blocked()
                bus.publish(i)
            await trio.testing.wait_all_tasks_blocked()
            subscription.close()
    assert sorted(got["a"] + got["b"]) == list(range(20))
    assert got["a"] == sorted(got["a"])
    assert got["b"] == sorted(got["b"])


@pytest.mark.parametrize("maxlen", [0, -1, True, 1.5, "10", None])
def test_subscribe_refuses_bad_maxlen(maxlen: object) -> None:
    """``maxlen`` must be an integer >= 1; the message names it and the value."""
    bus: EventBus[int] = EventBus()
    with pytest.raises(ValueError) as info:
        bus.subscribe(maxlen=maxlen)  # type: ignore[arg-type]
    assert str(info.value) == f"`maxlen` must be an integer >= 1 (got {maxlen!r})"


def test_default_maxlen_is_ten_thousand() -> None:
    """The default buffer holds 10,000 events before it drops any."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe()
    for i in range(10_001):
        bus.publish(i)
    assert (subscription.pending(), subscription.dropped) == (10_000, 1)


# --- iteration details ---------------------------------------------------------------------------


async def test_breaking_out_resumes_where_it_stopped() -> None:
    """Leaving ``async for`` early loses nothing and warns nothing; the next loop goes on."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe()
    for i in range(5):
        bus.publish(i)
    first: list[int] = []
    async for event in subscription:
        first.append(event)
        if event == 1:
            break
    gc.collect()
    bus.close()
    assert first == [0, 1]
    assert await drain(subscription) == [2, 3, 4]


async def test_next_event_is_a_checkpoint_and_cancel_keeps_the_event() -> None:
    """Asking for a buffered event under a cancelled scope raises Cancelled and loses nothing."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe()
    bus.publish(1)
    with trio.CancelScope() as scope:
        scope.cancel()
        await anext(aiter(subscription))
    assert scope.cancelled_caught
    assert subscription.pending() == 1
    bus.close()
    assert await drain(subscription) == [1]


async def test_cancelled_waiting_reader_consumes_nothing() -> None:
    """A reader cancelled while waiting takes no event; a later reader gets the next one."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe()
    async with trio.open_nursery() as nursery:

        async def reader() -> None:
            await anext(aiter(subscription))
            pytest.fail("the reader was cancelled before any event")

        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    bus.publish(7)
    assert await anext(aiter(subscription)) == 7


async def test_iteration_on_a_closed_empty_subscription_is_a_checkpoint() -> None:
    """Even the end of iteration checkpoints: under a cancelled scope it raises Cancelled."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe()
    subscription.close()
    with trio.CancelScope() as scope:
        scope.cancel()
        await drain(subscription)
    assert scope.cancelled_caught


# --- close ---------------------------------------------------------------------------------------


async def test_subscription_close_ends_iteration_after_buffered_events() -> None:
    """Closing a subscription lets its reader finish the buffered events, then stop."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe()
    bus.publish(1)
    bus.publish(2)
    subscription.close()
    bus.publish(3)
    assert subscription.pending() == 2
    assert await drain(subscription) == [1, 2]
    subscription.close()
    assert await drain(subscription) == []
    assert repr(bus) == "<EventBus 0 listeners, 0 streams, 3 published>"


async def test_subscription_close_wakes_a_waiting_reader() -> None:
    """A reader blocked on an empty subscription returns from ``async for`` when it is closed."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe()
    done = trio.Event()

    async def reader() -> None:
        assert await drain(subscription) == []
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        subscription.close()
    assert done.is_set()


async def test_async_with_closes_the_subscription() -> None:
    """Leaving ``async with`` closes the subscription and detaches it from the bus."""
    bus: EventBus[int] = EventBus()
    async with bus.subscribe() as subscription:
        assert repr(bus) == "<EventBus 0 listeners, 1 streams, 0 published>"
        bus.publish(1)
    bus.publish(2)
    assert repr(bus) == "<EventBus 0 listeners, 0 streams, 2 published>"
    assert await drain(subscription) == [1]


async def test_async_with_closes_on_error() -> None:
    """An exception leaving ``async with`` still closes the subscription, and propagates."""
    bus: EventBus[int] = EventBus()
    with pytest.raises(RuntimeError, match="body failed"):
        async with bus.subscribe():
            raise RuntimeError("body failed")
    assert repr(bus) == "<EventBus 0 listeners, 0 streams, 0 published>"


async def test_bus_close_ends_every_stream_after_its_buffer() -> None:
    """Closing the bus ends each waiting reader after it has read everything buffered for it."""
    bus: EventBus[int] = EventBus()
    subscriptions = [bus.subscribe(maxlen=5) for _ in range(20)]
    results: list[list[int]] = []

    async def reader(subscription: Subscription[int]) -> None:
        results.append([event async for event in subscription])

    for i in range(3):
        bus.publish(i)
    async with trio.open_nursery() as nursery:
        for subscription in subscriptions:
            nursery.start_soon(reader, subscription)
        await trio.testing.wait_all_tasks_blocked()
        bus.publish(3)
        bus.close()
    assert results == [[0, 1, 2, 3]] * 20


async def test_subscribe_after_close_raises_and_close_is_idempotent() -> None:
    """After close, subscribe raises RuntimeError; closing again changes nothing."""
    bus: EventBus[int] = EventBus()
    bus.close()
    bus.close()
    with pytest.raises(RuntimeError, match="the event bus is closed"):
        bus.subscribe()


async def test_publish_after_close_does_not_raise() -> None:
    """Publishing on a closed bus is harmless: no stream gets it, nothing raises."""
    bus: EventBus[int] = EventBus()
    subscription = bus.subscribe()
    bus.close()
    bus.publish(1)
    assert bus.published == 1
    assert subscription.pending() == 0
    assert await drain(subscription) == []
