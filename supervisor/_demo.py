"""The demonstration program: ``python -m supervisor demo [--duration S] [--seed N] [--plain]``.

A supervision tree of guarded services calling *simulated* flaky backends (in-process fakes whose
latencies and errors are drawn from a seeded :class:`random.Random`, all waits ``trio.sleep``)::

    app (one_for_one)
    ├── frontend (one_for_one): api-gateway, auth
    └── backend (rest_for_one): db, cache, payments, search

One caller task per service sends requests at a steady rate while a chaos schedule (placed at
fractions of ``--duration``) makes things go wrong: a failure burst in ``db`` (whose crashes also
restart ``cache``, ``payments`` and ``search``: ``rest_for_one``), a latency spike in ``search``,
an outage of the ``payments`` backend, a crash loop of the ``auth`` actor (its restarts fail
twice), and a traffic surge on ``api-gateway``; then calm, so the breakers close again. A newcomer
sees breakers open and close, fallbacks answer, retries back off, bulkheads refuse, children
restart and health scores move.

The live view is the monitor (:mod:`supervisor._monitor`) beside the running tree; on a console
that is not a terminal, or with ``--plain``, a plain text snapshot is printed every few seconds,
with the chaos and the breakers' openings and closings in between. The program ends on its own
after ``--duration`` seconds (calls still in flight are let finish, then the tree is stopped in
order) or on Ctrl-C (the tree is stopped in order too); either way it prints a summary table.

:func:`run_demo` is the core, a plain trio function: under ``trio.testing.MockClock`` with
``autojump_threshold=0`` it runs in a moment, and with the same ``seed`` its summary is the same.
Only the runtime dependencies are used (trio, attrs, rich).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import enum
import math
import random
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
import trio
from rich import box
from rich.console import Console
from rich.table import Table

import actors

from ._breaker import CircuitState, CircuitStateChange
from ._bus import EventBus
from ._config import seconds_argument
from ._events import ChildCrashed, ChildRestarted, IntensityExceeded
from ._monitor import monitor
from ._snapshot import NodeSnapshot, SystemSnapshot
from ._specs import (
    BreakerSpec,
    BulkheadSpec,
    FallbackSpec,
    RestartBackoff,
    RetrySpec,
    ServiceSpec,
    Strategy,
    SupervisorSpec,
)
from ._tree import Tree, run_tree

__all__ = [
    "DemoSummary",
    "Query",
    "ServiceSummary",
    "main",
    "run_demo",
    "summary_lines",
    "summary_table",
]

_PROG: Final = "python -m supervisor demo"
_INTERRUPTED: Final = 130
_KEYS: Final = 8
"""Distinct request keys per service (so cached answers can serve as fallbacks)."""
_BASE_ERROR_RATE: Final = 0.002
"""How often a backend fails when nothing is wrong (each failure crashes its service actor)."""


# -- the simulated backends ------------------------------------------------------------------------


class BackendError(Exception):
    """A simulated backend answered with an error."""


class BackendUnavailable(BackendError):
    """A simulated backend refused the connection (an outage)."""


class StartFailed(Exception):
    """A service actor could not start (the crash loop of the chaos schedule)."""


@attrs.frozen
class Query:
    """A request to a simulated backend: its ``key`` (what equal requests share, so the cache
    fallback can answer it) and the random source of its outcome.

    Every request carries its own source, seeded from the run's seed and the request's place in
    its caller's sequence, so its latencies and errors do not depend on the order in which trio
    happens to run tasks woken at the same moment: the run is repeatable by seed.
    """

    key: str
    rng: random.Random = attrs.field(eq=False, repr=False)


@attrs.define(eq=False)
class _Backend:
    """An in-process fake dependency; the chaos schedule changes its settings."""

    name: str
    latency: float
    """Median latency, in seconds."""
    error_rate: float = _BASE_ERROR_RATE
    slowdown: float = 1.0
    down: bool = False
    poisoned: bool = False
    """The next request crashes the actor (a bug), and its next ``failing_starts`` starts fail."""
    failing_starts: int = 0
    pending_failing_starts: int = 0

    def start(self) -> None:
        """Called by the service actor's ``on_start``; raises :class:`StartFailed` while the crash
        loop lasts."""
        if self.failing_starts > 0:
            self.failing_starts -= 1
            raise StartFailed(f"{self.name}: cannot load its configuration")

    async def handle(self, request: Query) -> str:
        """Answer ``request`` after a simulated latency, or raise :class:`BackendError`."""
        if self.poisoned:
            self.poisoned = False
            self.failing_starts = self.pending_failing_starts
            raise RuntimeError(f"{self.name}: corrupted state (a bug)")
        # Drawn together, so each attempt takes exactly two draws whatever happens.
        spread = request.rng.random()
        failing = request.rng.random() < self.error_rate
        if self.down:
            await trio.sleep(0.0005 + spread * 0.001)
            raise BackendUnavailable(f"{self.name}: connection refused")
        await trio.sleep(self.latency * self.slowdown * (0.5 + spread * spread * 2.5))
        if failing:
            raise BackendError(f"{self.name}: internal error")
        return f"{self.name}:{request.key}"


class _ServiceActor(actors.Actor[Query]):
    """The service actor of one backend: its ``receive`` is the backend's answer (an error of the
    backend is a crash of the actor, as with any client)."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    async def on_start(self) -> None:
        self._backend.start()

    async def receive(self, message: Query) -> str:
        return await self._backend.handle(message)


