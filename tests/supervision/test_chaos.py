"""Chaos: random supervision trees of guarded services under random load, crashes and hangs.

One hypothesis test builds a random tree (a root with one or two nested supervisors and two to
four guarded services with random rules), lets 20-60 concurrent callers call it at random times
under trio's MockClock while the service actors reply, fail, crash, hang or answer a request
error (``Rejected``, which must not crash them) at random and some callers are cancelled. Some
services cannot restart (every restart, or every other one, fails: restart loops, with backoffs
of up to 30 s spread past the intensity window); some are temporary and significant under a
supervisor with ``auto_shutdown``, whose nested supervisors are then transient and significant
(shutdowns escalate); ``terminate_child`` arrives at random times and half way through backoffs;
the body may leave early, at a random time or half way through the first backoff. Then it checks
what must survive any such storm:

1. every call has exactly one outcome: a reply, the fallback, an error of a known set, or
   cancellation (only for a caller that was cancelled, or when the tree ended early: the root
   gave up or shut down, or the body left); nothing hangs; every terminate_child call returns or
   is refused because its target is gone;
2. no request is lost or duplicated across restarts: a reply or a handler error reaches the caller
   unless it was cancelled (or the answer came exactly at its deadline); no request is handled more
   often than it was attempted; every reply and every handler error a caller sees was really
   produced for that request; no request error crashed an actor;
3. a half-open breaker never has more than ``half_open_max_calls`` trial requests in a handler at
   once (counted on the actor side, independently of the breaker's own bookkeeping), and a
   service never runs more than ``max_concurrent`` handlers at once;
4. each supervisor restarts at most ``max_restarts`` times within any ``within`` seconds, and it
   gives up exactly when the next restart would exceed that (rebuilt from ``RestartScheduled``);
5. after ``run_tree`` (which may raise :class:`SupervisorGaveUp`) no actor is alive and no task it
   started is left, and the tree stopped within the bound its children's graces give (a backoff
   never holds a stop up).

A companion runs the same checks on one service whose breaker half-opens often while many callers
crowd it, so that the trial limit of invariant 3 is actually reached. Two focused tests pin down
what these runs found: a probation timer that fires while its supervisor is stopping must not
fail the tree (it made ``run_tree`` raise ``ActorStopped``, at exit or in the middle of a run).
"""

from __future__ import annotations

import enum
import itertools
import math
import random
from typing import Any, Final

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import actors
from supervisor import AutoShutdown, BulkheadFullError, CircuitOpenError, RequestError
from supervisor.observe._bus import EventBus, SubscriberFailed
from supervisor.observe._events import (
    AutoShutdownTriggered,
    ChildCrashed,
    ChildParked,
    ChildRestarted,
    ChildStarted,
    FallbackUsed,
    IntensityExceeded,
    RequestCompleted,
    RequestFailed,
    RestartScheduled,
    RetryScheduled,
    TreeEvent,
)
from supervisor.rules._breaker import CircuitState, CircuitStateChange
from supervisor.tree._children import SupervisorGaveUp
from supervisor.tree._rule_specs import BreakerSpec, BulkheadSpec, FallbackSpec, RetrySpec
from supervisor.tree._run import run_tree
from supervisor.tree._service_ref import ServiceRef
from supervisor.tree._specs import Restart, RestartBackoff, ServiceSpec, Strategy, SupervisorSpec
from supervisor.tree._tree import Tree

HANG: Final = 6.0
"""How long a hanging handler sleeps: past every timeout drawn below."""
FALLBACK: Final = "fallback"
"""The answer of every service's fallback, when it has one."""
BOUND: Final = 1000.0
"""Mock seconds after which the run counts as hung (a run takes well under 100)."""
STAYS_DOWN_STOP: Final = 200.0
"""When the body leaves ``run_tree`` of a plan with ``stop_at=None`` in which a service without
a timeout may stay down for good: every restart of a service with ``fails_restart=1`` fails, and
when its backoff spaces the tries wider than ``within / max_restarts`` the intensity is never
exceeded (as with systemd's restart delay), so the supervisor tries forever while a call without
a deadline waits in the mailbox until the tree stops. Stopping answers it (``ActorStopped``)."""


class Flaky(Exception):
    """A handler's own error, which the caller handles (the actor crashes with it, as with any
    error out of ``receive``)."""


class Crash(Exception):
    """A crash-like error of a handler."""


class Rejected(RequestError):
    """A request error: the caller gets it, the service actor does not crash."""


class StartFailed(Exception):
    """A service actor's restart failed (its dependency is still down)."""


class Mark(enum.Enum):
    """Outcomes of a call that did not return or raise."""

    CANCELLED = "cancelled"
    """The caller's own cancel scope fired."""
    ABORTED = "aborted"
    """The tree's body was cancelled (the tree failed)."""


KNOWN_ERRORS: Final = (
    Flaky,
    Crash,
    Rejected,
    actors.AskTimeout,
    actors.ActorStopped,
    CircuitOpenError,
    BulkheadFullError,
)
"""Every error a call may raise here (no throttle: no RateLimitExceeded, no OperationTimeout)."""

