"""Guarded services: the caller's side of a request to a service actor.

A :class:`GuardedService` is made by the supervision tree for each
:class:`~supervisor.ServiceSpec` child. It owns the service's rule objects (one throttle,
one :class:`~supervisor.CircuitBreaker` named after the service's path, one bulkhead count, one
retry schedule, one fallback cache) and drives their pure cores on the caller's side of every
request; users reach it through its public handle, :class:`ServiceRef`.

The request path of :meth:`ServiceRef.call`, in order:

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
   :meth:`GuardedService.spawn_options`) is the bulkhead's queue.
5. **Ask** the service actor with the rest of the deadline as its timeout (the deadline travels
   into the actor: a request that expires while queued never runs).
6. **Outcome**: a reply feeds the breaker and the cache and is returned. A failure (any
   ``Exception``: the handler's error, which is also the actor's crash,
   :class:`~actors.AskTimeout`, :class:`~actors.ActorStopped`, ...) feeds the breaker, and is
   retried per the retry schedule: the next attempt starts over at step 2, after a delay spent
   holding no bulkhead place and never reaching past the deadline.
7. **Fallback** (if set): answers a refusal (steps 2-4) or the last failure.

Refusals are never retried: a rule that refuses says the service cannot take the request now, so
they go straight to the fallback (fast fail). A refusal costs no mailbox hop, no checkpoint and no
cancel scope, and raises one error. Its event is published per streak (see
:class:`~supervisor.observe._events.RequestRefused`): the first refusal of a streak at once, the
rest counted and published as one event when the streak ends (at the service's next other
event, when its statistics are read, which every snapshot does, or when the rule or the rate
bucket changes). An open breaker without throttle or fallback refuses before anything else is
looked at.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import random
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Final, NoReturn

import attrs
import trio

from actors import ActorStopped

from .._config import DURATION, UNSET, Unset
from .._errors import BulkheadFullError, CircuitOpenError, OperationTimeout, RateLimitExceeded
from ..guards._breaker import CircuitBreaker
from ..guards._throttle import OnLimit, Throttle
from ..observe._events import (
    FallbackUsed,
    Refusal,
    RequestCompleted,
    RequestFailed,
    RequestRefused,
    RetryScheduled,
)
from ..rules._breaker import BreakerCore, CircuitState, Permit
from ..rules._breaker import Refusal as BreakerRefusal
from ..rules._bulkhead import BulkheadCore
from ..rules._cache import MISS, TtlLruCache
from ..rules._rate_breaker import RateBreakerCore
from ..store._base import Store
from ._faulty import service_injector
from ._hedging import hedged_attempt
from ._limits import adaptive_bulkhead_for, ask_within_limit
from ._rule_specs import FallbackSpec
from ._service_ref import ServiceRef
from ._service_rules import RetryStep, breaker_options, settle_error, settle_result
from ._specs import ServiceSpec
from ._starting import Answered

if TYPE_CHECKING:
    from actors import ActorRef

    from ..observe._bus import EventBus


_INF: Final = math.inf


@attrs.frozen(kw_only=True)
class ServiceStatistics:
    """A snapshot of one guarded service (see :meth:`ServiceRef.statistics`)."""

    path: str
    """The service's path in the tree."""
    state: CircuitState | None
    """The breaker's state now, or ``None`` for a service without a breaker."""
    in_flight: int
    """Requests admitted by the bulkhead and counted as running (at most ``max_concurrent``)."""
    queued: int
    """Requests admitted by the bulkhead and counted as waiting in the mailbox (at most
    ``max_queued``)."""
    completed: int
    """Calls answered by the service actor (on any attempt)."""
    failed: int
    """Calls whose last attempt failed (whether or not the fallback then answered)."""
    refused: int
    """Calls refused by the throttle, the breaker or the bulkhead (whether or not the fallback
    then answered)."""
    fallbacks: int
    """Calls answered by the fallback."""
    retries: int
    """Retries scheduled, over all calls."""
    retries_refused: int = 0
    """Retries the service's retry budget refused (each such call failed at once)."""
    concurrency_limit: int | None = None
    """The adaptive limit of the bulkhead now (``None``: the bulkhead is fixed)."""