# -- the tree and the schedule ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Plan:
    """One service of the demo: where it sits, how its backend behaves, how often it is called."""

    supervisor: str
    name: str
    latency: float
    interval: float
    """Seconds between two calls of its caller."""
    fallback: FallbackSpec | None
    failure_threshold: int = 3
    max_concurrent: int = 4
    max_queued: int = 8


def _degraded_payment(request: Query) -> str:
    """Degraded answer of ``payments``: accept now, charge later."""
    return f"payments:{request.key}:queued-for-later"


# Intervals are irregular on purpose: no two events of the simulation fall on the same instant, so
# the order of tasks woken together never decides an outcome (the run is repeatable by seed).
_PLANS: Final = (
    _Plan(
        supervisor="frontend",
        name="api-gateway",
        latency=0.02,
        interval=0.0473,
        fallback=FallbackSpec(default="gateway:static-page"),
        failure_threshold=5,
        max_concurrent=4,
        max_queued=4,
    ),
    _Plan(
        supervisor="frontend",
        name="auth",
        latency=0.015,
        interval=0.0977,
        fallback=FallbackSpec(cache_ttl=30.0),
        failure_threshold=5,
    ),
    _Plan(
        supervisor="backend",
        name="db",
        latency=0.03,
        interval=0.0791,
        fallback=FallbackSpec(cache_ttl=60.0),
    ),
    _Plan(supervisor="backend", name="cache", latency=0.005, interval=0.0619, fallback=None),
    _Plan(
        supervisor="backend",
        name="payments",
        latency=0.06,
        interval=0.1931,
        fallback=FallbackSpec(degraded=_degraded_payment),
    ),
    _Plan(
        supervisor="backend",
        name="search",
        latency=0.04,
        interval=0.1163,
        fallback=FallbackSpec(cache_ttl=10.0),
    ),
)

_RETRY: Final = RetrySpec(max_attempts=3, initial_delay=0.05, max_delay=0.4, jitter=False)
_TIMEOUT: Final = 0.5
_BACKOFF: Final = RestartBackoff(initial_delay=0.05, max_delay=0.4, jitter=False)


def _service_spec(plan: _Plan, backend: _Backend) -> ServiceSpec:
    return ServiceSpec(
        name=plan.name,
        factory=_ServiceActor,
        args=(backend,),
        timeout=_TIMEOUT,
        breaker=BreakerSpec(failure_threshold=plan.failure_threshold, timeout=2.0),
        retry=_RETRY,
        bulkhead=BulkheadSpec(max_concurrent=plan.max_concurrent, max_queued=plan.max_queued),
        fallback=plan.fallback,
        shutdown=0.5,
    )


def _tree_spec(backends: dict[str, _Backend]) -> SupervisorSpec:
    def children(supervisor: str) -> list[ServiceSpec]:
        return [
            _service_spec(plan, backends[plan.name])
            for plan in _PLANS
            if plan.supervisor == supervisor
        ]

    frontend = SupervisorSpec(
        name="frontend",
        children=children("frontend"),
        strategy=Strategy.ONE_FOR_ONE,
        max_restarts=6,
        within=10.0,
        backoff=_BACKOFF,
    )
    backend = SupervisorSpec(
        name="backend",
        children=children("backend"),
        strategy=Strategy.REST_FOR_ONE,
        max_restarts=12,
        within=10.0,
        backoff=_BACKOFF,
    )
    return SupervisorSpec(
        name="app", children=[frontend, backend], max_restarts=10, within=30.0, backoff=_BACKOFF
    )