_serials = itertools.count(1)


# -- what the test draws ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Step:
    """One call of a caller."""

    gap: float
    """Seconds the caller waits before it."""
    service: int
    """Which service (modulo the number of services)."""
    kind: str
    """What the handler does: ``reply``, ``fail`` (Flaky), ``crash`` (Crash) or ``hang``."""
    latency: float
    """Seconds the handler takes before it replies or raises (``hang``: :data:`HANG`)."""
    cancel_after: float | None
    """Seconds after which the caller cancels the call, or ``None``."""


@attrs.frozen(kw_only=True)
class ServicePlan:
    """A service: which supervisor it lives under, and its rules."""

    home: int
    rules: dict[str, Any]
    fails_restart: int = 0
    """Every n-th restart of its actor fails (a restart loop); 0: none do."""


@attrs.frozen(kw_only=True)
class TreePlan:
    """A root (index 0) with nested supervisors, each under an earlier one, and services."""

    supervisors: list[dict[str, Any]]
    parents: list[int]
    """The parent index of supervisors 1, 2, ..."""
    services: list[ServicePlan]
    order_seed: int
    """Shuffles each supervisor's children (their start order matters to rest_for_one)."""
    rng_seed: int
    """Seeds the tree's randomness (backoff and retry jitter)."""
    terminations: list[tuple[float, int]] = attrs.field(factory=list)
    """``(time, service)``: ``terminate_child`` of that service at that trio time (often while it
    waits for a restart)."""
    stop_at: float | None = None
    """When the body leaves ``run_tree`` (``None``: once every caller is done)."""
    in_backoff: int = 0
    """How many restarts with a backoff get a ``terminate_child`` half way through it."""
    stop_in_backoff: bool = False
    """Leave the body half way through the first backoff (if one comes before ``stop_at``)."""


supervisor_settings = st.fixed_dictionaries(
    {
        "strategy": st.sampled_from([s for s in Strategy if s is not Strategy.SIMPLE_ONE_FOR_ONE]),
        "max_restarts": st.integers(1, 5),
        "within": st.floats(1.0, 10.0),
        "backoff": st.builds(
            RestartBackoff,
            initial_delay=st.sampled_from([0.0, 0.05, 0.2, 3.0, 3.0]),
            max_delay=st.sampled_from([5.0, 30.0]),
            jitter=st.booleans(),
        ),
        # Significant children below make a supervisor shut down (never: none are drawn).
        "auto_shutdown": st.sampled_from([AutoShutdown.NEVER, AutoShutdown.NEVER, *AutoShutdown]),
    }
)
service_rules = st.fixed_dictionaries(
    {
        "bulkhead": st.builds(
            BulkheadSpec, max_concurrent=st.integers(1, 3), max_queued=st.integers(0, 5)
        ),
        "breaker": st.none()
        | st.builds(
            BreakerSpec,
            failure_threshold=st.integers(1, 3),
            success_threshold=st.integers(1, 2),
            timeout=st.sampled_from([0.5, 1.0, 2.0]),
            half_open_max_calls=st.integers(1, 3),
            expected_exception=st.sampled_from([(Exception,), (Crash,)]),
        ),
        "retry": st.none()
        | st.builds(
            RetrySpec,
            max_attempts=st.integers(2, 3),
            initial_delay=st.sampled_from([0.0, 0.1, 0.5]),
            jitter=st.booleans(),
            exceptions=st.sampled_from([(Exception,), (Flaky,)]),
        ),
        "timeout": st.none() | st.sampled_from([0.5, 1.0, 2.5]),
        "fallback": st.none() | st.just(FallbackSpec(default=FALLBACK)),
        "shutdown": st.sampled_from([0.0, 0.0, 0.5, 2.0]),
        # Request errors of kind "reject" are answered without a crash.
        "request_errors": st.just((RequestError,)),
        "restart": st.sampled_from([Restart.PERMANENT, Restart.TEMPORARY]),
    }
)


@st.composite
def tree_plans(draw: st.DrawFn) -> TreePlan:
    """A root with one or two nested supervisors (the second under the root or the first) and
    two to four services spread over them."""
    nested = draw(st.integers(1, 2))
    parents = [0] if nested == 1 else [0, draw(st.integers(0, 1))]
    return TreePlan(
        supervisors=[draw(supervisor_settings) for _ in range(nested + 1)],
        parents=parents,
        services=draw(
            st.lists(
                st.builds(
                    ServicePlan,
                    home=st.integers(0, nested),
                    rules=service_rules,
                    fails_restart=st.sampled_from([0, 0, 0, 1, 2]),
                ),
                min_size=2,
                max_size=4,
            )
        ),
        order_seed=draw(st.integers(0, 2**16)),
        rng_seed=draw(st.integers(0, 2**16)),
        terminations=draw(st.lists(st.tuples(st.floats(0.0, 20.0), st.integers(0, 3)), max_size=3)),
        stop_at=draw(st.none() | st.floats(0.5, 30.0)),
        in_backoff=draw(st.integers(0, 2)),
        stop_in_backoff=draw(st.booleans()),
    )


