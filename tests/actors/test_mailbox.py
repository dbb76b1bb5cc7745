"""The bounded mailbox: overflow policies, backpressure, per-sender order, and its pure core."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from actor_helpers import Echo
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import actors
from actors._mailbox import Admission, Mailbox


class Gate(actors.Actor[Any]):
    """Handles nothing until its gate opens; records what it handled."""

    def __init__(self, gate: trio.Event, log: list[Any]) -> None:
        self.gate = gate
        self.log = log

    async def receive(self, message: Any) -> Any:
        await self.gate.wait()
        self.log.append(message)
        return message


async def test_wait_policy_blocks_send_and_ask_and_never_overfills(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With WAIT a full mailbox blocks send and ask; the queue never exceeds mailbox_size."""
    gate, log = trio.Event(), list[Any]()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Gate, gate, log, mailbox_size=3)
        ref.tell("in-hand")
        await trio.testing.wait_all_tasks_blocked()
        for i in range(3):
            ref.tell(i)
        with pytest.raises(actors.MailboxFull, match="3 queued") as info:
            ref.tell("no room")
        assert (info.value.name, info.value.capacity) == (ref.name, 3)
        replies: list[Any] = []
        done: list[str] = []

        async def sender(i: int) -> None:
            await ref.send(f"s{i}")
            done.append(f"s{i}")

        async def asker(i: int) -> None:
            replies.append(await ref.ask(f"a{i}"))

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(sender, i)
                nursery.start_soon(asker, i)
            await trio.testing.wait_all_tasks_blocked()
            stats = ref.statistics()
            assert (stats.queued, stats.waiting_senders, done) == (3, 100, [])
            gate.set()
            while ref.statistics().queued or ref.statistics().waiting_senders:
                assert ref.statistics().queued <= 3
                await trio.lowlevel.checkpoint()
        assert len(done) == 50
        assert sorted(replies) == sorted(f"a{i}" for i in range(50))
        await trio.testing.wait_all_tasks_blocked()  # a sent message may still be in hand
        assert len(log) == 104


async def test_reject_policy_raises_for_every_form(autojump_clock: trio.testing.MockClock) -> None:
    """With REJECT a full mailbox makes tell, send and ask raise MailboxFull at once."""
    gate = trio.Event()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Gate, gate, [], mailbox_size=1, overflow="reject")
        ref.tell("in-hand")
        await trio.testing.wait_all_tasks_blocked()
        ref.tell("queued")
        with pytest.raises(actors.MailboxFull):
            ref.tell(1)
        with pytest.raises(actors.MailboxFull):
            await ref.send(1)
        with pytest.raises(actors.MailboxFull):
            await ref.ask(1)
        assert ref.statistics().queued == 1
        gate.set()


async def test_drop_oldest_answers_a_dropped_ask_with_mailbox_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With DROP_OLDEST the oldest message goes; if it was an ask, it gets MailboxFull."""
    gate, log = trio.Event(), list[Any]()
    outcomes: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Gate, gate, log, mailbox_size=2, overflow="drop_oldest")
        ref.tell("in-hand")
        await trio.testing.wait_all_tasks_blocked()

        async def asker() -> None:
            try:
                outcomes.append(await ref.ask("old-ask"))
            except actors.MailboxFull as exc:
                outcomes.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(asker)
            await trio.testing.wait_all_tasks_blocked()
            ref.tell("t1")
            ref.tell("t2")  # drops the ask
            await ref.send("t3")  # drops t1
            await trio.testing.wait_all_tasks_blocked()
            assert len(outcomes) == 1
            assert isinstance(outcomes[0], actors.MailboxFull)
            gate.set()
            await trio.testing.wait_all_tasks_blocked()
        await ref.ask("sync")
        assert log == ["in-hand", "t2", "t3", "sync"]


async def test_order_per_sender_is_kept(autojump_clock: trio.testing.MockClock) -> None:
    """With many senders, each sender's messages are handled in the order it sent them."""
    log: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Echo, log, mailbox_size=7)

        async def sender(s: int) -> None:
            for i in range(20):
                if i % 3 == 0:
                    await ref.ask((s, i))
                else:
                    await ref.send((s, i))

        async with trio.open_nursery() as nursery:
            for s in range(100):
                nursery.start_soon(sender, s)
        await ref.ask("end")
    assert len(log) == 2001
    for s in range(100):
        assert [i for (who, i) in log[:-1] if who == s] == list(range(20))