class _Chaos(enum.Enum):
    """What the chaos schedule does."""

    FAILURE_BURST = "failure burst"
    FAILURES_END = "failures end"
    LATENCY_SPIKE = "latency spike"
    LATENCY_ENDS = "latency back to normal"
    OUTAGE = "outage"
    OUTAGE_ENDS = "outage ends"
    CRASH_LOOP = "crash loop"
    SURGE = "traffic surge"
    CALM = "calm"


@attrs.frozen(kw_only=True)
class _Step:
    at: float
    """When, as a fraction of the duration."""
    chaos: _Chaos
    service: str
    note: str


_SCHEDULE: Final = (
    _Step(at=0.10, chaos=_Chaos.FAILURE_BURST, service="db", note="80% of queries fail"),
    _Step(at=0.22, chaos=_Chaos.FAILURES_END, service="db", note="queries succeed again"),
    _Step(at=0.28, chaos=_Chaos.LATENCY_SPIKE, service="search", note="answers 25x slower"),
    _Step(at=0.40, chaos=_Chaos.LATENCY_ENDS, service="search", note="answers quick again"),
    _Step(at=0.45, chaos=_Chaos.OUTAGE, service="payments", note="connection refused"),
    _Step(
        at=0.52,
        chaos=_Chaos.CRASH_LOOP,
        service="auth",
        note="a bug crashes the actor; its next 2 starts fail",
    ),
    _Step(at=0.62, chaos=_Chaos.OUTAGE_ENDS, service="payments", note="the backend is back"),
    _Step(
        at=0.72, chaos=_Chaos.SURGE, service="api-gateway", note="40 requests at the same moment"
    ),
    _Step(at=0.80, chaos=_Chaos.CALM, service="", note="no more chaos: watch the breakers close"),
)
_SURGE: Final = 40


# -- the summary -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ServiceSummary:
    """What one service went through during a demo run."""

    path: str
    """The service's path, e.g. ``"app/backend/db"``."""
    calls: int
    """Calls the demo's callers made."""
    ok: int
    """Calls the service answered."""
    failed: int
    """Calls whose last attempt failed (the fallback may then have answered)."""
    refused: int
    """Calls refused by the breaker or the bulkhead (the fallback may then have answered)."""
    fallbacks: int
    """Calls answered by the fallback."""
    retries: int
    """Retries scheduled."""
    restarts: int
    """Restarts of the service actor by its supervisor."""
    breaker_opens: int
    """Times its breaker opened."""
    breaker: str
    """The breaker's state at the end."""
    state: str
    """The child's state at the end (``running``, ``parked``, ...)."""
    health: float
    """Its health score (0 to 100) at the end."""


@attrs.frozen(kw_only=True)
class DemoSummary:
    """The outcome of :func:`run_demo`."""

    seed: int
    """The seed of the run."""
    duration: float
    """Seconds the callers ran."""
    services: tuple[ServiceSummary, ...]
    """One row per service, in tree order."""
    interrupted: bool = False
    """Whether the run was cut short (Ctrl-C)."""