steps = st.builds(
    Step,
    gap=st.floats(0.0, 3.0),
    service=st.integers(0, 3),
    kind=st.sampled_from(["reply", "reply", "reply", "fail", "crash", "hang", "reject"]),
    latency=st.sampled_from([0.0, 0.05, 0.3, 1.2]),
    cancel_after=st.one_of(st.none(), st.none(), st.none(), st.floats(0.0, 4.0)),
)
callers = st.lists(st.lists(steps, min_size=1, max_size=3), min_size=20, max_size=60)


# -- what the test records ----------------------------------------------------------------------


@attrs.define(eq=False)
class Req:
    """One call, as its caller and the bus saw it; also the message the service actor gets."""

    id: int
    path: str
    kind: str
    latency: float
    cancellable: bool
    deadline: float
    admitted_at: float
    """When the current attempt was admitted (exact for the first; for a retry, the end of its
    delay, which the real admission never precedes)."""
    admit_seq: int | None
    """Breaker changes of the service published before the first attempt (``None`` once
    retried)."""
    attempts: int = 1
    done: bool = False
    """The caller stopped waiting (answered, failed, or cancelled)."""
    outcomes: list[Any] = attrs.field(factory=list)
    failures: list[BaseException] = attrs.field(factory=list)
    """The error of each failed attempt (from ``RequestFailed``)."""
    completed: int = 0
    fallback_cause: BaseException | None = None


@attrs.define(eq=False)
class Handling:
    """One run of a handler for one request."""

    req: Req
    serial: int
    trial_epoch: int | None
    """The breaker change count of the half-open state it is a trial of, or ``None``."""
    ended: float | None = None
    result: str = "running"
    """``running``, ``return``, ``raise`` or ``cancelled``."""
    value: Any = None
    error: BaseException | None = None


@attrs.define(eq=False)
class Watch:
    """What the test knows of one service: its spec, its breaker (from the bus) and the handlers
    running now."""

    spec: ServiceSpec
    state: CircuitState = CircuitState.CLOSED
    since: float = 0.0
    changes: int = 0
    running: list[Handling] = attrs.field(factory=list)


