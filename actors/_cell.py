"""The cell: one actor's slot and the run loop of its single task.

The cell owns what survives a restart: the mailbox, the system lane (``Down`` messages), the
watchers, the ref and the counters. The instance it runs is replaceable.

Control requests (stop, restart, suspend) are not queued: they are a field (``_control``) that
the loop reads before every message, so they overtake every user message and every ``Down``. A
control request to a busy actor sets the deadline of the cancel scope around the handlers to
``now + grace``: the messages in hand may finish until then, and are cancelled after. That same
deadline (``_grace_deadline``) then bounds ``on_stop`` (one deadline for the whole termination of
the instance, as OTP's ``shutdown``); the ``on_restart`` of a restart runs without it (only a stop
that overtakes it bounds it).

Costs kept off the paths that run per message or per idle actor:

- An actor that never got a message holds no cancel scope and no queue: its task parks in
  ``run`` itself until the first message or control request (an idle actor is its task, two
  frames, the cell and its ref, context and mailbox; see ``bench/actors_bench.py``).
- The deadline of a request (``ask(timeout=...)``) is carried by the serving scope itself: one
  deadline change of that scope as the handler starts, instead of a scope per request. It stays
  there after the handler until a message with another deadline (or none) starts; if it passes
  meanwhile, the loop opens a fresh serving scope before the next message, so a stale deadline
  never cancels another message. A handler cancelled by its own deadline is answered with
  ``AskTimeout`` and is not a crash. (With ``max_concurrency > 1`` each handler task has its own
  scope.) The caller has no scope at all: the system's deadline keeper answers it at the deadline
  if nothing else did (``_deadlines.py``).

With ``max_concurrency == 1`` (the default) the actor's task runs every handler itself, inline.
With ``max_concurrency > 1`` the actor's task becomes a dispatcher: it opens a nursery inside the
same cancel scope and starts one task per message, at most ``max_concurrency`` at a time (the
:class:`Pool` in ``_pool.py`` holds that state, with the dispatcher; it does not exist for the
default, which costs nothing extra).
"""

from __future__ import annotations

import collections
import enum
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

import outcome
import trio

from ._actor import Actor, ActorContext
from ._envelope import Phase, Request, SendWaiter
from ._errors import ActorStopped, AskTimeout, MailboxFull
from ._mailbox import NO_QUEUE, Admission, Mailbox
from ._mailbox import SERVE_BATCH as _BATCH
from ._messages import ActorState, ActorStatistics, Down, Overflow
from ._pool import Pool, serve_many
from ._ref import ActorRef
from ._watching import end_watches

if TYPE_CHECKING:
    from ._hook import SupervisorHook
    from ._system import ActorSystem

__all__ = ["Cell"]

M = TypeVar("M")

_INF = math.inf
_NUMBER = (int, float)
_UNREAD = -math.inf  # the current time, not read yet


class _Control(enum.Enum):
    STOP = "stop"
    RESTART = "restart"
    SUSPEND = "suspend"