async def test_cancelled_sender_queues_nothing_and_frees_its_place(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A send cancelled while waiting for room queues nothing; the next waiter gets in."""
    gate, log = trio.Event(), list[Any]()
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Gate, gate, log, mailbox_size=1)
        ref.tell("in-hand")
        await trio.testing.wait_all_tasks_blocked()
        ref.tell("queued")
        scope = trio.CancelScope()

        async def doomed() -> None:
            with scope:
                await ref.send("cancelled")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.send, "later")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(doomed)
            await trio.testing.wait_all_tasks_blocked()
            assert ref.statistics().waiting_senders == 2
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert ref.statistics().waiting_senders == 1
            gate.set()
        await ref.ask("end")
    assert log == ["in-hand", "queued", "later", "end"]


async def test_stop_answers_waiting_senders(autojump_clock: trio.testing.MockClock) -> None:
    """Senders blocked on a full mailbox get ActorStopped when the actor stops."""
    gate = trio.Event()
    errors: list[BaseException] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Gate, gate, [], mailbox_size=1)
        ref.tell("in-hand")
        await trio.testing.wait_all_tasks_blocked()
        ref.tell("queued")

        async def sender() -> None:
            with pytest.raises(actors.ActorStopped) as info:
                await ref.send("blocked")
            errors.append(info.value)

        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(sender)
            await trio.testing.wait_all_tasks_blocked()
            await system.stop(ref, grace=0)
    assert len(errors) == 10


class MailboxMachine(RuleBasedStateMachine):
    """The pure mailbox against a model: a list of queued items and a list of waiters."""

    def __init__(self) -> None:
        super().__init__()
        self.mailbox: Mailbox[int, int] | None = None
        self.queue: list[int] = []
        self.waiting: list[int] = []
        self.next = 0

    @precondition(lambda self: self.mailbox is None)
    @rule(capacity=st.integers(1, 4), overflow=st.sampled_from(actors.Overflow))
    def create(self, capacity: int, overflow: actors.Overflow) -> None:
        self.mailbox = Mailbox(capacity, overflow)
        self.capacity = capacity
        self.overflow = overflow

    @precondition(lambda self: self.mailbox is not None)
    @rule(wait=st.booleans())
    def offer(self, wait: bool) -> None:
        assert self.mailbox is not None
        item = self.next
        self.next += 1
        verdict, dropped = self.mailbox.offer(item)
        if len(self.queue) < self.capacity and not self.waiting:
            assert (verdict, dropped) == (Admission.ACCEPTED, None)
            self.queue.append(item)
        elif self.overflow is actors.Overflow.DROP_OLDEST:
            assert (verdict, dropped) == (Admission.DROPPED, self.queue.pop(0))
            self.queue.append(item)
        elif self.overflow is actors.Overflow.REJECT:
            assert verdict is Admission.REJECTED
        else:
            assert verdict is Admission.FULL
            if wait:
                self.mailbox.wait(item, item)
                self.waiting.append(item)

    @precondition(lambda self: self.mailbox is not None and self.queue)
    @rule()
    def take(self) -> None:
        assert self.mailbox is not None
        assert self.mailbox.take() == self.queue.pop(0)
        admitted = self.mailbox.admit()
        if self.waiting:
            assert admitted == self.waiting[0]
            self.queue.append(self.waiting.pop(0))
        else:
            assert admitted is None

    @precondition(lambda self: self.mailbox is not None and (self.queue or self.waiting))
    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        assert self.mailbox is not None
        item = data.draw(st.sampled_from(self.queue + self.waiting))
        if item in self.queue:
            assert self.mailbox.remove(item)
            assert not self.mailbox.remove_waiter(item)
            self.queue.remove(item)
            if self.mailbox.admit() is not None:
                self.queue.append(self.waiting.pop(0))
        else:
            assert not self.mailbox.remove(item)
            assert self.mailbox.remove_waiter(item)
            self.waiting.remove(item)

    @precondition(lambda self: self.mailbox is not None)
    @rule()
    def drain(self) -> None:
        assert self.mailbox is not None
        assert self.mailbox.drain() == (self.queue, self.waiting)
        self.queue, self.waiting = [], []

    @invariant()
    def matches_the_model(self) -> None:
        if self.mailbox is not None:
            assert list(self.mailbox.queue) == self.queue
            assert [w for _, w in self.mailbox.waiting] == self.waiting
            assert len(self.mailbox.queue) <= self.capacity
            assert not self.waiting or len(self.queue) == self.capacity
            assert repr(self.mailbox).startswith(f"<Mailbox {len(self.queue)}/")


TestMailboxMachine = MailboxMachine.TestCase