@attrs.define(eq=False)
class Lab:
    """The shared log of one run: callers, service actors and the bus all write into it.

    Nothing here raises (a bus listener that raises would be removed): broken invariants are
    collected in ``violations``.
    """

    watches: dict[str, Watch] = attrs.field(factory=dict)
    tree: Tree | None = None
    events: list[Any] = attrs.field(factory=list)
    requests: list[Req] = attrs.field(factory=list)
    handlings: dict[int, list[Handling]] = attrs.field(factory=dict)
    active: dict[trio.lowlevel.Task, Req] = attrs.field(factory=dict)
    refs: dict[int, actors.ActorRef[Any]] = attrs.field(factory=dict)
    violations: list[str] = attrs.field(factory=list)
    ids: itertools.count[int] = attrs.field(factory=itertools.count)
    handles: dict[str, ServiceRef] = attrs.field(factory=dict)
    """Every service's handle, taken at the start (a temporary service that exited leaves
    ``tree.services()``; its handle stays valid)."""
    restarts: dict[str, int] = attrs.field(factory=dict)
    """Restarts attempted per service actor (to fail every n-th)."""
    terminated: list[tuple[float, str, str]] = attrs.field(factory=list)
    """``(time, path, outcome)`` of every terminate_child the controller made."""
    backoffs: list[RestartScheduled] = attrs.field(factory=list)
    """Restarts scheduled with a backoff, not yet handed to the controller."""
    backoff_seen: trio.Event | None = None
    first_backoff: RestartScheduled | None = None
    first_backoff_seen: trio.Event = attrs.field(factory=trio.Event)

    def on_event(self, event: Any) -> None:
        """Bus listener: keep every event, follow the breakers, and tie request events to the
        call of the caller task that published them."""
        self.events.append(event)
        if isinstance(event, RestartScheduled) and event.delay > 0 and self.first_backoff is None:
            self.first_backoff = event
            self.first_backoff_seen.set()
        if isinstance(event, RestartScheduled) and event.delay > 0 and event.path in self.watches:
            self.backoffs.append(event)
            if self.backoff_seen is not None:
                self.backoff_seen.set()
        if isinstance(event, CircuitStateChange):
            watch = self.watches[event.name]
            watch.state = event.new_state
            watch.since = event.at
            watch.changes += 1
            return
        if not isinstance(event, RequestFailed | RequestCompleted | RetryScheduled | FallbackUsed):
            return
        req = self.active.get(trio.lowlevel.current_task())
        if req is None or req.path != event.path:
            self.violations.append(f"{event!r} published outside its caller's task")
            return
        if isinstance(event, RequestFailed):
            req.failures.append(event.error)
        elif isinstance(event, RequestCompleted):
            req.completed += 1
        elif isinstance(event, RetryScheduled):
            req.attempts += 1
            req.admitted_at = event.at + event.delay
            req.admit_seq = None
        else:
            req.fallback_cause = event.cause

    def started(self, path: str, req: Req, serial: int) -> Handling:
        """A handler of ``path`` starts on ``req``: check the bulkhead and the half-open trials."""
        watch = self.watches[path]
        spec = watch.spec
        if req.path != path:
            self.violations.append(f"request {req.id} for {req.path} reached {path}")
        if self.tree is None:  # pragma: no cover - callers start inside the tree
            raise RuntimeError("a handler ran before the tree was up")
        handle = self.handles[path]
        statistics = handle.statistics()  # may publish a due half-open: read it first
        cap = spec.bulkhead.max_concurrent + spec.bulkhead.max_queued
        if statistics.in_flight + statistics.queued > cap:
            self.violations.append(f"{path}: bulkhead admitted more than {cap}: {statistics}")
        if len(watch.running) >= spec.bulkhead.max_concurrent:
            self.violations.append(
                f"{path}: {len(watch.running) + 1} handlers at once "
                f"(max_concurrent={spec.bulkhead.max_concurrent})"
            )
        trial_epoch = None
        breaker = spec.breaker
        if breaker is not None:
            core = handle.breaker.core  # type: ignore[union-attr]
            if core.trials_in_flight > breaker.half_open_max_calls:
                self.violations.append(f"{path}: breaker counts {core.trials_in_flight} trials")
            if watch.state is CircuitState.HALF_OPEN and (
                (req.admit_seq is not None and req.admit_seq >= watch.changes)
                or req.admitted_at >= watch.since
            ):
                # Admitted after this half-open state began: a trial of it.
                trial_epoch = watch.changes
                trials = [
                    h for h in watch.running if h.trial_epoch == trial_epoch and not h.req.done
                ]
                if len(trials) >= breaker.half_open_max_calls:
                    self.violations.append(
                        f"{path}: {len(trials) + 1} trials in handlers at "
                        f"{trio.current_time()} (half_open_max_calls="
                        f"{breaker.half_open_max_calls}): {[h.req.id for h in trials]}, {req.id}"
                    )
        handling = Handling(req=req, serial=serial, trial_epoch=trial_epoch)
        watch.running.append(handling)
        self.handlings.setdefault(req.id, []).append(handling)
        return handling

    def ended(
        self, handling: Handling, result: str, *, value: Any = None, error: Exception | None = None
    ) -> None:
        """The handler of ``handling`` returned ``value``, raised ``error``, or was cancelled."""
        handling.ended = trio.current_time()
        handling.result = result
        handling.value = value
        handling.error = error
        self.watches[handling.req.path].running.remove(handling)

    async def call(self, tree: Tree, path: str, step: Step) -> None:
        """Make one call of ``step`` to ``path`` and record its outcome."""
        now = trio.current_time()
        watch = self.watches[path]
        timeout = watch.spec.timeout
        req = Req(
            id=next(self.ids),
            path=path,
            kind=step.kind,
            latency=step.latency,
            cancellable=step.cancel_after is not None,
            deadline=math.inf if timeout is None else now + timeout,
            admitted_at=now,
            admit_seq=watch.changes,
        )
        self.requests.append(req)
        task = trio.lowlevel.current_task()
        self.active[task] = req
        try:
            with trio.CancelScope() as scope:
                if step.cancel_after is not None:
                    scope.deadline = now + step.cancel_after
                try:
                    answer = await self.handles[path].call(req)
                except Exception as exc:
                    answer = exc
                req.outcomes.append(answer)
            if scope.cancelled_caught:
                req.outcomes.append(Mark.CANCELLED)
        except BaseException:
            req.outcomes.append(Mark.ABORTED)
            raise
        finally:
            req.done = True
            del self.active[task]

    async def controller(self, tree: Tree, paths: list[str], plan: list[tuple[float, int]]) -> None:
        """terminate_child of services at given times (often during a backoff); each call gets
        one outcome: done, or refused because the service or its supervisor is gone."""
        for at, index in sorted(plan):
            await trio.sleep_until(at)
            path = paths[index % len(paths)]
            try:
                await tree.terminate_child(path)
                outcome = "terminated"
            except (actors.ActorNotFound, actors.ActorStopped) as exc:
                outcome = type(exc).__name__
            except Exception as exc:
                self.violations.append(f"terminate_child({path!r}) raised {exc!r}")
                outcome = "error"
            self.terminated.append((trio.current_time(), path, outcome))

    async def in_backoff(self, tree: Tree, count: int) -> None:
        """``count`` times: when a service's restart is scheduled with a backoff, terminate it
        half way through that backoff (its pending restart must be called off)."""
        for _ in range(count):
            while not self.backoffs:
                self.backoff_seen = trio.Event()
                await self.backoff_seen.wait()
            event = self.backoffs.pop(0)
            await trio.sleep_until(event.at + event.delay / 2)
            try:
                await tree.terminate_child(event.path)
                outcome = "terminated in backoff"
            except (actors.ActorNotFound, actors.ActorStopped) as exc:
                outcome = type(exc).__name__
            except Exception as exc:
                self.violations.append(f"terminate_child({event.path!r}) raised {exc!r}")
                outcome = "error"
            self.terminated.append((trio.current_time(), event.path, outcome))

    async def stop_in_backoff(self, body: trio.CancelScope) -> None:
        """Leave the body half way through the first backoff."""
        await self.first_backoff_seen.wait()
        event = self.first_backoff
        if event is not None:  # pragma: no branch - set with the event
            await trio.sleep_until(event.at + event.delay / 2)
        body.cancel()

    async def caller(self, tree: Tree, paths: list[str], plan: list[Step]) -> None:
        """One caller: its calls one after the other, each after its gap."""
        for step in plan:
            await trio.sleep(step.gap)
            await self.call(tree, paths[step.service % len(paths)], step)