def summary_table(summary: DemoSummary) -> Table:
    """The summary as a rich table: one row per service."""
    title = f"summary: seed {summary.seed}, {summary.duration:g}s"
    if summary.interrupted:
        title += " (interrupted)"
    # Compact enough for an 80-column terminal: the service's name only (the tree is in the
    # title), the box's one space between columns and no padding.
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        show_edge=False,
        padding=0,
    )
    table.add_column("service", no_wrap=True)
    for header in ("calls", "ok", "failed", "refused", "fallbacks", "retries", "restarts", "opens"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("breaker", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("health", justify="right", no_wrap=True)
    for row in summary.services:
        table.add_row(
            row.path.rpartition("/")[2],
            *(
                str(value)
                for value in (
                    row.calls,
                    row.ok,
                    row.failed,
                    row.refused,
                    row.fallbacks,
                    row.retries,
                    row.restarts,
                    row.breaker_opens,
                )
            ),
            row.breaker,
            row.state,
            f"{row.health:.0f}",
        )
    return table


_TABLE_WIDTH: Final = 100
"""Columns the summary table needs; a narrower console gets :func:`summary_lines` instead."""


def summary_lines(summary: DemoSummary) -> list[str]:
    """The summary as one line of text per service (for consoles too narrow for the table)."""
    lines = [
        f"summary: seed {summary.seed}, {summary.duration:g}s"
        + (" (interrupted)" if summary.interrupted else "")
    ]
    for row in summary.services:
        lines.append(
            f"  {row.path.rpartition('/')[2]}: {row.calls} calls, {row.ok} ok, "
            f"{row.failed} failed, {row.refused} refused, {row.fallbacks} fallbacks, "
            f"{row.retries} retries, {row.restarts} restarts, {row.breaker_opens} opens; "
            f"breaker {row.breaker}, {row.state}, health {row.health:.0f}"
        )
    return lines


# -- the run -----------------------------------------------------------------------------------


def _nodes(node: NodeSnapshot) -> dict[str, NodeSnapshot]:
    found = {node.path: node}
    for child in node.children:
        found.update(_nodes(child))
    return found


@attrs.define(eq=False)
class _Run:
    """The state of one demo run: tallies kept from the events and the callers."""

    seed: int
    duration: float
    console: Console
    plain: bool
    start: float = 0.0
    calls: collections.Counter[str] = attrs.field(factory=collections.Counter)
    restarts: collections.Counter[str] = attrs.field(factory=collections.Counter)
    opens: collections.Counter[str] = attrs.field(factory=collections.Counter)
    paths: list[str] = attrs.field(factory=list)
    final: dict[str, ServiceSummary] = attrs.field(factory=dict)

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{trio.current_time() - self.start:6.1f}s[/] {text}")

    def on_event(self, event: object) -> None:
        """The bus listener (synchronous): count, and tell the transitions worth reading."""
        if isinstance(event, CircuitStateChange):
            name = event.name.rpartition("/")[2]
            if event.new_state is CircuitState.OPEN:
                self.opens[event.name] += 1
                if self.plain:
                    self.say(f"[bold red]breaker open[/]: {name} ({event.reason.value})")
            elif event.new_state is CircuitState.CLOSED and self.plain:
                self.say(f"[green]breaker closed[/]: {name}")
        elif isinstance(event, ChildRestarted):
            self.restarts[event.path] += 1
            if self.plain and event.path in self.paths:
                how = "on probation" if event.probation else f"after {event.delay:.2f}s backoff"
                self.say(f"[yellow]restarted[/] {event.path.rpartition('/')[2]} {how}")
        elif isinstance(event, ChildCrashed) and self.plain:
            self.say(f"[red]crashed[/] {event.path.partition('/')[2]}: {event.error}")
        elif isinstance(event, IntensityExceeded) and self.plain:
            self.say(f"[bold red]gave up[/] {event.path}: too many restarts")

    async def chaos(self, backends: dict[str, _Backend], gateway: Callable[[Query], Any]) -> None:
        for step in _SCHEDULE:
            await trio.sleep_until(self.start + step.at * self.duration)
            backend = backends.get(step.service)
            if backend is not None:
                self._apply(step.chaos, backend)
            where = f"{step.service}: " if step.service else ""
            self.say(f"[bold magenta]chaos[/] {step.chaos.value}: {where}{step.note}")
            if step.chaos is _Chaos.SURGE:
                # Identical requests: whichever of them the bulkhead admits, the outcome is the
                # same (trio runs tasks woken together in no fixed order).
                async with trio.open_nursery() as surge:
                    for _ in range(_SURGE):
                        self.calls[_path_of(self.paths, step.service)] += 1
                        query = Query("k0", random.Random(f"{self.seed}/surge"))
                        surge.start_soon(_quiet_call, gateway, query)

    @staticmethod
    def _apply(chaos: _Chaos, backend: _Backend) -> None:
        if chaos is _Chaos.FAILURE_BURST:
            backend.error_rate = 0.8
        elif chaos is _Chaos.FAILURES_END:
            backend.error_rate = _BASE_ERROR_RATE
        elif chaos is _Chaos.LATENCY_SPIKE:
            backend.slowdown = 25.0
        elif chaos is _Chaos.LATENCY_ENDS:
            backend.slowdown = 1.0
        elif chaos is _Chaos.OUTAGE:
            backend.down = True
        elif chaos is _Chaos.OUTAGE_ENDS:
            backend.down = False
        elif chaos is _Chaos.CRASH_LOOP:
            backend.poisoned = True
            backend.pending_failing_starts = 2

    async def caller(
        self, path: str, call: Callable[[Query], Any], interval: float, until: float
    ) -> None:
        """Call ``path`` every ``interval`` seconds until ``until``, without waiting for the
        answers (an open loop, as real traffic is); each call runs in its own task."""
        rng = random.Random(f"{self.seed}/caller/{path}")
        async with trio.open_nursery() as calls:
            for serial in range(math.ceil((until - trio.current_time()) / interval)):
                if trio.current_time() >= until:
                    break
                self.calls[path] += 1
                query = Query(
                    f"k{rng.randrange(_KEYS)}", random.Random(f"{self.seed}/{path}/{serial}")
                )
                calls.start_soon(_quiet_call, call, query)
                await trio.sleep(interval)
        # Leaving the nursery waited for every call (each bounded by its timeout).

    async def plain_snapshots(self, tree: Tree, every: float) -> None:
        """Print a plain text snapshot every ``every`` seconds until cancelled."""
        for tick in range(1, math.ceil(self.duration / every) + 1):
            await trio.sleep_until(self.start + tick * every)
            self.print_snapshot(tree.snapshot())

    def print_snapshot(self, snapshot: SystemSnapshot) -> None:
        nodes = _nodes(snapshot.tree)
        lines = [f"[bold]-- snapshot at {snapshot.at - self.start:.1f}s --[/]"]
        for service in snapshot.services:
            node = nodes.get(service.path)
            state = node.state if node is not None else "?"
            lines.append(
                f"  {service.path.partition('/')[2]:<22} {state:<10} "
                f"breaker {service.breaker or '-':<9} health {service.health_score:5.1f}  "
                f"{service.calls_per_second:5.1f} calls/s  p99 {service.latency.p99:6.1f} ms  "
                f"errors {service.error_rate:4.0%}  in flight {service.in_flight}"
            )
        self.console.print("\n".join(lines), highlight=False)

    def record_final(self, tree: Tree) -> None:
        """Record each service's final numbers (also works once the tree has stopped)."""
        nodes = _nodes(tree.nodes())
        metrics = tree.metrics
        for path, ref in tree.services().items():
            stats = ref.statistics()
            node = nodes.get(path)
            health = 100.0
            if metrics is not None:
                with contextlib.suppress(KeyError):  # no event of it was seen yet
                    health = metrics.health(path).health_score
            self.final[path] = ServiceSummary(
                path=path,
                calls=self.calls[path],
                ok=stats.completed,
                failed=stats.failed,
                refused=stats.refused,
                fallbacks=stats.fallbacks,
                retries=stats.retries,
                restarts=self.restarts[path],
                breaker_opens=self.opens[path],
                breaker=stats.state.value if stats.state is not None else "-",
                state=node.state if node is not None else "terminated",
                health=round(health, 1),
            )

    def summary(self, *, interrupted: bool) -> DemoSummary:
        rows = tuple(self.final[path] for path in self.paths if path in self.final)
        return DemoSummary(
            seed=self.seed, duration=self.duration, services=rows, interrupted=interrupted
        )


def _path_of(paths: list[str], name: str) -> str:
    """The path among ``paths`` whose last part is ``name``."""
    return next(path for path in paths if path.rpartition("/")[2] == name)


async def _quiet_call(call: Callable[[Query], Any], request: Query) -> None:
    # The outcome is counted by the service itself; an error that reaches the caller (no
    # fallback, or a cache miss) is part of the show, not a failure of the demo.
    with contextlib.suppress(Exception):
        await call(request)


async def run_demo(
    duration: float = 30.0,
    seed: int = 0,
    console: Console | None = None,
    live: bool = True,
) -> DemoSummary:
    """Run the demo for ``duration`` seconds of trio time and print its summary table.

    Args:
        duration: seconds the callers send requests (> 0); the chaos schedule is spread over it.
            Calls still in flight then are let finish (each is bounded by its 0.5 s timeout)
            before the tree is stopped.
        seed: seeds every random draw (backends, request keys; retries and restarts back off
            without jitter). Under ``trio.testing.MockClock(autojump_threshold=0)`` two runs with
            the same seed give the same summary.
        console: where to print (default: a new :class:`rich.console.Console`).
        live: show the live monitor when ``console`` is a terminal; otherwise (or with
            ``live=False``) print a plain text snapshot every few seconds.

    Returns:
        The summary (also printed as a table).

    Raises:
        ValueError: ``duration`` is not a finite number > 0.

    Cancellation and ``KeyboardInterrupt``: the tree is stopped in order, the summary so far is
    printed (marked interrupted), and the exception propagates.
    """
    if not (isinstance(duration, int | float) and math.isfinite(duration) and duration > 0):
        raise ValueError(f"`duration` must be a finite number > 0 (got {duration!r})")
    console = console if console is not None else Console()
    use_monitor = live and console.is_terminal
    run = _Run(seed=seed, duration=float(duration), console=console, plain=not use_monitor)
    backends = {plan.name: _Backend(name=plan.name, latency=plan.latency) for plan in _PLANS}
    run.paths = [f"app/{plan.supervisor}/{plan.name}" for plan in _PLANS]
    bus: EventBus[Any] = EventBus()
    bus.add_listener(run.on_event)
    run.start = trio.current_time()
    console.print(
        f"[bold]trio-supervisor demo[/]: seed {seed}, {duration:g}s "
        "(app / frontend: api-gateway, auth / backend, rest_for_one: db, cache, payments, search)"
    )
    interrupted = True
    tree: Tree | None = None
    try:
        async with run_tree(_tree_spec(backends), events=bus, rng=random.Random(seed)) as tree:
            await _drive(run, tree, backends, use_monitor=use_monitor)
            run.record_final(tree)
        interrupted = False
    finally:
        if tree is not None and not run.final:
            run.record_final(tree)  # interrupted: the numbers so far, of the stopped tree
        summary = run.summary(interrupted=interrupted)
        if console.width >= _TABLE_WIDTH:
            console.print(summary_table(summary))
        else:
            console.print("\n".join(summary_lines(summary)), highlight=False)
    return summary


async def _drive(
    run: _Run, tree: Tree, backends: dict[str, _Backend], *, use_monitor: bool
) -> None:
    until = run.start + run.duration
    refs = tree.services()
    async with trio.open_nursery() as shows:
        if use_monitor:
            # The monitor stops with the nursery; its first view is drawn before the callers run.
            await shows.start(_monitor_beside, tree, run.console)
        else:
            every = 5.0 if run.duration >= 15 else max(0.5, run.duration / 3)
            shows.start_soon(run.plain_snapshots, tree, every)
        shows.start_soon(run.chaos, backends, refs[_path_of(run.paths, "api-gateway")].call)
        async with trio.open_nursery() as callers:
            for plan in _PLANS:
                path = _path_of(run.paths, plan.name)
                callers.start_soon(run.caller, path, refs[path].call, plan.interval, until)
        shows.cancel_scope.cancel()
    # Failing the run on a lost request would hide the show; the callers' nurseries already
    # waited for every call, each bounded by its timeout.


async def _monitor_beside(
    tree: Tree, console: Console, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    async with monitor(tree, interval=0.5, console=console):
        task_status.started()
        await trio.sleep_forever()


# -- the command line --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Run a supervision tree of simulated flaky services under a chaos schedule.",
    )
    parser.add_argument(
        "--duration", type=seconds_argument, default=30.0, help="seconds to run (default 30)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of every random draw (default: a new one)"
    )
    parser.add_argument(
        "--plain", action="store_true", help="print plain text snapshots, not the live view"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``demo`` command: parse ``argv`` (default ``sys.argv[1:]``), run the demo, print the
    summary. Returns the exit code: 0 when the demo ran to its end, 130 when interrupted with
    Ctrl-C (the tree is stopped in order and the summary printed first); argparse exits with 2
    on a bad option."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    seed: int = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    console = Console()
    if not console.is_terminal:
        # A pipe or a log file: wide enough for the snapshot lines and the summary table.
        console = Console(width=max(console.width, 132))
    try:
        trio.run(run_demo, args.duration, seed, console, not args.plain)
    except KeyboardInterrupt:
        console.print(f"interrupted; run it again with --seed {seed}")
        return _INTERRUPTED
    console.print(f"run it again with --seed {seed} for the same show")
    return 0


if __name__ == "__main__":
    sys.exit(main())
