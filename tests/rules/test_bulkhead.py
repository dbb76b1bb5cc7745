"""Tests of the bulkhead rule: the pure slot/queue core and its trio shell."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from supervisor import Bulkhead, BulkheadFullError, ConfigError, bulkhead
from supervisor.rules._bulkhead import Admission, BulkheadCore


class BulkheadMachine(RuleBasedStateMachine):
    """Arrivals, completions and cancellations against a model of slots plus a FIFO queue."""

    def __init__(self) -> None:
        super().__init__()
        self.core: BulkheadCore[int] = BulkheadCore(2, 3)
        self.running: set[int] = set()
        self.queue: list[int] = []
        self.next_ticket = 0

    @rule()
    def arrive(self) -> None:
        """A call arrives: it runs, queues, or is refused, exactly as the model says."""
        ticket = self.next_ticket
        self.next_ticket += 1
        admission = self.core.offer(ticket)
        if len(self.running) < 2:
            assert admission is Admission.RUN
            self.running.add(ticket)
        elif len(self.queue) < 3:
            assert admission is Admission.QUEUED
            self.queue.append(ticket)
        else:
            assert admission is Admission.REFUSED

    @precondition(lambda self: self.running)
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        """A running call ends: the oldest waiter, if any, gets its slot."""
        ticket = data.draw(st.sampled_from(sorted(self.running)))
        self.running.remove(ticket)
        woken = self.core.leave()
        if self.queue:
            assert woken == self.queue.pop(0)
            self.running.add(woken)
        else:
            assert woken is None

    @precondition(lambda self: self.queue)
    @rule(data=st.data())
    def cancel_waiter(self, data: st.DataObject) -> None:
        """A waiter is cancelled: its queue place is freed."""
        ticket = data.draw(st.sampled_from(self.queue))
        assert self.core.cancel(ticket)
        self.queue.remove(ticket)
        assert not self.core.cancel(ticket)

    @invariant()
    def matches_model(self) -> None:
        """Never more than max_concurrent running nor max_queued waiting; FIFO order kept."""
        assert self.core.running == len(self.running) <= 2
        assert list(self.core.waiting()) == self.queue
        assert len(self.queue) <= 3
        assert not self.queue or self.core.running == 2


TestBulkheadCore = BulkheadMachine.TestCase


def test_core_leave_without_slot_raises() -> None:
    """Giving back a slot never taken is a bug and is reported."""
    with pytest.raises(RuntimeError):
        BulkheadCore[int](1, 0).leave()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"max_concurrent": 0}, "`max_concurrent` must be an integer >= 1 (got 0)"),
        ({"max_queued": -1}, "`max_queued` must be an integer >= 0 (got -1)"),
        ({"max_concurrent": 2.0}, "max_concurrent"),
    ],
)
def test_bad_parameters_raise_config_error(kwargs: dict[str, object], needle: str) -> None:
    """Bad values are refused when `bulkhead(...)` or `Bulkhead(...)` is called."""
    with pytest.raises(ConfigError) as info:
        bulkhead(**kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value)
    with pytest.raises(ConfigError):
        Bulkhead("x", **kwargs)  # type: ignore[arg-type]


def test_plain_function_is_refused() -> None:
    """A bulkhead waits with trio, so a plain function raises TypeError at decoration time."""
    with pytest.raises(TypeError):
        bulkhead()(lambda: None)


async def test_refusal_is_immediate_and_named() -> None:
    """Beyond slots and queue, a call is refused at once with the given name or the qualname."""
    release = trio.Event()

    @bulkhead(max_concurrent=1, max_queued=1)
    async def work() -> None:
        await release.wait()

    @bulkhead(max_concurrent=1, name="db")
    async def named() -> None:
        await release.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(work)
        nursery.start_soon(work)
        nursery.start_soon(named)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(BulkheadFullError) as info:
            await work()
        assert info.value.name == work.__qualname__
        with pytest.raises(BulkheadFullError) as info:
            await named()
        assert info.value.name == "db"
        release.set()


async def test_arrival_order_and_repr() -> None:
    """Waiters get slots in arrival order; the repr shows slots and queue."""
    gate = trio.Event()
    order: list[int] = []
    bh = Bulkhead("db", max_concurrent=2, max_queued=5)

    async def caller(i: int) -> None:
        async with bh:
            order.append(i)
            await gate.wait()

    async with trio.open_nursery() as nursery:
        for i in range(6):
            nursery.start_soon(caller, i)
            await trio.testing.wait_all_tasks_blocked()
        assert repr(bh) == "<Bulkhead 'db' 2/2 running, 4/5 queued>"
        assert bh.statistics().queued == 4
        gate.set()
    assert sorted(order) == [0, 1, 2, 3, 4, 5]
    assert repr(bh) == "<Bulkhead 'db' 0/2 running, 0/5 queued>"
    assert bh.statistics().admitted == 6


async def test_waiters_run_in_arrival_order() -> None:
    """With one slot, queued callers run strictly in the order they arrived."""
    gate = trio.Event()
    order: list[int] = []
    bh = Bulkhead("one", max_concurrent=1, max_queued=50)

    async def caller(i: int) -> None:
        async with bh:
            order.append(i)
            await gate.wait()

    async with trio.open_nursery() as nursery:
        for i in range(30):
            nursery.start_soon(caller, i)
            await trio.testing.wait_all_tasks_blocked()
        gate.set()
    assert order == list(range(30))


async def test_cancelled_waiter_frees_its_place() -> None:
    """A waiter cancelled in the queue leaves it, never runs, and lets a new caller queue."""
    gate = trio.Event()
    ran: list[str] = []

    @bulkhead(max_concurrent=1, max_queued=1)
    async def work(tag: str) -> None:
        ran.append(tag)
        await gate.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(work, "first")
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            nursery.start_soon(lambda: _cancel_soon(scope))
            await work("cancelled")
        assert scope.cancelled_caught
        assert work.bulkhead.statistics().queued == 0  # type: ignore[attr-defined]
        nursery.start_soon(work, "third")
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
    assert ran == ["first", "third"]


async def _cancel_soon(scope: trio.CancelScope) -> None:
    await trio.testing.wait_all_tasks_blocked()
    scope.cancel()


async def test_many_callers_with_cancellations(autojump_clock: trio.testing.MockClock) -> None:
    """150 callers through one bulkhead: concurrency never exceeds the limit, none is lost."""
    running = peak = 0
    done = refused = cancelled = 0

    @bulkhead(max_concurrent=5, max_queued=100)
    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await trio.sleep(1)
        finally:
            running -= 1

    async def caller(i: int) -> None:
        nonlocal done, refused, cancelled
        with trio.move_on_after(2.5 if i % 5 == 0 else 1000) as scope:
            try:
                await work()
            except BulkheadFullError:
                refused += 1
                return
        if scope.cancelled_caught:
            cancelled += 1
        else:
            done += 1

    async with trio.open_nursery() as nursery:
        for i in range(150):
            nursery.start_soon(caller, i)
    assert peak == 5
    assert refused == 150 - 5 - 100
    assert done + refused + cancelled == 150
    assert cancelled > 0
    stats = work.bulkhead.statistics()  # type: ignore[attr-defined]
    assert (stats.running, stats.queued, stats.refused) == (0, 0, 45)


async def test_shared_across_instances_and_metadata_kept() -> None:
    """A method's bulkhead is shared by every instance and keeps the wrapped metadata."""
    gate = trio.Event()

    class Repo:
        @bulkhead(max_concurrent=1)
        async def load(self) -> None:
            """Load."""
            await gate.wait()

    assert Repo.load.__doc__ == "Load."
    async with trio.open_nursery() as nursery:
        nursery.start_soon(Repo().load)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(BulkheadFullError) as info:
            await Repo().load()
        assert info.value.name.endswith("Repo.load")
        gate.set()


async def test_free_slot_takes_no_checkpoint() -> None:
    """With a slot free, entering is a plain check: a cancelled caller still enters."""
    bh = Bulkhead("fast", max_concurrent=1)
    with trio.CancelScope() as scope:
        scope.cancel()
        async with bh:
            assert bh.statistics().running == 1
    assert bh.statistics().running == 0


async def test_slot_released_on_error() -> None:
    """An exception in the guarded call gives the slot back."""
    bh = Bulkhead("err", max_concurrent=1)

    @bh
    async def boom() -> None:
        raise KeyError("x")

    for _ in range(3):
        with pytest.raises(KeyError):
            await boom()
    assert bh.statistics().running == 0