class ChaosService(actors.Actor[Req]):
    """A service actor: per request, sleeps its latency (or hangs), then replies, raises Flaky
    or raises Crash, logging every run into the lab."""

    def __init__(self, lab: Lab, path: str, fails_restart: int = 0) -> None:
        self.lab = lab
        self.path = path
        self.fails_restart = fails_restart
        self.serial = next(_serials)

    async def on_start(self) -> None:
        ref = self.context.self_ref
        self.lab.refs[id(ref)] = ref
        count = self.lab.restarts.get(self.path)
        if count is None:
            self.lab.restarts[self.path] = 0  # the first start always works
            return
        count = self.lab.restarts[self.path] = count + 1
        if self.fails_restart and count % self.fails_restart == 0:
            raise StartFailed(self.path)

    async def receive(self, message: Req) -> tuple[str, int, int]:
        handling = self.lab.started(self.path, message, self.serial)
        try:
            await trio.sleep(HANG if message.kind == "hang" else message.latency)
        except BaseException:
            self.lab.ended(handling, "cancelled")
            raise
        if message.kind in ("fail", "crash", "reject"):
            kinds = {"fail": Flaky, "crash": Crash, "reject": Rejected}
            error = kinds[message.kind](message.id)
            self.lab.ended(handling, "raise", error=error)
            raise error
        reply = ("reply", message.id, self.serial)
        self.lab.ended(handling, "return", value=reply)
        return reply


# -- building the tree and judging the run --------------------------------------------------------


def build(
    plan: TreePlan, lab: Lab
) -> tuple[SupervisorSpec, dict[str, SupervisorSpec], dict[str, ServiceSpec]]:
    """The root spec of ``plan``, with every supervisor's and every service's spec by path."""
    names = ["app"] + [f"sup{index}" for index in range(1, len(plan.supervisors))]
    paths = ["app"]
    for index, parent in enumerate(plan.parents, start=1):
        paths.append(f"{paths[parent]}/{names[index]}")
    shuffle = random.Random(plan.order_seed).shuffle
    services: dict[str, ServiceSpec] = {}
    children: list[list[Any]] = [[] for _ in plan.supervisors]

    def watched(index: int) -> bool:
        # Significant children only under a supervisor with an auto_shutdown.
        return plan.supervisors[index].get("auto_shutdown", AutoShutdown.NEVER) is not (
            AutoShutdown.NEVER
        )

    for index, service in enumerate(plan.services):
        path = f"{paths[service.home]}/s{index}"
        temporary = service.rules.get("restart") is Restart.TEMPORARY
        services[path] = ServiceSpec(
            name=f"s{index}",
            factory=ChaosService,
            args=(lab, path, service.fails_restart),
            significant=temporary and watched(service.home),
            **service.rules,
        )
        children[service.home].append(services[path])
    supervisors: dict[str, SupervisorSpec] = {}
    for index in reversed(range(len(plan.supervisors))):
        shuffle(children[index])
        nested = bool(index) and watched(plan.parents[index - 1])
        spec = SupervisorSpec(
            name=names[index],
            children=children[index],
            restart=Restart.TRANSIENT if nested else Restart.PERMANENT,
            significant=nested,
            **plan.supervisors[index],
        )
        supervisors[paths[index]] = spec
        if index:
            children[plan.parents[index - 1]].append(spec)
    return supervisors["app"], supervisors, services