class _ControlWaiter:
    # A caller of restart/suspend waiting for the pending operation to finish.
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
        self._control: _Control | None = None
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
        self._control_waiters: list[_ControlWaiter] | None = None
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

    def _in_hand(self) -> bool:
        # Whether messages may be in hand: a live instance, or handlers of a crashed one.
        if self._instance is not None:
            return True
        pool = self._pool
        return pool is not None and pool.in_flight > 0

    async def restart(self, grace: float | None) -> None:
        """Restart with a fresh instance; see ``ActorSystem.restart``."""
        await self._request_control(_Control.RESTART, grace)

    async def suspend(self, grace: float | None) -> None:
        """Stop the instance but keep the slot; see ``ActorSystem.suspend``."""
        await self._request_control(_Control.SUSPEND, grace)

    async def _request_control(self, kind: _Control, grace: float | None) -> None:
        # Restart and suspend: concurrent calls of the same kind share one operation; a call
        # that finds the other kind pending waits for it to finish, then makes its own.
        while True:
            if self._closed:
                raise self.stopped_error()
            control = self._control
            if control is None:
                if kind is _Control.SUSPEND and self.state is ActorState.SUSPENDED:
                    return  # already suspended: nothing to do
                self._control = kind
                if self._in_hand():
                    self._apply_grace(grace)
                self._wake()
                break
            if control is kind:
                break
            await self._wait_control()  # its outcome belongs to its own caller
        error = await self._wait_control()
        if error is not None:
            raise error

    async def _wait_control(self) -> BaseException | None:
        waiter = _ControlWaiter()
        if self._control_waiters is None:
            self._control_waiters = []
        self._control_waiters.append(waiter)
        await waiter.done.wait()
        return waiter.error

    def _release_control_waiters(self, error: BaseException | None) -> None:
        waiters = self._control_waiters
        if waiters:
            self._control_waiters = None
            for waiter in waiters:
                waiter.error = error
                waiter.done.set()

    # ------------------------------------------------------------------ the task

    def _make_instance(self) -> Actor[M]:
        instance = self._factory(*self._factory_args, **self._factory_kwargs)
        if not isinstance(instance, Actor):
            raise TypeError(
                f"`factory` must return an Actor instance (got {type(instance).__name__})"
            )
        instance._actor_context = self.context
        return instance

    def _started(self, result: outcome.Outcome[Exception | None]) -> None:
        # Answer the task waiting in spawn (once).
        task = self._spawner
        if task is not None:
            self._spawner = None
            trio.lowlevel.reschedule(task, result)

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
        until :meth:`run` answers it (before the actor's task is started)."""
        self._spawner = spawner

    async def run(self) -> None:
        """The actor's task: start, serve until stopped, finish. The spawner (see
        :meth:`expect_spawner`) is answered with None once ``on_start`` finished, with the
        exception that made the start fail, or with its own cancellation (exactly once)."""
        self._task = trio.lowlevel.current_task()
        reason: BaseException | None = None
        try:
            if self._start_cancel is None:
                try:
                    instance = self._make_instance()
                    with trio.CancelScope() as scope:  # abort_start cancels it
                        self._scope = scope
                        await instance.on_start()
                    self._scope = None
                except Exception as exc:
                    reason = exc
                    self._started(outcome.Value(exc))
                    return
                except BaseException as exc:
                    if isinstance(exc, trio.Cancelled):
                        raise  # the system's own cancellation: the spawner is cancelled too
                    # KeyboardInterrupt and the like go to the spawner, as from nursery.start.
                    reason = exc
                    self._started(outcome.Error(exc))
                    return
            cancelled = self._start_cancel
            if cancelled is not None:
                reason = ActorStopped(self.name, None)
                self._started(outcome.capture(cancelled))
                return
            self._instance = instance
            if self._control is None:
                self.state = ActorState.RUNNING
            self._started(outcome.Value(None))
            # Idle until there is something to do, with no cancel scope: an actor that never
            # gets a message costs only this frame and its task.
            mailbox = self.mailbox
            while self._control is None and not mailbox.queue and not self._system_lane:
                self._parked = True
                await trio.lowlevel.wait_task_rescheduled(self._abort_park)
            reason = await self._lifecycle()
        except BaseException as exc:
            reason = exc
            raise
        finally:
            self._finish(reason)
            cancelled = self._start_cancel
            if self._spawner is not None and cancelled is not None:
                # Its cancellation was asked for (abort_start) and the start ended otherwise:
                # it still gets exactly one answer.
                self._started(outcome.capture(cancelled))

    async def _lifecycle(self) -> BaseException | None:
        while True:
            control = self._control
            if control is _Control.RESTART or control is _Control.SUSPEND:
                await self._stop_then(control)
            elif control is None:
                self._deadline_set = _INF
                with trio.CancelScope(deadline=self._grace_deadline) as scope:
                    self._scope = scope
                    if self._pool is None:
                        await self._serve()
                    else:
                        await serve_many(self, self._pool)
                self._scope = None
                self._deadline_set = _INF
                if self._busy:  # cancelled with a message in hand
                    self._busy = False
                    request, self._current = self._current, None
                    if request is not None:
                        deadline = request.deadline
                        if deadline <= self._grace_deadline and deadline <= trio.current_time():
                            # Its own deadline (carried by the serving scope): not a crash.
                            self.processed += 1
                            timeout: float = request.timeout  # type: ignore[assignment]
                            request.answer(outcome.Error(AskTimeout(self.name, timeout)))
                        else:  # the grace of a stop, restart or suspension ran out
                            request.answer(outcome.Error(self.stopped_error()))
            if self._control is _Control.STOP:
                break
        reason = self._stop_reason
        error = await self._stop_instance(reason)
        return reason if error is None else error

    async def _stop_instance(self, reason: BaseException | None) -> Exception | None:
        # on_stop(reason) of the current instance, if any, under the grace deadline of the
        # pending control request (one deadline for the messages in hand and on_stop together;
        # a later stop may shorten it through self._scope). Returns what on_stop raised. A hook
        # still running at the deadline is cancelled, and counted in stop_hooks_cut_off.
        instance, self._instance = self._instance, None
        if instance is None:
            return None
        deadline = self._grace_deadline
        error: Exception | None = None
        with trio.CancelScope(deadline=deadline) as scope:
            self._scope = scope
            if deadline != _INF and deadline <= trio.current_time():
                scope.cancel()  # grace 0, or spent by the messages in hand: cancelled at once
            try:
                await instance.on_stop(reason)
            except Exception as exc:
                error = exc
        self._scope = None
        if scope.cancelled_caught:
            self.stop_hooks_cut_off += 1
        return error

    async def _stop_then(self, control: _Control) -> None:
        # Restart or suspend: stop the running instance (if any) within the grace, then (restart)
        # make the next instance without it: only a stop that overtakes it sets a new one.
        if control is _Control.RESTART:
            self.state = ActorState.STARTING
        error = await self._stop_instance(None)
        if self._control is _Control.STOP:
            return  # a stop overtook it: _finish answers the waiters with ActorStopped
        self._grace_deadline = _INF
        if control is _Control.SUSPEND:
            if error is not None:
                self._last_error = error
            self._control = None
            self.state = ActorState.SUSPENDED
            self._release_control_waiters(error)
            return
        with trio.CancelScope() as scope:
            self._scope = scope
            await self._replace_instance(error)
        self._scope = None

    async def _replace_instance(self, error: Exception | None) -> None:
        # Restart, the old instance stopped (``error``: what its on_stop raised): make a fresh
        # instance and run on_restart on it.
        if error is None:
            try:
                fresh = self._make_instance()
                await fresh.on_restart(self._last_error)
            except Exception as exc:
                error = exc
        if error is not None:
            self._last_error = error
            if self._control is _Control.STOP:
                pass
            elif self._hook is not None:
                self._control = None
                self.state = ActorState.SUSPENDED
            else:
                self._control = None
                self.request_stop(error, None)
            self._release_control_waiters(error)
            return
        self._instance = fresh
        self._last_error = None
        self.restarts += 1
        if self._control is _Control.RESTART:
            self._control = None
            self.state = ActorState.RUNNING
        self._release_control_waiters(None)

    def _crash(self, error: Exception) -> None:
        self._instance = None
        self.failures += 1
        self._last_error = error
        self._after_crash(error)

    def _after_crash(self, error: Exception) -> None:
        # The instance is gone: restart in place, or suspend and tell the hook.
        if self._control is not None:
            return  # a stop, restart or suspension is already on its way
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
                    self._crash(exc)
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
            item.phase = Phase.STARTED
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
        self._release_control_waiters(self.stopped_error())
        self._system_lane = None
        self.system._forget(self)
        end_watches(self, reason)
        if self._stopped is not None:
            self._stopped.set()
