"""The cell: one actor's slot and the run loop of its single task.

The cell owns what survives a restart: the mailbox, the system lane (``Down`` messages), the
watchers, the ref and the counters. The instance it runs is replaceable.

Control requests (stop, restart) are not queued: they are a field (``_control``) that the loop
reads before every message, so they overtake every user message and every ``Down``. A stop or a
restart of a busy actor sets the deadline of the cancel scope around the handler to
``now + grace``: the message in hand may finish until then, and is cancelled after.
"""

from __future__ import annotations

import collections
import enum
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import outcome
import trio

from ._actor import Actor, ActorContext
from ._envelope import Phase, Request, SendWaiter
from ._errors import ActorStopped, AskTimeout, MailboxFull
from ._mailbox import Admission, Mailbox
from ._messages import ActorState, ActorStatistics, Down, Overflow
from ._ref import ActorRef

if TYPE_CHECKING:
    from ._hook import SupervisorHook
    from ._system import ActorSystem

__all__ = ["Cell"]

M = TypeVar("M")

# Messages served back to back before the loop yields to the scheduler once (fairness).
_BATCH = 64
_INF = math.inf


class _Control(enum.Enum):
    STOP = "stop"
    RESTART = "restart"


class _RestartWaiter:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: BaseException | None = None


class Cell(Generic[M]):
    """One actor's slot and its run loop (private; users hold an :class:`ActorRef`)."""

    __slots__ = (
        "__weakref__",
        "_busy",
        "_closed",
        "_control",
        "_current",
        "_factory",
        "_factory_args",
        "_factory_kwargs",
        "_grace_deadline",
        "_hook",
        "_instance",
        "_last_error",
        "_parked",
        "_restart_waiters",
        "_scope",
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
        self._instance: Actor[M] | None = None
        self._task: trio.lowlevel.Task | None = None
        self._parked = False
        self._closed = False
        self._busy = False
        self._current: Request | None = None
        self._control: _Control | None = None
        self._scope: trio.CancelScope | None = None
        self._grace_deadline = _INF
        self._stop_reason: BaseException | None = None
        self._last_error: Exception | None = None
        # Created on first use, to keep an idle actor small.
        self._system_lane: collections.deque[Down] | None = None
        self._watchers: dict[Cell[Any], None] | None = None
        self._watching: dict[Cell[Any], None] | None = None
        self._restart_waiters: list[_RestartWaiter] | None = None
        self._stopped: trio.Event | None = None

    def __repr__(self) -> str:
        return f"<Cell {self.name!r} {self.state.value}>"

    # ------------------------------------------------------------------ observation

    def statistics(self) -> ActorStatistics:
        """A snapshot of this actor."""
        return ActorStatistics(
            name=self.name,
            state=self.state,
            queued=len(self.mailbox.queue),
            waiting_senders=len(self.mailbox.waiting),
            in_flight=1 if self._busy else 0,
            processed=self.processed,
            failures=self.failures,
            restarts=self.restarts,
            mailbox_size=self.mailbox.capacity,
            overflow=self.mailbox.overflow,
            stop_reason=self._stop_reason if self.state is ActorState.STOPPED else None,
        )

    def stopped_error(self) -> ActorStopped:
        """A fresh :class:`ActorStopped` for this actor (one per caller, for clean tracebacks)."""
        return ActorStopped(self.name, self._stop_reason)

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
        if len(queue) < mailbox.capacity and not mailbox.waiting:
            # Mailbox.offer's accepting branch, inlined: this is the hottest path of all.
            queue.append(message)
            if self._parked:
                self._parked = False
                trio.lowlevel.reschedule(self._task)  # type: ignore[arg-type]
            return
        self._overflowed(*mailbox.offer(message))

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
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise TypeError(f"`timeout` must be a number of seconds or None (got {seconds!r})")
            if not seconds >= 0:  # also refuses NaN
                raise ValueError(f"`timeout` must be >= 0 (got {seconds!r})")
            deadline = trio.current_time() + seconds
        request = Request(self, message, trio.lowlevel.current_task(), seconds, deadline)
        verdict, dropped = self.mailbox.offer(request)
        if verdict is Admission.ACCEPTED:
            if self._parked:
                self._parked = False
                trio.lowlevel.reschedule(self._task)  # type: ignore[arg-type]
        elif verdict is Admission.FULL:
            request.phase = Phase.WAITING_ROOM
            self.mailbox.wait(request, request)
        else:
            self._overflowed(verdict, dropped)
        if deadline == _INF:
            return await trio.lowlevel.wait_task_rescheduled(request.abort)
        with trio.CancelScope(deadline=deadline):
            return await trio.lowlevel.wait_task_rescheduled(request.abort)
        # Only reached when the deadline cancelled the wait (the request was abandoned).
        raise AskTimeout(self.name, seconds)  # type: ignore[arg-type]

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

    # ------------------------------------------------------------------ control

    def _apply_grace(self, grace: float | None) -> None:
        if grace is None:
            return
        deadline = trio.current_time() + grace
        self._grace_deadline = min(self._grace_deadline, deadline)
        scope = self._scope
        if scope is not None:
            if grace <= 0:
                scope.cancel()
            else:
                scope.deadline = min(scope.deadline, deadline)

    def request_stop(self, reason: BaseException | None, grace: float | None) -> None:
        """Ask the loop to stop (idempotent; a later call may only shorten the grace)."""
        if self.state is ActorState.STOPPED:
            return
        if self._control is not _Control.STOP:
            self._control = _Control.STOP
            self._stop_reason = reason
        self._closed = True
        self.state = ActorState.STOPPING
        self._apply_grace(grace)
        self._wake()

    async def wait_stopped(self) -> None:
        """Return once the actor is STOPPED."""
        if self.state is ActorState.STOPPED:
            return
        if self._stopped is None:
            self._stopped = trio.Event()
        await self._stopped.wait()

    async def restart(self, grace: float | None) -> None:
        """Restart with a fresh instance; see ``ActorSystem.restart``."""
        if self._closed:
            raise self.stopped_error()
        if self._control is None:
            self._control = _Control.RESTART
            if self._instance is not None:
                self._apply_grace(grace)
            self._wake()
        waiter = _RestartWaiter()
        if self._restart_waiters is None:
            self._restart_waiters = []
        self._restart_waiters.append(waiter)
        await waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error

    def _release_restart_waiters(self, error: BaseException | None) -> None:
        waiters = self._restart_waiters
        if waiters:
            self._restart_waiters = None
            for waiter in waiters:
                waiter.error = error
                waiter.done.set()

    # ------------------------------------------------------------------ watching

    def watch(self, target: Cell[Any]) -> None:
        """Make this cell a watcher of ``target`` (see ``ActorContext.watch``)."""
        if target.state is ActorState.STOPPED:
            self.deliver_down(Down(ref=target.ref, reason=target._stop_reason))
            return
        if target._watchers is None:
            target._watchers = {}
        target._watchers[self] = None
        if self._watching is None:
            self._watching = {}
        self._watching[target] = None

    def unwatch(self, target: Cell[Any]) -> None:
        """Stop watching ``target``; drop its undelivered ``Down``."""
        if target._watchers is not None:
            target._watchers.pop(self, None)
        if self._watching is not None:
            self._watching.pop(target, None)
        lane = self._system_lane
        if lane:
            self._system_lane = collections.deque(d for d in lane if d.ref is not target.ref)

    def deliver_down(self, down: Down) -> None:
        """Put ``down`` on the system lane (served before user messages)."""
        if self.state is ActorState.STOPPED:
            return
        if self._system_lane is None:
            self._system_lane = collections.deque()
        self._system_lane.append(down)
        self._wake()

    # ------------------------------------------------------------------ the task

    def _make_instance(self) -> Actor[M]:
        instance = self._factory(*self._factory_args, **self._factory_kwargs)
        if not isinstance(instance, Actor):
            raise TypeError(
                f"`factory` must return an Actor instance (got {type(instance).__name__})"
            )
        instance._actor_context = self.context
        return instance

    async def run(self, *, task_status: trio.TaskStatus[Exception | None]) -> None:
        """The actor's task: start, serve until stopped, finish. ``task_status.started`` gets
        None once ``on_start`` finished, or the exception that made the start fail."""
        self._task = trio.lowlevel.current_task()
        reason: BaseException | None = None
        try:
            try:
                instance = self._make_instance()
                await instance.on_start()
            except Exception as exc:
                reason = exc
                task_status.started(exc)
                return
            self._instance = instance
            if self._control is None:
                self.state = ActorState.RUNNING
            task_status.started(None)
            reason = await self._lifecycle()
        except BaseException as exc:
            reason = exc
            raise
        finally:
            self._finish(reason)

    async def _lifecycle(self) -> BaseException | None:
        while True:
            with trio.CancelScope(deadline=self._grace_deadline) as scope:
                self._scope = scope
                if self._control is _Control.RESTART:
                    await self._replace_instance()
                else:
                    await self._serve()
            self._scope = None
            if self._busy:  # cancelled with a message in hand
                self._busy = False
                request, self._current = self._current, None
                if request is not None:
                    request.answer(outcome.Error(self.stopped_error()))
            if self._control is _Control.STOP:
                break
        reason = self._stop_reason
        instance, self._instance = self._instance, None
        if instance is not None:
            try:
                await instance.on_stop(reason)
            except Exception as exc:
                reason = exc
        return reason

    async def _replace_instance(self) -> None:
        # Restart: stop the running instance (if any), make a fresh one, run on_restart.
        old, self._instance = self._instance, None
        self.state = ActorState.STARTING
        error = self._last_error
        try:
            if old is not None:
                await old.on_stop(None)
            fresh = self._make_instance()
            await fresh.on_restart(error)
        except Exception as exc:
            self._last_error = exc
            if self._control is _Control.STOP:
                pass
            elif self._hook is not None:
                self._control = None
                self._grace_deadline = _INF
                self.state = ActorState.SUSPENDED
            else:
                self._control = None
                self.request_stop(exc, None)
            self._release_restart_waiters(exc)
            return
        self._instance = fresh
        self._last_error = None
        self.restarts += 1
        if self._control is _Control.RESTART:
            self._control = None
            self._grace_deadline = _INF
            self.state = ActorState.RUNNING
        self._release_restart_waiters(None)

    def _crash(self, error: Exception) -> None:
        self._instance = None
        self.failures += 1
        self._last_error = error
        if self._control is not None:
            return  # a stop (or restart) is already on its way
        hook = self._hook
        if hook is None:
            self._control = _Control.RESTART
            return
        self.state = ActorState.SUSPENDED
        try:
            hook.child_failed(self.ref, error)
        except Exception as exc:
            self.request_stop(exc, None)

    def _abort_park(self, _raise_cancel: Any) -> trio.lowlevel.Abort:
        self._parked = False
        return trio.lowlevel.Abort.SUCCEEDED

    async def _serve(self) -> None:
        # Serve the system lane, then the mailbox, until a control request is pending.
        mailbox = self.mailbox
        queue = mailbox.queue
        batch = _BATCH
        while self._control is None:
            instance = self._instance
            if instance is None:  # suspended: only control requests are served
                self._parked = True
                await trio.lowlevel.wait_task_rescheduled(self._abort_park)
                continue
            lane = self._system_lane
            if lane:
                await self._handle(instance, lane.popleft())
                continue
            if not queue:
                batch = _BATCH
                self._parked = True  # woken by _wake (inlined in tell/ask: hot path)
                await trio.lowlevel.wait_task_rescheduled(self._abort_park)
                continue
            item = mailbox.take()
            if mailbox.waiting:
                self._admit()
            if type(item) is Request:
                await self._handle(instance, item)
            else:  # a one-way message, handled inline (the throughput path)
                self._busy = True
                try:
                    await instance.receive(item)
                except Exception as exc:
                    self._busy = False
                    self.processed += 1
                    self._crash(exc)
                    continue
                self._busy = False
                self.processed += 1
            batch -= 1
            if not batch:
                batch = _BATCH
                await trio.lowlevel.checkpoint()

    async def _handle(self, instance: Actor[M], item: Any) -> None:
        if type(item) is Request:
            request: Request | None = item
            deadline = item.deadline
            if deadline != _INF and trio.current_time() >= deadline:
                # Load shedding: it expired while queued; the handler never sees it.
                item.phase = Phase.STARTED
                item.answer(outcome.Error(AskTimeout(self.name, item.timeout)))  # type: ignore[arg-type]
                return
            item.phase = Phase.STARTED
            message = item.message
        else:
            request = None
            deadline = _INF
            message = item
        self._current = request
        self._busy = True
        try:
            if deadline == _INF:
                result = await instance.receive(message)
            else:
                with trio.CancelScope(deadline=deadline) as scope:
                    result = await instance.receive(message)
                if scope.cancelled_caught and request is not None:  # a deadline is not a crash
                    self._busy = False
                    self._current = None
                    self.processed += 1
                    timeout: float = request.timeout  # type: ignore[assignment]
                    request.answer(outcome.Error(AskTimeout(self.name, timeout)))
                    return
        except Exception as exc:
            self._busy = False
            self._current = None
            self.processed += 1
            if request is not None and request.task is not None:
                exc.add_note(f"raised by actor {self.name!r} while handling an ask")
                request.answer(outcome.Error(exc))
            self._crash(exc)
            return
        self._busy = False
        self._current = None
        self.processed += 1
        if request is not None:
            request.answer(outcome.Value(result))

    def _finish(self, reason: BaseException | None) -> None:
        # Final: answer everything still pending, tell the watchers, leave the registry.
        self.state = ActorState.STOPPED
        self._closed = True
        self._stop_reason = reason
        self._instance = None
        self._scope = None
        if self._busy:
            self._busy = False
            request, self._current = self._current, None
            if request is not None:
                request.answer(outcome.Error(self.stopped_error()))
        items, waiters = self.mailbox.drain()
        for item in items:
            if type(item) is Request:
                item.answer(outcome.Error(self.stopped_error()))
        for waiter in waiters:
            waiter.answer(outcome.Error(self.stopped_error()))
        self._release_restart_waiters(self.stopped_error())
        self._system_lane = None
        self.system._forget(self)
        if self._watching:
            for target in self._watching:
                if target._watchers is not None:
                    target._watchers.pop(self, None)
            self._watching = None
        if self._watchers:
            down = Down(ref=self.ref, reason=reason)
            watchers, self._watchers = self._watchers, None
            for watcher in watchers:
                watcher.deliver_down(down)
        if self._stopped is not None:
            self._stopped.set()