@attrs.define
class IntensityAudit:
    """Checks every supervisor's restarts against its intensity, from the events alone.

    A supervisor ``P`` counts a restart when it decides it: the ``RestartScheduled`` event of a
    child of ``P`` (its backoff, and whether it is later called off, do not matter). Parked crashes
    and probation restarts are not counted. ``P``'s count starts afresh whenever ``P`` (re)starts
    its children from its spec (a ``ChildStarted`` with ``restarts == 0``) and after it gives up.
    """

    supervisors: dict[str, SupervisorSpec]
    violations: list[str] = attrs.field(factory=list)
    rounds: dict[str, list[float]] = attrs.field(factory=dict)
    """Times of the restarts counted in each supervisor's current life."""
    pending: dict[str, float | None] = attrs.field(factory=dict)
    """The time of the last crash of one of its children."""

    def run(self, events: list[Any]) -> list[str]:
        """Audit ``events`` in order; return the broken rules."""
        for path in self.supervisors:
            self.rounds[path] = []
            self.pending[path] = None
        for event in events:
            if isinstance(event, IntensityExceeded):
                self.gave_up(event)
            elif isinstance(event, TreeEvent):
                parent = event.path.rpartition("/")[0]
                if parent in self.supervisors:
                    self.child_event(parent, event)
        return self.violations

    def window(self, path: str, now: float) -> list[float]:
        """The counted restarts of ``path`` in the half-open window ending at ``now``."""
        return [t for t in self.rounds[path] if now - self.supervisors[path].within < t]

    def gave_up(self, event: IntensityExceeded) -> None:
        """The refused restart must be the one beyond ``max_restarts``, no sooner, no later."""
        spec = self.supervisors[event.path]
        if self.pending[event.path] != event.at:
            self.violations.append(f"{event!r} without a crash to restart at that time")
        recent = self.window(event.path, event.at)
        if len(recent) != spec.max_restarts:
            self.violations.append(
                f"{event.path} gave up at {event.at} after {len(recent)} restarts within "
                f"{spec.within}s (max_restarts={spec.max_restarts}): {self.rounds[event.path]}"
            )
        self.rounds[event.path] = []
        self.pending[event.path] = None

    def child_event(self, parent: str, event: TreeEvent) -> None:
        """An event of a child of supervisor ``parent``."""
        if isinstance(event, ChildStarted) and event.restarts == 0:
            self.rounds[parent] = []  # (re)starting its children from its spec: a fresh count
        elif isinstance(event, ChildCrashed):
            self.pending[parent] = event.at
        elif isinstance(event, RestartScheduled):
            self.rounds[parent].append(event.at)
            spec = self.supervisors[parent]
            recent = self.window(parent, event.at)
            if len(recent) > spec.max_restarts:
                self.violations.append(
                    f"{parent} restarted {len(recent)} times within {spec.within}s "
                    f"(max_restarts={spec.max_restarts}) at {event.at}: {self.rounds[parent]}"
                )


def outcome_problem(req: Req, spec: ServiceSpec, runs: list[Handling], gave_up: bool) -> str:
    """What is wrong with the one outcome of ``req`` (empty if nothing)."""
    outcome = req.outcomes[0]
    if req.completed != isinstance(outcome, tuple):
        return f"{req.completed} completions for {outcome!r}"
    if outcome is Mark.CANCELLED:
        return "" if req.cancellable else "cancelled but its caller was not"
    if outcome is Mark.ABORTED:
        return "" if gave_up else "aborted though the tree did not end early"
    if outcome == FALLBACK:
        if spec.fallback is None or not isinstance(req.fallback_cause, KNOWN_ERRORS):
            return f"fallback for {req.fallback_cause!r}"
        return ""
    if isinstance(outcome, tuple):
        if outcome[1] != req.id or not any(run.value is outcome for run in runs):
            return f"reply {outcome} it was never given"
        return ""
    if not isinstance(outcome, KNOWN_ERRORS) or spec.fallback is not None:
        return f"unexpected {outcome!r} (fallback: {spec.fallback})"
    if isinstance(outcome, Flaky | Crash | Rejected) and not any(
        run.error is outcome for run in runs
    ):
        return f"{outcome!r} it never raised"
    return ""


def delivery_problems(req: Req, runs: list[Handling]) -> list[str]:
    """Nothing lost, nothing twice: each attempt of ``req`` reaches at most one handler; what a
    handler answered before the deadline reaches its caller if it still waits; every handler
    error an attempt failed with was raised for it."""
    problems = []
    if len(runs) > req.attempts:
        problems.append(f"{len(runs)} handler runs for {req.attempts} attempts")
    outcome = req.outcomes[0] if len(req.outcomes) == 1 else None
    waiting = outcome not in (Mark.CANCELLED, Mark.ABORTED)
    for run in runs:
        if run.ended is None:
            problems.append("a handler outlived the tree")
        elif not waiting or run.ended >= req.deadline:
            continue
        elif run.result == "return" and outcome is not run.value:
            problems.append(f"reply {run.value} lost, got {outcome!r}")
        elif run.result == "raise" and not any(e is run.error for e in req.failures):
            problems.append(f"{run.error!r} lost, got {outcome!r}")
    problems.extend(
        f"an attempt failed with {error!r}, never raised"
        for error in req.failures
        if isinstance(error, Flaky | Crash | Rejected)
        and not any(run.error is error for run in runs)
    )
    return problems


def outcome_violations(lab: Lab, services: dict[str, ServiceSpec], gave_up: bool) -> list[str]:
    """Check invariants 1 and 2 on every call and every handler run (``gave_up``: the tree
    failed, so its callers may have been cancelled)."""
    violations: list[str] = []
    for req in lab.requests:
        runs = lab.handlings.get(req.id, [])
        if len(req.outcomes) != 1:
            violations.append(f"request {req.id}: outcomes {req.outcomes}")
        elif problem := outcome_problem(req, services[req.path], runs, gave_up):
            violations.append(f"request {req.id}: {problem}")
        violations.extend(f"request {req.id}: {p}" for p in delivery_problems(req, runs))
    return violations


def _all_tasks() -> set[trio.lowlevel.Task]:
    found: set[trio.lowlevel.Task] = set()
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is not None:
            found.add(task)
            for nursery in task.child_nurseries:
                stack.extend(nursery.child_tasks)
    return found