class GuardedService:
    """The rules of one service and the request path through them (used by the tree).

    Args:
        spec: the service's spec (its rules; ``spec.name`` is the last part of ``path``).
        path: the service's path in the tree, e.g. ``"app/backend/payments"``; also the name of
            its breaker, of the errors its rules raise, and the ``path`` of its events.
        bus: where :class:`~supervisor.observe._events.RequestCompleted`, ``RequestFailed``,
            ``RequestRefused``, ``RetryScheduled``, ``FallbackUsed`` and the breaker's
            :class:`~supervisor.CircuitStateChange` events go.
        rng: the random source of the retry jitter (default: a fresh :class:`random.Random`).
        store: where the breaker's and the throttle's state lives, keyed by ``path`` (default:
            a state of their own); with a :class:`~supervisor.RedisStore`, the same service
            path in every process of the fleet is one breaker and one rate limit.

    The breaker's listeners, the bus among them, see every state change of the breaker: those the
    request path causes, the lazy OPEN -> HALF_OPEN change (noticed by a request, by
    :meth:`park_until`, or by reading the breaker's ``state``), ``reset()`` and ``force_open()``.
    A listener that raises makes the request that caused the change raise that error (as the
    breaker's own guard does).
    """

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
        "_retry",
        "_rng",
        "_streak",
        "_streak_at",
        "_streak_count",
        "_streak_key",
        "_streak_retry_after",
        "_streak_since",
        "_throttle",
        "completed",
        "failed",
        "fallbacks",
        "faults",
        "handle",
        "path",
        "refusal_span",
        "refused",
        "retries",
        "spec",
        "timeout",
    )

    def __init__(
        self,
        spec: ServiceSpec,
        *,
        path: str,
        bus: EventBus[Any],
        rng: random.Random | None = None,
        store: Store | None = None,
    ) -> None:
        if not isinstance(spec, ServiceSpec):
            raise TypeError(f"`spec` must be a ServiceSpec (got {spec!r})")
        self.spec = spec
        self.path = path
        self.timeout = spec.timeout
        """The default timeout of a call, in seconds (``None``: no limit)."""
        self._bus = bus
        self._rng = random.Random() if rng is None else rng
        self._ref: ActorRef[Any] | None = None

        throttle = spec.throttle
        self._throttle: Throttle | None = (
            None
            if throttle is None
            else Throttle(
                path, throttle.max_calls, throttle.period, on_limit=throttle.on_limit, store=store
            )
        )
        breaker = spec.breaker
        self._breaker: CircuitBreaker | None = None
        self._core: BreakerCore | None = None
        if breaker is not None:
            self._breaker = CircuitBreaker(
                path,
                breaker.failure_threshold,
                breaker.success_threshold,
                breaker.timeout,
                breaker.expected_exception,
                half_open_max_calls=breaker.half_open_max_calls,
                store=store,
                **breaker_options(breaker),
            )
            self._breaker.add_listener(bus.publish)
            self._core = self._breaker.core
        self._measured = isinstance(self._core, RateBreakerCore)
        self._bulkhead: BulkheadCore[trio.lowlevel.Task] = BulkheadCore(
            spec.bulkhead.max_concurrent, spec.bulkhead.max_queued
        )
        self._adaptive = adaptive_bulkhead_for(spec.bulkhead, path)
        if self._adaptive is not None:
            self._bulkhead = self._adaptive.core  # the same slots, moved by the limit
        self._hedge = None if spec.hedge is None else spec.hedge.core()
        self._retry: RetryStep | None = (
            None if spec.retry is None else RetryStep(spec.retry, bus=bus, path=path, rng=self._rng)
        )
        fallback = spec.fallback
        self._fallback: FallbackSpec | None = fallback
        self._cache: TtlLruCache[Hashable, Any] | None = (
            None
            if fallback is None or fallback.cache_ttl is None
            else TtlLruCache(fallback.cache_ttl, fallback.cache_maxsize)
        )
        self.completed = 0
        self.failed = 0
        self.refused = 0
        self.fallbacks = 0
        self.retries = 0
        self.refusal_span = 1.0
        """Seconds per rate bucket of the tree's metrics: no refusal streak spans two."""
        self._streak: Refusal | None = None  # the rule of the refusal streak going on, if any
        self._streak_key = 0
        self._streak_count = 0  # refusals of the streak not published yet
        self._streak_since = 0.0
        self._streak_at = 0.0
        self._streak_retry_after = 0.0
        self.faults = service_injector(spec.faults, path=path, bus=bus, rng=self._rng)
        """The injector of the spec's faults (``None`` without faults)."""
        self.handle = ServiceRef(self)
        """The public handle users call."""

    # -- the tree's side ------------------------------------------------------------------------

    def spawn_options(self) -> dict[str, Any]:
        """The options the tree passes to ``ActorSystem.spawn`` for this service's actor.

        ``mailbox_size = max_concurrent + max_queued`` (the requests the bulkhead can admit, so a
        mailbox filled only by this service's callers never overflows), ``overflow="reject"``,
        and ``max_concurrency = max_concurrent``.
        """
        bulkhead = self.spec.bulkhead
        return {
            "mailbox_size": max(1, bulkhead.max_concurrent + bulkhead.max_queued),
            "overflow": "reject",
            "max_concurrency": bulkhead.max_concurrent,
        }

    def attach(self, ref: ActorRef[Any]) -> None:
        """Send requests to ``ref`` from now on (called after every spawn of the service actor).

        Until a ref is attached, every attempt fails with :class:`~actors.ActorStopped`.
        """
        self._ref = ref

    @property
    def ref(self) -> ActorRef[Any] | None:
        """The attached service actor, if any."""
        return self._ref

    def park_until(self, now: float) -> float | None:
        """Where the service actor crashed at ``now``: when to restart it.

        Returns:
            ``None`` when there is no breaker or it is not OPEN at ``now`` (restart as usual);
            else the trio time the breaker turns half-open (``math.inf`` while it is forced
            open), at which the tree restarts the parked child on probation.

        A due OPEN -> HALF_OPEN change is applied (and published) first. Only failures already
        recorded count: a crash is recorded by the caller whose request crashed the actor, when
        that caller's task resumes (in the scheduling batch after the crash), so the tree should
        let one batch pass (any checkpoint) between ``child_failed`` and this call.
        """
        core = self._core
        if core is None:
            return None
        state = core.state_at(now)
        self._flush()
        if state is not CircuitState.OPEN:
            return None
        return core.half_open_at  # inf while forced open

    # -- inspection -----------------------------------------------------------------------------

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The service's breaker (named after its path), or ``None``."""
        return self._breaker

    def statistics(self) -> ServiceStatistics:
        """A snapshot of the service (reading it may apply and publish a due half-open, and ends
        a refusal streak, publishing its count)."""
        if self._streak is not None:
            self.end_streak()
        bulkhead = self._bulkhead
        plan = self._retry
        return ServiceStatistics(
            path=self.path,
            state=None if self._breaker is None else self._breaker.state,
            in_flight=bulkhead.running,
            queued=bulkhead.queued,
            completed=self.completed,
            failed=self.failed,
            refused=self.refused,
            fallbacks=self.fallbacks,
            retries=self.retries,
            retries_refused=0 if plan is None else plan.refused,
            concurrency_limit=None if self._adaptive is None else self._adaptive.limit,
        )

    def __repr__(self) -> str:
        return f"<GuardedService {self._describe()}>"

    def _describe(self) -> str:
        bulkhead = self._bulkhead
        breaker = self._breaker
        state = "" if breaker is None else f" {breaker.state.value}"
        return (
            f"{self.path!r}{state}, {bulkhead.running}/{bulkhead.max_concurrent} in flight, "
            f"{bulkhead.queued}/{bulkhead.max_queued} queued"
        )

    # -- the request path -----------------------------------------------------------------------

    def _flush(self) -> None:
        # Hand the core's state changes to the breaker's listeners (the bus among them): the
        # shell's own publishing, so that user listeners see them too.
        breaker = self._breaker
        if breaker is not None and breaker.core.has_changes:
            if self._streak is not None:
                self.end_streak()
            breaker._publish()

    def end_streak(self) -> None:
        """Publish the refusals of the streak going on that were counted but not yet published
        (one :class:`~supervisor.observe._events.RequestRefused` with their ``count``), and end
        it. A no-op without one."""
        refusal = self._streak
        if refusal is None:
            return
        self._streak = None
        count = self._streak_count
        if count:
            self._streak_count = 0
            self._bus.publish(
                RequestRefused(
                    path=self.path,
                    at=self._streak_at,
                    refusal=refusal,
                    retry_after=self._streak_retry_after,
                    count=count,
                    since=self._streak_since,
                )
            )

    def _count_refusal(self, refusal: Refusal, now: float, retry_after: float) -> None:
        # One refusal: counted in the streak going on, or published as the first of a new one.
        self.refused += 1
        key = math.floor(now / self.refusal_span)  # the metrics' bucket of ``now``
        if refusal is self._streak and key == self._streak_key:
            count = self._streak_count
            if not count:
                self._streak_since = now
            self._streak_count = count + 1
            self._streak_at = now
            self._streak_retry_after = retry_after
            return
        if self._streak is not None:
            self.end_streak()
        self._streak = refusal
        self._streak_key = key
        self._bus.publish(
            RequestRefused(path=self.path, at=now, refusal=refusal, retry_after=retry_after)
        )

    def _refuse(
        self, refusal: Refusal, error: Exception, now: float, retry_after: float
    ) -> NoReturn:
        self._count_refusal(refusal, now, retry_after)
        raise error

    def _publish(self, event: Any) -> None:
        # Every other event of the service ends the refusal streak first (order is kept).
        if self._streak is not None:
            self.end_streak()
        self._bus.publish(event)

    async def call(self, request: Any, timeout: float | Unset | None = UNSET) -> Any:  # noqa: ASYNC109 - the deadline spans throttle waits, attempts and retry delays, and travels into the actor
        """See :meth:`ServiceRef.call`."""
        now = trio.current_time()
        if timeout is UNSET:
            seconds = self.timeout
        elif timeout is None:
            seconds = None
        else:
            seconds = DURATION.check("timeout", timeout)
        tracer = self._bus.call_tracer  # None unless an exporter traces calls: one check
        if tracer is None and self._fallback is None:
            core = self._core
            if core is not None and core.free_permit is None and self._throttle is None:
                # The fast refusal of an open breaker: nothing else is looked at.
                retry_after = core.refusal(now)
                if retry_after is not None:
                    self._count_refusal(Refusal.CIRCUIT_OPEN, now, retry_after)
                    raise CircuitOpenError.refusing(self.path, retry_after)
            return await self._attempts(
                request, now, _INF if seconds is None else now + seconds, seconds
            )
        deadline = _INF if seconds is None else now + seconds
        if tracer is not None:
            return await tracer.trace(
                self.path, deadline, self._answer, request, now, deadline, seconds
            )
        return await self._answer(request, now, deadline, seconds)

    async def _answer(
        self, request: Any, now: float, deadline: float, seconds: float | None
    ) -> Any:
        # Steps 2-7, within ``deadline``.
        if self._fallback is None:
            return await self._attempts(request, now, deadline, seconds)
        try:
            return await self._attempts(request, now, deadline, seconds)
        except Exception as exc:
            answer = await self._answer_by_fallback(request, exc)
            if answer is MISS:
                raise
            return answer

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
        if throttle.on_limit is OnLimit.RAISE:
            retry_after = throttle.core.try_admit(now)
            if retry_after != 0.0:
                self._refuse(
                    Refusal.RATE_LIMITED,
                    RateLimitExceeded(retry_after, name=self.path),
                    now,
                    retry_after,
                )
            return now
        if throttle.admit_now(now):  # room at once: no wait, so no scope for the deadline
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

    def _admit_breaker(self, now: float) -> Permit | None:
        # Step 3: a permit, or a refusal (raised, after its event).
        core = self._core
        if core is None:
            return None
        permit = core.free_permit
        if permit is not None:
            return permit
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

    def _admit_bulkhead(self, permit: Permit | None, now: float) -> trio.lowlevel.Task | None:
        # Step 4: take a running slot (None) or a queue place (the task, as the core's ticket),
        # or refuse, handing the breaker's permit back first.
        bulkhead = self._bulkhead
        if bulkhead.try_enter():
            return None
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
        self._count_success(permit, now, result)
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

    async def _ask(self, request: Any, now: float, deadline: float) -> Any:
        # Step 5.
        ref = self._ref
        if ref is None:
            raise ActorStopped(self.path, None)
        if deadline == _INF:
            result = await ref.ask(request)
        else:
            left = deadline - now
            result = await ref.ask(request, timeout=left if left > 0.0 else 0.0)
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
            result = await self._ask(request, now, deadline)
        except Exception as exc:
            self._leave_bulkhead(ticket)
            return False, exc
        except BaseException:
            self._leave_bulkhead(ticket)
            if permit is not None:
                self._core.release(permit)  # type: ignore[union-attr]
            raise
        self._leave_bulkhead(ticket)
        return True, result

    async def _attempts(
        self, request: Any, started: float, deadline: float, seconds: float | None
    ) -> Any:
        path = self.path
        bus = self._bus
        plan = self._retry
        if plan is not None:
            plan.start(started)  # the retry budget counts first attempts
        now = started
        attempt = 1
        while True:
            if self._throttle is not None:
                now = await self._admit_throttle(now, deadline, seconds)
            permit = self._admit_breaker(now)
            ticket = self._admit_bulkhead(permit, now)
            asked = now
            if self._hedge is None:
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
                if self._streak is not None:
                    self.end_streak()
                bus.publish(
                    RequestCompleted(path=path, at=now, latency=now - started, attempts=attempt)
                )
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

    async def _answer_by_fallback(self, request: Any, cause: Exception) -> Any:
        # Step 7; called while ``cause`` is being handled, so that an error of the degraded
        # handler has it as its __context__. MISS: nothing to answer with (cache miss).
        fallback = self._fallback
        if fallback is None:  # pragma: no cover - call() checks first
            return MISS
        cache = self._cache
        if fallback.has_default:
            kind = "default"
            answer = fallback.default
        elif cache is not None:
            kind = "cache"
            try:
                answer = cache.get(request, trio.current_time())
            except TypeError:  # an unhashable request was never cached
                answer = MISS
            if answer is MISS:
                return MISS
        else:
            kind = "degraded"
            answer = fallback.degraded(request)  # type: ignore[misc]
            if inspect.isawaitable(answer):
                answer = await answer
        self.fallbacks += 1
        self._publish(FallbackUsed(path=self.path, at=trio.current_time(), kind=kind, cause=cause))
        return answer
