"""The request path of a guarded service: a request through its rules, on the caller's side.

:class:`RequestPath` holds the state the path drives (the rules' objects, the counters, the
attached actor) and its steps; :class:`~supervisor.tree._service.GuardedService` builds that
state from a :class:`~supervisor.ServiceSpec` and adds what the tree and inspection need.

The path of :meth:`RequestPath.call` (which :meth:`ServiceRef.call` is), in order:

1. **Deadline**: ``now + timeout`` (the caller's ``timeout``, else the spec's; ``None``: none).
   It covers everything below: throttle waits, queueing, attempts and retry delays.
2. **Throttle** (if set): ``on_limit="raise"`` refuses a call over the limit with
   :class:`~supervisor.RateLimitExceeded`; ``on_limit="wait"`` waits its turn first come, first
   served, within the deadline.
3. **Breaker** (if set): an open breaker (or a half-open one with every trial slot taken)
   refuses with :class:`~supervisor.CircuitOpenError`.
4. **Bulkhead**: requests running plus requests queued are counted here, on the caller's side;
   with ``max_concurrent + max_queued`` already admitted the call is refused with
   :class:`~supervisor.BulkheadFullError`. The actor's mailbox (``max_queued`` places, see
   ``GuardedService.spawn_options``) is the bulkhead's queue.
5. **Ask** the service actor with the rest of the deadline as its timeout (the deadline travels
   into the actor: a request that expires while queued never runs). With a hedge, a slow attempt
   gets hedges beside it (``_hedging.py``); with an adaptive limit, a request over the limit
   waits on the caller's side for a slot (``_limits.py``). Both keep the contract of
   :meth:`RequestPath._ask_holding`.
6. **Outcome**: a reply feeds the breaker and the cache and is returned. A failure (any
   ``Exception``: the handler's error, which is also the actor's crash,
   :class:`~actors.AskTimeout`, :class:`~actors.ActorStopped`, ...) feeds the breaker, and is
   retried per the retry schedule: the next attempt starts over at step 2, after a delay spent
   holding no bulkhead place and never reaching past the deadline.
7. **Fallback** (if set): answers a refusal (steps 2-4) or the last failure (``_fallbacks.py``).

Refusals are never retried: a rule that refuses says the service cannot take the request now, so
they go straight to the fallback (fast fail). A refusal costs no mailbox hop, no checkpoint and no
cancel scope, and raises one error; its event is published per streak (``_refusals.py``). An open
breaker without throttle or fallback refuses before anything else is looked at.

Why one class and few frames: see docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Coroutine, Hashable
from typing import TYPE_CHECKING, Any, Final, NoReturn

import trio

from actors import ActorStopped

from .._config import DURATION, UNSET, Unset
from .._errors import BulkheadFullError, CircuitOpenError, OperationTimeout, RateLimitExceeded
from ..guards._throttle import OnLimit, Throttle
from ..observe._events import (
    Refusal,
    RequestCompleted,
    RequestFailed,
    RetryScheduled,
)
from ..rules._breaker import BreakerCore, Permit
from ..rules._breaker import Refusal as BreakerRefusal
from ..rules._bulkhead import BulkheadCore
from ..rules._cache import MISS, TtlLruCache
from ._fallbacks import answer_by_fallback
from ._hedging import hedged_attempt
from ._limits import ask_within_limit
from ._service_rules import settle_error, settle_result
from ._starting import Answered

if TYPE_CHECKING:
    from actors import ActorRef

    from ..guards._adaptive import AdaptiveBulkhead
    from ..guards._breaker import CircuitBreaker
    from ..observe._bus import EventBus
    from ..observe._completions import CompletionLog
    from ..rules._hedge import HedgeCore
    from ._refusals import RefusalStreak
    from ._rule_specs import FallbackSpec
    from ._service_rules import RetryStep

__all__ = ["RequestPath"]

_INF: Final = math.inf
# Read on hot paths: module globals, since reading a member off its enum class is an
# unspecialised attribute lookup in CPython 3.11 (about 85 ns, against 10 for a global).
_CIRCUIT_OPEN: Final = Refusal.CIRCUIT_OPEN
_RAISE: Final = OnLimit.RAISE
_new_error: Final = CircuitOpenError.__new__


class RequestPath:
    """The state a request path drives, and its steps (the base of ``GuardedService``, which
    fills every slot when it is built)."""

    __slots__ = (
        "_adaptive",
        "_breaker",
        "_bulkhead",
        "_bus",
        "_cache",
        "_core",
        "_fallback",
        "_hedge",
        "_measured",
        "_ref",
        "_refusals",
        "_refuses_first",
        "_retry",
        "_throttle",
        "completed",
        "completions",
        "failed",
        "fallbacks",
        "path",
        "retries",
        "timeout",
    )

    path: str
    timeout: float | None
    completed: int
    completions: CompletionLog | None
    """Where answered requests are written down for the tree's metrics, which then are the only
    listener that needs no ``RequestCompleted`` (see ``observe/_completions.py``); ``None``: each
    is published."""
    failed: int
    fallbacks: int
    retries: int
    _adaptive: AdaptiveBulkhead | None
    _breaker: CircuitBreaker | None
    _bulkhead: BulkheadCore[trio.lowlevel.Task]
    _bus: EventBus[Any]
    _cache: TtlLruCache[Hashable, Any] | None
    _core: BreakerCore | None
    _fallback: FallbackSpec | None
    _hedge: HedgeCore | None
    _measured: bool
    _ref: ActorRef[Any] | None
    _refuses_first: BreakerCore | None  # the core, when no throttle comes before the breaker
    _refusals: RefusalStreak
    _retry: RetryStep | None
    _throttle: Throttle | None

    def _flush(self) -> None:
        # Hand the core's state changes to the breaker's listeners (the bus among them): the
        # shell's own publishing, so that user listeners see them too.
        breaker = self._breaker
        if breaker is not None and breaker.core.has_changes:
            if self._refusals.rule is not None:
                self._refusals.end()
            breaker._publish()

    def _refuse(
        self, refusal: Refusal, error: Exception, now: float, retry_after: float
    ) -> NoReturn:
        self._refusals.count(refusal, now, retry_after)
        raise error

    def _publish(self, event: Any) -> None:
        # Every other event of the service ends the refusal streak first (order is kept).
        if self._refusals.rule is not None:
            self._refusals.end()
        self._bus.publish(event)

    async def call(self, request: Any, timeout: float | Unset | None = UNSET) -> Any:  # noqa: ASYNC109 - the deadline spans throttle waits, attempts and retry delays, and travels into the actor
        """The request path (see the module docstring); :meth:`ServiceRef.call` documents what it
        returns and raises."""
        now = trio.current_time()
        if timeout is UNSET:
            seconds = self.timeout
        elif timeout is None:
            seconds = None
        else:
            seconds = DURATION.check("timeout", timeout)
        tracer = self._bus.call_tracer  # None unless an exporter traces calls: one check
        if tracer is None and self._fallback is None:
            core = self._refuses_first
            if core is not None and core.free_permit is None:
                # The fast refusal of an open breaker: nothing else is looked at.
                retry_after = core.refusal(now)
                if retry_after is not None:
                    self._refusals.count(_CIRCUIT_OPEN, now, retry_after)
                    # CircuitOpenError.refusing(), without that classmethod's own call.
                    raise _new_error(CircuitOpenError, self.path, retry_after)
            return await self._attempts(
                request, now, _INF if seconds is None else now + seconds, seconds
            )
        deadline = _INF if seconds is None else now + seconds
        if tracer is not None:
            return await tracer.trace(
                self.path, deadline, self._answer, request, now, deadline, seconds
            )
        # _answer with a fallback, inlined: one coroutine less per call.
        try:
            return await self._attempts(request, now, deadline, seconds)
        except Exception as exc:
            answer = await answer_by_fallback(self, request, exc)
            if answer is MISS:
                raise
            return answer

    async def _answer(
        self, request: Any, now: float, deadline: float, seconds: float | None
    ) -> Any:
        # Steps 2-7, within ``deadline``.
        if self._fallback is None:
            return await self._attempts(request, now, deadline, seconds)
        try:
            return await self._attempts(request, now, deadline, seconds)
        except Exception as exc:
            answer = await answer_by_fallback(self, request, exc)
            if answer is MISS:
                raise
            return answer

    def _admitted_now(self, now: float) -> bool:
        # Step 2 without a coroutine, where no wait and no round trip is needed: ``True``
        # (admitted at ``now``), a refusal raised, or ``False``: ask _admit_throttle.
        throttle: Throttle = self._throttle  # type: ignore[assignment]
        if throttle.fleet is not None:
            return False
        if throttle.on_limit is _RAISE:
            retry_after = throttle.core.try_admit(now)
            if retry_after != 0.0:
                self._refuse(
                    Refusal.RATE_LIMITED,
                    RateLimitExceeded(retry_after, name=self.path),
                    now,
                    retry_after,
                )
            return True
        return throttle.admit_now(now)

    async def _admit_throttle(self, now: float, deadline: float, seconds: float | None) -> float:
        # Step 2; returns the time after admission (a wait advances it).
        throttle = self._throttle
        if throttle is None:
            return now
        if throttle.on_limit is OnLimit.RAISE and throttle.fleet is not None:
            try:
                await throttle.acquire()  # the fleet's answer: one round trip
            except RateLimitExceeded as exc:
                self._refuse(Refusal.RATE_LIMITED, exc, now, exc.retry_after)
            return trio.current_time()
        if self._admitted_now(now):  # room at once: no wait, so no scope for the deadline
            return now
        if deadline == _INF:
            await throttle.acquire()
            return trio.current_time()
        with trio.move_on_at(deadline):
            await throttle.acquire()
            return trio.current_time()
        # The deadline passed while waiting for a turn: the waiter left the queue.
        now = trio.current_time()
        self._refuse(Refusal.RATE_LIMITED, OperationTimeout(seconds), now, 0.0)  # type: ignore[arg-type]
        return now  # pragma: no cover - _refuse raises

    def _admit_breaker(self, core: BreakerCore, now: float) -> Permit:
        # Step 3 where the breaker has no free permit (it is not closed): a trial permit, or a
        # refusal (raised, after its event). A closed breaker's permit is taken in _attempts.
        retry_after = core.refusal(now)
        if retry_after is not None:
            self._refuse(
                Refusal.CIRCUIT_OPEN,
                CircuitOpenError.refusing(self.path, retry_after),
                now,
                retry_after,
            )
        decision = core.try_acquire(now)
        if core.has_changes:
            self._flush()
        if type(decision) is BreakerRefusal:  # a fleet's core, gated: its own rules refused
            self._refuse(
                Refusal.CIRCUIT_OPEN,
                CircuitOpenError(self.path, decision.retry_after),
                now,
                decision.retry_after,
            )
        return decision  # type: ignore[return-value]

    def _queue_in_bulkhead(self, permit: Permit | None, now: float) -> trio.lowlevel.Task:
        # Step 4 when no running slot was free (``try_enter`` failed): take a queue place (the
        # task, as the core's ticket), or refuse, handing the breaker's permit back first.
        bulkhead = self._bulkhead
        if bulkhead.queued >= bulkhead.max_queued:
            if permit is not None:
                self._core.release(permit)  # type: ignore[union-attr]
            self._refuse(Refusal.BULKHEAD_FULL, BulkheadFullError(self.path), now, 0.0)
        ticket = trio.lowlevel.current_task()
        bulkhead.offer(ticket)
        return ticket

    def _leave_bulkhead(self, ticket: trio.lowlevel.Task | None) -> None:
        # A queued ticket still waiting leaves the queue; else one slot is given back (to the
        # oldest queued ticket, if any: the mailbox serves in the same order).
        bulkhead = self._bulkhead
        if ticket is None or not bulkhead.cancel(ticket):
            bulkhead.leave()

    def _count_success(self, permit: Permit | None, now: float, result: Any = None) -> None:
        # The breaker's side of an attempt that returned ``result``.
        core = self._core
        if permit is not None:
            if self._measured:
                settle_result(core, permit, result, now)  # type: ignore[arg-type]
                self._flush()
            elif permit.trial:
                core.on_success(permit, now)  # type: ignore[union-attr]
                self._flush()
            else:
                core.on_success(permit)  # type: ignore[union-attr]

    def _succeeded(self, request: Any, result: Any, permit: Permit | None, now: float) -> None:
        if permit is not None:
            if permit.trial or self._measured:
                self._count_success(permit, now, result)
            else:
                self._core.on_success(permit)  # type: ignore[union-attr]  # the common case
        cache = self._cache
        if cache is not None:
            with contextlib.suppress(TypeError):  # an unhashable request is not cached
                cache.put(request, result, now)
        self.completed += 1

    def _failed(self, permit: Permit | None, error: Exception, now: float) -> None:
        core = self._core
        if permit is not None:
            if self._measured:
                settle_error(core, permit, error, now)  # type: ignore[arg-type]
            elif core.is_counted(error):  # type: ignore[union-attr]
                core.on_failure(permit, now)  # type: ignore[union-attr]
            else:
                core.release(permit)  # type: ignore[union-attr]
            self._flush()

    def _asking(self, request: Any, now: float, deadline: float) -> Coroutine[Any, Any, Any]:
        # Step 5 without its last check: the actor's ask (a coroutine to await, whose result may
        # be an Answered), or ActorStopped raised at once. A plain function: one frame less.
        ref = self._ref
        if ref is None:
            raise ActorStopped(self.path, None)
        if deadline == _INF:
            return ref.ask(request)
        left = deadline - now
        return ref.ask(request, timeout=left if left > 0.0 else 0.0)

    async def _ask(self, request: Any, now: float, deadline: float) -> Any:
        # Step 5.
        result = await self._asking(request, now, deadline)
        if type(result) is Answered:  # a request error (spec.request_errors): not a crash
            raise result.error
        return result

    async def _ask_holding(
        self,
        request: Any,
        now: float,
        deadline: float,
        permit: Permit | None,
        ticket: trio.lowlevel.Task | None,
    ) -> tuple[bool, Any]:
        # Step 5 holding the breaker's permit and the bulkhead place: ``(True, reply)`` or
        # ``(False, error)``, the place given back and the permit left to count. Cancelled (or
        # KeyboardInterrupt...): everything given back, nothing counted.
        if self._adaptive is not None:
            return await ask_within_limit(
                self, request, now=now, deadline=deadline, permit=permit, ticket=ticket
            )
        try:
            result = await self._asking(request, now, deadline)  # _ask, inlined
        except Exception as exc:
            self._leave_bulkhead(ticket)
            return False, exc
        except BaseException:
            self._give_back(permit, ticket)
            raise
        self._leave_bulkhead(ticket)
        if type(result) is Answered:  # a request error (spec.request_errors): not a crash
            return False, result.error
        return True, result

    def _give_back(self, permit: Permit | None, ticket: trio.lowlevel.Task | None) -> None:
        # An ask left with a BaseException (trio.Cancelled...): the place and the permit are
        # given back, nothing is counted.
        self._leave_bulkhead(ticket)
        if permit is not None:
            self._core.release(permit)  # type: ignore[union-attr]

    async def _attempts(  # noqa: PLR0912, PLR0915 - the hot loop stays one frame
        self, request: Any, started: float, deadline: float, seconds: float | None
    ) -> Any:
        path = self.path
        bus = self._bus
        plan = self._retry
        if plan is not None and plan.counts_starts:
            plan.start(started)  # the retry budget counts first attempts
        now = started
        attempt = 1
        while True:
            if self._throttle is not None and not self._admitted_now(now):
                now = await self._admit_throttle(now, deadline, seconds)
            # Steps 3 and 4, their common cases inlined: a closed breaker's permit, a free slot.
            core = self._core
            permit = None if core is None else core.free_permit
            if permit is None and core is not None:
                permit = self._admit_breaker(core, now)
            bulkhead = self._bulkhead
            ticket = None if bulkhead.try_enter() else self._queue_in_bulkhead(permit, now)
            asked = now
            if self._hedge is None and self._adaptive is None:
                # _ask_holding, inlined on the common path: one coroutine less per attempt.
                try:
                    outcome = await self._asking(request, now, deadline)
                except Exception as exc:
                    ok, outcome = False, exc
                except BaseException:
                    self._give_back(permit, ticket)
                    raise
                else:
                    ok = type(outcome) is not Answered  # a request error: not a crash
                    if not ok:
                        outcome = outcome.error
                if ticket is None:
                    bulkhead.leave()
                else:
                    self._leave_bulkhead(ticket)
            elif self._hedge is None:
                ok, outcome = await self._ask_holding(request, now, deadline, permit, ticket)
            else:
                ok, outcome = await hedged_attempt(
                    self, request, now=now, deadline=deadline, permit=permit, ticket=ticket
                )
                permit = None  # each hedged attempt's outcome was counted as it ended
            now = trio.current_time()
            again = (
                None
                if not ok or plan is None or not plan.by_result
                else plan.after_result(attempt, outcome, now, started=started, deadline=deadline)
            )
            if ok and again is None:
                # The outcome's event first, then the breaker change it caused (if any).
                if self._refusals.rule is not None:
                    self._refusals.end()
                log = self.completions
                if log is None or bus.audience > 1:  # someone besides the metrics listens
                    bus.publish(
                        RequestCompleted(path=path, at=now, latency=now - started, attempts=attempt)
                    )
                if log is not None:
                    log.add(now, now - started, attempt)
                self._succeeded(request, outcome, permit, now)
                return outcome
            if again is not None:
                # A reply to retry: a failed attempt for the retry rule (the breaker counts it
                # as its own classifier says).
                delay, error = again
                self._publish(
                    RequestFailed(
                        path=path, at=now, latency=now - asked, error=error, attempt=attempt
                    )
                )
                self._count_success(permit, now, outcome)
            else:
                error = outcome
                self._publish(
                    RequestFailed(
                        path=path, at=now, latency=now - asked, error=error, attempt=attempt
                    )
                )
                self._failed(permit, error, now)
                retry_in = (
                    None
                    if plan is None
                    else plan.after_error(attempt, error, now, started=started, deadline=deadline)
                )
                if retry_in is None:
                    self.failed += 1
                    raise error
                delay = retry_in
            self.retries += 1
            self._publish(
                RetryScheduled(path=path, at=now, attempt=attempt, delay=delay, error=error)
            )
            await trio.sleep(delay)  # holding nothing: a cancellation here has nothing to give back
            now = trio.current_time()
            attempt += 1