def _may_wait_forever(plan: TreePlan) -> bool:
    # A service whose every restart fails, and a call with no deadline (see STAYS_DOWN_STOP).
    return any(service.fails_restart == 1 for service in plan.services) and any(
        service.rules.get("timeout") is None for service in plan.services
    )


def run_chaos(plan: TreePlan, plans: list[list[Step]]) -> Lab:
    """Run the callers of ``plans`` against the tree of ``plan`` and assert every invariant."""
    lab = Lab()
    spec, supervisors, services = build(plan, lab)
    lab.watches = {path: Watch(spec=service) for path, service in services.items()}
    bus: EventBus[Any] = EventBus()
    bus.add_listener(lab.on_event)
    paths = list(services)
    gave_up: list[SupervisorGaveUp] = []
    after: list[str] = []
    stopped_early: list[float] = []
    # Children stop one after the other, each within its grace (a supervisor's handler in hand
    # may first finish stopping one more): the whole tree stops within twice their sum.
    stop_bound = 2 * sum(service.shutdown for service in services.values())

    async def main() -> None:
        before = _all_tasks()
        left = math.inf
        with trio.fail_after(BOUND):  # nothing hangs: a stuck run fails here with TooSlowError
            try:
                async with run_tree(spec, events=bus, rng=random.Random(plan.rng_seed)) as tree:
                    lab.tree = tree
                    lab.handles = {path: tree.service(path) for path in paths}
                    for path in supervisors:
                        ref = tree.lookup(path)
                        lab.refs[id(ref)] = ref
                    deadline = math.inf if plan.stop_at is None else plan.stop_at
                    if plan.stop_at is None and _may_wait_forever(plan):
                        deadline = STAYS_DOWN_STOP
                    with trio.move_on_at(deadline) as scope:
                        async with trio.open_nursery() as side:
                            side.start_soon(lab.controller, tree, paths, plan.terminations)
                            side.start_soon(lab.in_backoff, tree, plan.in_backoff)
                            if plan.stop_in_backoff:
                                side.start_soon(lab.stop_in_backoff, scope)
                            async with trio.open_nursery() as nursery:
                                for steps_of_one in plans:
                                    nursery.start_soon(lab.caller, tree, paths, steps_of_one)
                            side.cancel_scope.cancel()  # the callers are done: so is the run
                    if scope.cancelled_caught:
                        stopped_early.append(trio.current_time())
                    left = trio.current_time()
            except SupervisorGaveUp as exc:
                gave_up.append(exc)
            took = trio.current_time() - left
            if took > stop_bound + 1e-9:
                after.append(f"the tree took {took}s to stop (bound {stop_bound}s)")
        leftover = _all_tasks() - before
        if leftover:
            after.append(f"tasks left after run_tree: {leftover}")
        assert lab.tree is not None
        statistics = lab.tree.system.statistics()
        if statistics.live or not statistics.closed:
            after.append(f"actors left after run_tree: {statistics}")
        after.extend(f"{ref!r} alive after run_tree" for ref in lab.refs.values() if ref.is_alive)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    assert not any(isinstance(event, SubscriberFailed) for event in lab.events)
    assert lab.violations == []
    assert after == []
    exceeded = {event.path for event in lab.events if isinstance(event, IntensityExceeded)}
    assert bool(gave_up) == (spec.name in exceeded)
    assert lab.tree is not None
    ended = bool(gave_up) or lab.tree.shut_down or bool(stopped_early)
    assert lab.tree.shut_down == any(
        isinstance(event, AutoShutdownTriggered) and event.path == spec.name for event in lab.events
    )
    crashed_by_request_errors = [
        event
        for event in lab.events
        if isinstance(event, ChildCrashed) and isinstance(event.error, Rejected)
    ]
    assert crashed_by_request_errors == []
    if gave_up:
        assert gave_up[0].path == spec.name
    if not ended:
        assert len(lab.requests) == sum(len(steps_of_one) for steps_of_one in plans)
    assert outcome_violations(lab, services, ended) == []
    assert IntensityAudit(supervisors).run(lab.events) == []
    return lab


@settings(max_examples=25)  # each example is a whole tree under load; 25 keep it to seconds
@given(plan=tree_plans(), plans=callers)
def test_chaos_keeps_every_invariant(plan: TreePlan, plans: list[list[Step]]) -> None:
    """Random trees under random replies, errors, crashes, hangs and cancellations: one outcome
    per call, nothing lost, bounded trials and handlers, restarts within intensity, nothing
    left running afterwards."""
    run_chaos(plan, plans)


