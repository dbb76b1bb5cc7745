"""The cell: one actor's slot, what its callers do to it, and its single-handler loop.

The cell owns what survives a restart: the mailbox, the system lane (``Down`` messages), the
watchers, the ref and the counters. The instance it runs is replaceable. Its state is the
:class:`Cell`'s slots; the modules that hold its other parts are functions that take the cell
and read and write those slots directly (no mixins, no delegating methods), so that no part adds
a call or a lookup to another's path:

- here: the slots, observation (``statistics``, repr), the callers' side (``tell``, ``send``,
  ``ask``, a withdrawn request, a waiting sender let in) and the loop that serves one message
  at a time, inline in the actor's task (``_serve``, ``_handle``; ``max_concurrency == 1``,
  the default);
- ``_lifecycle.py``: the actor's task from start to finish (``on_start`` and the spawn
  handshake, the serving scopes, the restarts and suspensions carried out, the final stop);
- ``_control.py``: control requests (stop, restart, suspend), which are a field the loops read
  before every message, not queued messages, so they overtake every user message and every
  ``Down``; and crashes (restart in place, or suspend and tell the supervisor hook);
- ``_pool.py``: ``max_concurrency > 1``: the actor's task becomes a dispatcher that starts one
  task per message in a nursery inside the same serving scope (its :class:`Pool` does not
  exist for the default, which costs nothing extra);
- ``_watching.py``: ``watch``, ``unwatch`` and the ``Down`` a stop sends the watchers.

Costs kept off the paths that run per message or per idle actor:

- An actor that never got a message holds no cancel scope and no queue: its task parks in
  ``_lifecycle.run`` itself until the first message or control request (an idle actor is its
  task, two frames, the cell and its ref, context and mailbox; see ``bench/actors_bench.py``).
- The deadline of a request (``ask(timeout=...)``) is carried by the serving scope itself: one
  deadline change of that scope as the handler starts, instead of a scope per request. It stays
  there after the handler until a message with another deadline (or none) starts; if it passes
  meanwhile, the loop opens a fresh serving scope before the next message, so a stale deadline
  never cancels another message. A handler cancelled by its own deadline is answered with
  ``AskTimeout`` and is not a crash. (With ``max_concurrency > 1`` each handler task has its own
  scope.) The caller has no scope at all: the system's deadline keeper answers it at the deadline
  if nothing else did (``_deadlines.py``).
- ``tell`` and ``ask`` inline the mailbox's accepting branch and the wake-up of a parked actor;
  ``_serve`` and ``_handle`` are the whole per-message path of the default actor.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

import outcome
import trio

from ._actor import Actor, ActorContext
from ._control import Control, ControlWaiter, crash
from ._envelope import STARTED, Phase, Request, SendWaiter
from ._errors import ActorStopped, AskTimeout, MailboxFull
from ._mailbox import NO_QUEUE, Admission, Mailbox
from ._mailbox import SERVE_BATCH as _BATCH
from ._messages import ActorState, ActorStatistics, Down, Overflow
from ._pool import Pool
from ._ref import ActorRef

if TYPE_CHECKING:
    from ._hook import SupervisorHook
    from ._system import ActorSystem

__all__ = ["Cell"]

M = TypeVar("M")

_INF = math.inf
_NUMBER = (int, float)
_UNREAD = -math.inf  # the current time, not read yet


class Cell(Generic[M]):
    """One actor's slot and its run loop (private; users hold an :class:`ActorRef`)."""

    __slots__ = (
        "__weakref__",
        "_busy",
        "_closed",
        "_control",
        "_control_waiters",
        "_current",
        "_deadline_set",
        "_factory",
        "_factory_args",
        "_factory_kwargs",
        "_grace_deadline",
        "_hook",
        "_instance",
        "_last_error",
        "_parked",
        "_pool",
        "_scope",
        "_spawner",
        "_start_cancel",
        "_stop_reason",
        "_stopped",
        "_system_lane",
        "_task",
        "_watchers",
        "_watching",
        "context",
        "failures",
        "mailbox",
        "name",
        "processed",
        "ref",
        "restarts",
        "state",
        "stop_hooks_cut_off",
        "system",
    )

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        factory: Callable[..., Actor[M]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        mailbox_size: int,
        overflow: Overflow,
        hook: SupervisorHook | None,
        max_concurrency: int = 1,
    ) -> None:
        self.system = system
        self.name = name
        self._factory = factory
        self._factory_args = args
        self._factory_kwargs = kwargs
        self._hook = hook
        self.mailbox: Mailbox[Any, Request] = Mailbox(mailbox_size, overflow)
        self.ref: ActorRef[M] = ActorRef(self)
        self.context = ActorContext(self)
        self.state = ActorState.STARTING
        self.processed = 0
        self.failures = 0
        self.restarts = 0
        self.stop_hooks_cut_off = 0
        self._instance: Actor[M] | None = None
        self._task: trio.lowlevel.Task | None = None
        self._parked = False
        self._closed = False
        self._busy = False
        self._current: Request | None = None
        self._control: Control | None = None
        self._scope: trio.CancelScope | None = None
        self._grace_deadline = _INF
        # The deadline of a request that the serving scope carries (inf: it carries the grace
        # deadline only); see _handle.
        self._deadline_set = _INF
        # The task waiting in spawn for on_start, and how to cancel it if that task is cancelled.
        self._spawner: trio.lowlevel.Task | None = None
        self._start_cancel: Callable[[], NoReturn] | None = None
        self._stop_reason: BaseException | None = None
        self._last_error: Exception | None = None
        # Created on first use, to keep an idle actor small.
        self._system_lane: collections.deque[Down] | None = None
        self._watchers: dict[Cell[Any], None] | None = None
        self._watching: dict[Cell[Any], None] | None = None
        self._control_waiters: list[ControlWaiter] | None = None
        self._stopped: trio.Event | None = None
        self._pool = Pool(max_concurrency) if max_concurrency > 1 else None

    def __repr__(self) -> str:
        pool = self._pool
        if pool is None:
            return f"<Cell {self.name!r} {self.state.value}>"
        return f"<Cell {self.name!r} {self.state.value}, {pool.in_flight}/{pool.limit} in flight>"

    # ------------------------------------------------------------------ observation

    @property
    def max_concurrency(self) -> int:
        """How many messages one instance may handle at the same time."""
        pool = self._pool
        return 1 if pool is None else pool.limit

    @property
    def in_flight(self) -> int:
        """Messages in hand now (handlers started and not finished)."""
        pool = self._pool
        if pool is None:
            return 1 if self._busy else 0
        return pool.in_flight

    def statistics(self) -> ActorStatistics:
        """A snapshot of this actor."""
        pool = self._pool
        return ActorStatistics(
            name=self.name,
            state=self.state,
            queued=len(self.mailbox.queue),
            waiting_senders=len(self.mailbox.waiting),
            in_flight=(1 if self._busy else 0) if pool is None else pool.in_flight,
            max_concurrency=1 if pool is None else pool.limit,
            processed=self.processed,
            failures=self.failures,
            restarts=self.restarts,
            stop_hooks_cut_off=self.stop_hooks_cut_off,
            mailbox_size=self.mailbox.capacity,
            overflow=self.mailbox.overflow,
            stop_reason=self._stop_reason if self.state is ActorState.STOPPED else None,
        )

    def stopped_error(self) -> ActorStopped:
        """A fresh :class:`ActorStopped` for this actor (one per caller, for clean tracebacks)."""
        return ActorStopped(self.name, self._stop_reason)

    async def wait_stopped(self) -> None:
        """Return once the actor is STOPPED."""
        if self.state is ActorState.STOPPED:
            return
        if self._stopped is None:
            self._stopped = trio.Event()
        await self._stopped.wait()

    # ------------------------------------------------------------------ callers' side

    def _wake(self) -> None:
        if self._parked:
            self._parked = False
            trio.lowlevel.reschedule(self._task)  # type: ignore[arg-type]

    def _overflowed(self, verdict: Admission, dropped: Any) -> None:
        # Slow path of a message that found the mailbox full (not for WAIT + send/ask).
        if verdict is Admission.DROPPED:
            if type(dropped) is Request:
                dropped.answer(outcome.Error(MailboxFull(self.name, self.mailbox.capacity)))
            self._wake()
            return
        raise MailboxFull(self.name, self.mailbox.capacity)

    def tell(self, message: M) -> None:
        """Queue ``message`` without waiting (see ``ActorRef.tell``)."""
        if self._closed:
            raise self.stopped_error()
        mailbox = self.mailbox
        queue = mailbox.queue
        if len(queue) < mailbox.capacity and not mailbox.waiting and queue is not NO_QUEUE:
            # Mailbox.offer's accepting branch, inlined: this is the hottest path of all.
            queue.append(message)
            if self._parked:
                self._parked = False
                trio.lowlevel.reschedule(self._task)  # type: ignore[arg-type]
            return
        verdict, dropped = mailbox.offer(message)
        if verdict is Admission.ACCEPTED:  # the first message of a fresh mailbox
            self._wake()
            return
        self._overflowed(verdict, dropped)

    async def send(self, message: M) -> None:
        """Queue ``message``, waiting for room (see ``ActorRef.send``)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise self.stopped_error()
        verdict, dropped = self.mailbox.offer(message)
        if verdict is Admission.FULL:
            waiter = SendWaiter(self, message, trio.lowlevel.current_task(), None, _INF)
            waiter.phase = Phase.WAITING_ROOM
            self.mailbox.wait(message, waiter)
            await trio.lowlevel.wait_task_rescheduled(waiter.abort)
            return
        if verdict is Admission.ACCEPTED:
            self._wake()
        else:
            self._overflowed(verdict, dropped)
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def ask(self, message: M, seconds: float | None) -> Any:
        """Send a request and wait for its outcome (see ``ActorRef.ask``)."""
        if self._closed:
            raise self.stopped_error()
        if seconds is None:
            deadline = _INF
        else:
            if isinstance(seconds, bool) or not isinstance(seconds, _NUMBER):
                raise TypeError(f"`timeout` must be a number of seconds or None (got {seconds!r})")
            if not seconds >= 0:  # also refuses NaN
                raise ValueError(f"`timeout` must be >= 0 (got {seconds!r})")
            deadline = trio.current_time() + seconds
        request = Request(self, message, trio.lowlevel.current_task(), seconds, deadline)
        mailbox = self.mailbox
        queue = mailbox.queue
        if len(queue) < mailbox.capacity and not mailbox.waiting and queue is not NO_QUEUE:
            queue.append(request)  # Mailbox.offer's accepting branch, inlined (as in tell)
            if self._parked:
                self._parked = False
                trio.lowlevel.reschedule(self._task)  # type: ignore[arg-type]
        else:
            verdict, dropped = mailbox.offer(request)
            if verdict is Admission.ACCEPTED:
                self._wake()
            elif verdict is Admission.FULL:
                request.phase = Phase.WAITING_ROOM
                mailbox.wait(request, request)
            else:
                self._overflowed(verdict, dropped)
        if deadline != _INF:
            # Answered at the deadline by the system's deadline keeper, if not before: no cancel
            # scope here (the handler's scope carries the same deadline).
            self.system._deadlines.watch(request)
        return await trio.lowlevel.wait_task_rescheduled(request.abort)

    def withdraw(self, request: Request, *, waiting: bool) -> None:
        """Take an abandoned, not yet started request out of the mailbox (caller cancelled)."""
        if waiting:
            self.mailbox.remove_waiter(request)
        elif self.mailbox.remove(request):
            self._admit()

    def _admit(self) -> None:
        # Room freed: let the first waiting sender in.
        waiter = self.mailbox.admit()
        if waiter is not None:
            if type(waiter) is SendWaiter:
                waiter.phase = Phase.STARTED  # its message is queued: the send is done
                waiter.answer(outcome.Value(None))
            else:
                waiter.phase = Phase.QUEUED
            self._wake()

    # ------------------------------------------------------------------ the spawn handshake

    def abort_start(self, raise_cancel: Callable[[], NoReturn]) -> trio.lowlevel.Abort:
        """``abort_fn`` of the task waiting in spawn: cancel ``on_start``; that task is answered
        with its cancellation once the start has unwound (as ``nursery.start`` does)."""
        if self._spawner is None or self.state is ActorState.STOPPED:
            self._spawner = None
            return trio.lowlevel.Abort.SUCCEEDED
        self._start_cancel = raise_cancel
        scope = self._scope
        if scope is not None:
            scope.cancel()
        return trio.lowlevel.Abort.FAILED

    def expect_spawner(self, spawner: trio.lowlevel.Task) -> None:
        """``spawner`` is about to park in spawn, with :meth:`abort_start` as abort function,
        until the actor's task (``_lifecycle.run``) answers it (before that task is started)."""
        self._spawner = spawner

    # ------------------------------------------------------------------ serving, one at a time

    def _abort_park(self, _raise_cancel: Any) -> trio.lowlevel.Abort:
        self._parked = False
        return trio.lowlevel.Abort.SUCCEEDED

    async def _serve(self) -> None:  # noqa: PLR0912 - the hot loop stays one frame
        # Serve the system lane, then the mailbox, until a control request is pending, or until
        # the serving scope must be replaced: the deadline of an earlier request that it still
        # carries has passed.
        mailbox = self.mailbox
        queue = mailbox.ensure_queue()
        batch = _BATCH
        while self._control is None:
            instance = self._instance
            if instance is None:  # suspended: only control requests are served
                self._parked = True
                await trio.lowlevel.wait_task_rescheduled(self._abort_park)
                continue
            lane = self._system_lane
            if not lane and not queue:
                batch = _BATCH
                self._parked = True  # woken by _wake (inlined in tell/ask: hot path)
                await trio.lowlevel.wait_task_rescheduled(self._abort_park)
                continue
            carried = self._deadline_set
            if carried != _INF:
                now = trio.current_time()
                if carried <= now:
                    # The scope carries the deadline of an earlier request, passed by now: it
                    # is cancelled, or will be at the next checkpoint. A fresh one first.
                    return
            else:
                now = _UNREAD
            if lane:
                await self._handle(instance, lane.popleft(), now)
                continue
            item = mailbox.take()
            if mailbox.waiting:
                self._admit()
            if type(item) is Request:
                await self._handle(instance, item, now)
            else:  # a one-way message, handled inline (the throughput path)
                if self._deadline_set != _INF:
                    self._carry_deadline(_INF)
                self._busy = True
                try:
                    await instance.receive(item)
                except Exception as exc:
                    self._busy = False
                    self.processed += 1
                    crash(self, exc)
                    continue
                self._busy = False
                self.processed += 1
            batch -= 1
            if not batch:
                batch = _BATCH
                await trio.lowlevel.checkpoint()

    def _carry_deadline(self, deadline: float) -> None:
        # Give the serving scope the deadline of the message about to start (inf: none); the
        # grace deadline of a pending control request still bounds it.
        self._deadline_set = deadline
        scope = self._scope
        if scope is not None:
            grace = self._grace_deadline
            scope.deadline = deadline if deadline < grace else grace

    async def _handle(self, instance: Actor[M], item: Any, now: float) -> None:
        # One message in the actor's own task (max_concurrency == 1). The request's deadline is
        # carried by the serving scope itself (one deadline change, not a scope per request); it
        # stays there after the handler, until a message with another deadline starts (a stale
        # deadline that fires meanwhile only makes _serve open a fresh scope). A handler
        # cancelled by it is answered in _lifecycle. ``now``: the time, if read in this step.
        if type(item) is Request:
            request: Request | None = item
            deadline = item.deadline
            item.phase = STARTED
            if deadline != _INF and (trio.current_time() if now == _UNREAD else now) >= deadline:
                # Load shedding: it expired while queued; the handler never sees it.
                item.answer(outcome.Error(AskTimeout(self.name, item.timeout)))  # type: ignore[arg-type]
                return
            message = item.message
        else:
            request = None
            deadline = _INF
            message = item
        if deadline != self._deadline_set:
            self._carry_deadline(deadline)
        self._current = request
        self._busy = True
        try:
            result = await instance.receive(message)
        except Exception as exc:
            self._busy = False
            self._current = None
            self.processed += 1
            if request is not None and request.task is not None:
                exc.add_note(f"raised by actor {self.name!r} while handling an ask")
                request.answer(outcome.Error(exc))
            crash(self, exc)
            return
        self._busy = False
        self._current = None
        self.processed += 1
        if request is not None:
            request.answer(outcome.Value(result))
