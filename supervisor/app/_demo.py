"""The demonstration program: ``python -m supervisor demo [--duration S] [--seed N] [--plain]``.

A supervision tree of guarded services calling *simulated* flaky backends (in-process fakes whose
latencies and errors are drawn from a seeded :class:`random.Random`, all waits ``trio.sleep``)::

    app (one_for_one)
    ├── frontend (one_for_one): api-gateway, auth
    └── backend (rest_for_one): db, cache, payments, search

One caller task per service sends requests at a steady rate while a chaos schedule (placed at
fractions of ``--duration``, and built on the library's own fault injection: each incident is a
window of :class:`~supervisor.Fault` s in the services' ``faults``) makes things go wrong: a
failure burst in ``db`` (whose crashes also restart ``cache``, ``payments`` and ``search``:
``rest_for_one``), a latency spike in ``search``, an outage of the ``payments`` backend, a crash
loop of the ``auth`` actor (its restarts fail twice), and a traffic surge on ``api-gateway``; then
calm, so the breakers close again. A newcomer sees breakers open and close, fallbacks answer,
retries back off, bulkheads refuse, children restart and health scores move. ``db``'s breaker
decides on the failure rate of its last 6 queries (the others on failures in a row), and its
retries stay within a retry budget: during its burst the budget refuses retries ("retry budget
spent"), so the burst does not become a retry storm.

The live view is the monitor (:func:`supervisor.monitor`) beside the running tree; on a console
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
import functools
import math
import random
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
import trio
from rich.console import Console

from .._config import seconds_argument
from ..console._monitor import monitor
from ..observe._bus import EventBus
from ..observe._events import ChildCrashed, ChildRestarted, IntensityExceeded, RetryGaveUp
from ..observe._snapshot import NodeSnapshot, SystemSnapshot
from ..rules._breaker import CircuitState, CircuitStateChange
from ..rules._retry_plan import GiveUpReason
from ..tree._run import run_tree
from ..tree._tree import Tree
from ._demo_backends import (
    _KEYS,
    _PLANS,
    _SCHEDULE,
    _SURGE,
    Query,
    _Backend,
    _Chaos,
    _tree_spec,
)
from ._demo_summary import DemoSummary, ServiceSummary, summary_table

# -- the run -----------------------------------------------------------------------------------

_PROG: Final = "python -m supervisor demo"
_INTERRUPTED: Final = 130
_TOLD_OVER_BUDGET: Final = frozenset({1, 10, 100, 1000})
"""A service's retries refused by its budget are told at the first, the tenth, ..."""


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
    over_budget: collections.Counter[str] = attrs.field(factory=collections.Counter)
    paths: list[str] = attrs.field(factory=list)
    final: dict[str, ServiceSummary] = attrs.field(factory=dict)
    watch: str | None = None

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
        elif isinstance(event, RetryGaveUp) and event.reason is GiveUpReason.BUDGET:
            self.over_budget[event.path] += 1
            if self.plain and self.over_budget[event.path] in _TOLD_OVER_BUDGET:
                count = self.over_budget[event.path]
                self.say(
                    f"[yellow]retry budget spent[/]: {event.path.rpartition('/')[2]} "
                    f"({count} {'retry' if count == 1 else 'retries'} refused so far)"
                )

    async def chaos(self, gateway: Callable[[Query], Any]) -> None:
        """Tell the schedule as it happens (the faults themselves are in the services' specs and
        fire by themselves), and send the surge."""
        for step in _SCHEDULE:
            await trio.sleep_until(self.start + step.at * self.duration)
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
    *,
    watch: str | None = None,
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
        watch: a service the live view shows alone (see :class:`~supervisor.Monitor`).

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
    run = _Run(
        seed=seed, duration=float(duration), console=console, plain=not use_monitor, watch=watch
    )
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
        async with run_tree(
            _tree_spec(backends, run.duration), events=bus, rng=random.Random(seed)
        ) as tree:
            await _drive(run, tree, use_monitor=use_monitor)
            run.record_final(tree)
        interrupted = False
    finally:
        if tree is not None and not run.final:
            run.record_final(tree)  # interrupted: the numbers so far, of the stopped tree
        summary = run.summary(interrupted=interrupted)
        console.print(summary_table(summary, width=console.width))
    return summary


async def _drive(run: _Run, tree: Tree, *, use_monitor: bool) -> None:
    until = run.start + run.duration
    refs = tree.services()
    async with trio.open_nursery() as shows:
        if use_monitor:
            # The monitor stops with the nursery; its first view is drawn before the callers run.
            await shows.start(_monitor_beside, tree, run.console, run.watch)
        else:
            every = 5.0 if run.duration >= 15 else max(0.5, run.duration / 3)
            shows.start_soon(run.plain_snapshots, tree, every)
        shows.start_soon(run.chaos, refs[_path_of(run.paths, "api-gateway")].call)
        async with trio.open_nursery() as callers:
            for plan in _PLANS:
                path = _path_of(run.paths, plan.name)
                callers.start_soon(run.caller, path, refs[path].call, plan.interval, until)
        shows.cancel_scope.cancel()
    # Failing the run on a lost request would hide the show; the callers' nurseries already
    # waited for every call, each bounded by its timeout.


async def _monitor_beside(
    tree: Tree,
    console: Console,
    watch: str | None = None,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with monitor(tree, interval=0.5, console=console, watch=watch):
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
    parser.add_argument(
        "--watch",
        metavar="SERVICE",
        default=None,
        help="the live view shows this service alone (its last minute, breaker changes, events)",
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
        trio.run(
            functools.partial(run_demo, watch=args.watch),
            args.duration,
            seed,
            console,
            not args.plain,
        )
    except KeyboardInterrupt:
        console.print(f"interrupted; run it again with --seed {seed}")
        return _INTERRUPTED
    console.print(f"run it again with --seed {seed} for the same show")
    return 0


if __name__ == "__main__":
    sys.exit(main())