@st.composite
def contended_plans(draw: st.DrawFn) -> TreePlan:
    """One service with a hair-trigger breaker and slots for more handlers than trials, under a
    lenient supervisor: half-open states come often and callers compete for their trial slots."""
    rules = {
        "bulkhead": BulkheadSpec(max_concurrent=3, max_queued=draw(st.integers(0, 3))),
        "breaker": BreakerSpec(
            failure_threshold=1,
            success_threshold=draw(st.integers(2, 3)),
            timeout=draw(st.sampled_from([0.5, 1.0])),
            half_open_max_calls=draw(st.integers(1, 2)),
            expected_exception=draw(st.sampled_from([(Exception,), (Crash,)])),
        ),
        "retry": draw(st.none() | st.just(RetrySpec(max_attempts=2, initial_delay=0.2))),
        "timeout": draw(st.none() | st.just(2.5)),
        "shutdown": 0.5,
    }
    lenient = {"max_restarts": 1000, "within": 1.0, "backoff": RestartBackoff(initial_delay=0.0)}
    return TreePlan(
        supervisors=[lenient],
        parents=[],
        services=[ServicePlan(home=0, rules=rules)],
        order_seed=0,
        rng_seed=draw(st.integers(0, 2**16)),
    )


busy_steps = st.builds(
    Step,
    gap=st.floats(0.0, 0.5),
    service=st.just(0),
    kind=st.sampled_from(["reply", "reply", "reply", "fail", "crash"]),
    latency=st.sampled_from([0.05, 0.3, 1.2]),
    cancel_after=st.one_of(st.none(), st.none(), st.floats(0.0, 1.5)),
)


@settings(max_examples=15)  # a busier run per example than the test above
@given(
    plan=contended_plans(),
    plans=st.lists(st.lists(busy_steps, min_size=4, max_size=8), min_size=30, max_size=40),
)
def test_half_open_trials_stay_bounded_while_callers_crowd_the_breaker(
    plan: TreePlan, plans: list[list[Step]]
) -> None:
    """Many callers crowding one often half-open breaker (with cancellations, refusals and
    uncounted errors giving trial slots back) never get more than half_open_max_calls trial
    requests into handlers at once, and every other invariant of the chaos test holds."""
    run_chaos(plan, plans)


class Stub(actors.Actor[str]):
    """A service actor for the focused tests: ``"crash"`` raises Crash, ``"hang"`` sleeps past
    every grace, anything else is echoed."""

    async def receive(self, message: str) -> str:
        if message == "crash":
            raise Crash(message)
        if message == "hang":
            await trio.sleep(HANG)
        return message


def test_a_probation_timer_firing_while_the_tree_stops_does_not_fail_the_tree() -> None:
    """A service parked at t=0 whose probation falls due at t=1, while the tree's shutdown is
    still waiting (until t=2.5) for a sibling's busy handler: leaving run_tree stops cleanly."""
    spec = SupervisorSpec(
        name="app",
        children=[
            ServiceSpec(
                name="parked",
                factory=Stub,
                breaker=BreakerSpec(failure_threshold=1, timeout=1.0),
            ),
            ServiceSpec(name="busy", factory=Stub, shutdown=2.0),
        ],
    )
    events: list[Any] = []
    bus: EventBus[Any] = EventBus()
    bus.add_listener(events.append)
    leaked: list[BaseException] = []

    async def main() -> None:
        try:
            async with run_tree(spec, events=bus) as tree:
                with pytest.raises(Crash):
                    await tree.service("parked").call("crash")
                await trio.testing.wait_all_tasks_blocked()
                assert [(type(e), e.until) for e in events if isinstance(e, ChildParked)] == [
                    (ChildParked, 1.0)
                ]
                with trio.move_on_after(0.5):
                    await tree.service("busy").call("hang")  # the handler runs on
        except actors.ActorStopped as exc:
            leaked.append(exc)
        assert trio.current_time() == 2.5

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert leaked == []


def test_a_probation_timer_firing_while_a_nested_supervisor_stops_does_not_fail_the_tree() -> None:
    """A service parked at t=0 (probation due at t=1) under "inner", whose parent "outer" gives
    up at t=0.5 and stops it while a busy sibling's grace runs to t=2.5: the root restarts
    "outer" and the body runs on to its end at t=5."""
    inner = SupervisorSpec(
        name="inner",
        children=[
            ServiceSpec(
                name="parked",
                factory=Stub,
                breaker=BreakerSpec(failure_threshold=1, timeout=1.0),
            ),
            ServiceSpec(name="busy", factory=Stub, shutdown=2.0),
        ],
    )
    outer = SupervisorSpec(
        name="outer",
        children=[inner, ServiceSpec(name="bomb", factory=Stub)],
        max_restarts=0,
    )
    spec = SupervisorSpec(name="app", children=[outer])
    events: list[Any] = []
    bus: EventBus[Any] = EventBus()
    bus.add_listener(events.append)
    leaked: list[BaseException] = []

    async def main() -> None:
        try:
            async with run_tree(spec, events=bus) as tree:
                with pytest.raises(Crash):
                    await tree.service("parked").call("crash")
                with trio.move_on_after(0.5):
                    await tree.service("busy").call("hang")  # the handler runs on
                with pytest.raises(Crash):
                    await tree.service("bomb").call("crash")
                await trio.sleep(4.5)
                assert trio.current_time() == 5.0
                restarted = [(e.path, e.at) for e in events if isinstance(e, ChildRestarted)]
                assert restarted == [("app/outer", 2.5)]
        except actors.ActorStopped as exc:
            leaked.append(exc)
        assert [e.path for e in events if isinstance(e, IntensityExceeded)] == ["app/outer"]

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert leaked == []
