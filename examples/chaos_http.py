"""A failure drill against a real HTTP server that never fails: the faults are injected.

The server and the service actor are those of ``examples/http_service.py`` (reused, not copied):
a small HTTP/1.1 server on ``127.0.0.1`` (trio + h11) and the ``prices`` service actor that owns
an :class:`httpx.AsyncClient`. Here the server stays healthy the whole time; instead the service's
spec injects faults inside its actor, on a timeline measured from the tree's start:

1. **0 - 0.5 s**, quiet: real answers from the server.
2. **0.5 - 1.2 s**, refused: every request fails with ``httpx.ConnectError`` before it leaves
   the actor. The actor crashes and is restarted, three failures open the breaker, the parked
   actor waits for half-open, and the cache answers meanwhile.
3. **1.2 - 1.7 s**, slow: each request waits 0.4 s more, beyond its 0.25 s timeout.
4. **1.7 s on**, quiet again: the breaker half-opens, trial requests succeed, it closes.

Twice, the script prints what the monitor shows (``supervisor.render`` of a tree snapshot, the
one-shot form of the live view): once the breaker has opened (the breaker column says ``open``,
the fallbacks column counts the cache's answers, and the latest events show the injected
faults beside the crashes), and at the end (closed again). It waits for those moments with the
test kit's ``wait_for_breaker`` and its event recorder. It runs on the real clock for about 2.5
seconds and talks only to ``127.0.0.1``.

Run it with ``python examples/chaos_http.py`` (needs ``httpx``).
"""

from __future__ import annotations

import collections
import io
import random
from collections.abc import Callable
from typing import Any, ClassVar, Final

import attrs
import http_service  # the sibling example: its server, its service actor, its tree
import httpx
import trio
from rich.console import Console

from supervisor import (
    CircuitOpenError,
    CircuitState,
    CircuitStateChange,
    EventRecorder,
    FallbackUsed,
    Fault,
    FaultInjected,
    FaultSpec,
    ServiceSpec,
    SupervisorSpec,
    Tree,
    render,
    run_tree,
    wait_for_breaker,
)

REFUSED: Final = (0.5, 1.2)
"""The window (seconds from the tree's start) in which requests are refused."""
SLOW: Final = (1.2, 1.7)
"""The window in which requests take 0.4 s more than they would."""
RUN: Final = 2.5
"""Seconds the callers call."""
MONITOR_WIDTH: Final = 130

FAULTS: Final = (
    Fault(
        error=httpx.ConnectError,
        message="connection refused (injected)",
        start=REFUSED[0],
        end=REFUSED[1],
    ),
    Fault(latency=0.4, start=SLOW[0], end=SLOW[1]),
)


class DrillPriceClient(http_service.PriceClient):
    """``http_service``'s service actor, closing what a crashed instance left open.

    An injected error crashes the instance *before* its ``receive`` runs, so the instance's own
    error path (which closes its HTTP client) never sees it, and the runtime calls no hook on a
    crashed instance. The next instance, made by the restart, closes its predecessor's client.
    """

    _previous: ClassVar[httpx.AsyncClient | None] = None

    async def on_start(self) -> None:
        await super().on_start()
        DrillPriceClient._previous = self._client

    async def on_restart(self, error: Exception | None) -> None:
        left, DrillPriceClient._previous = DrillPriceClient._previous, None
        if left is not None:
            with trio.CancelScope(shield=True):
                await left.aclose()
        await super().on_restart(error)


def tree_spec(base_url: str, *, seed: int = 1) -> SupervisorSpec:
    """``examples/http_service.py``'s tree, with :data:`FAULTS` injected into ``prices``."""
    spec = http_service.tree_spec(base_url)
    prices = spec.children[0]
    if not isinstance(prices, ServiceSpec):  # pragma: no cover - the sibling's tree is fixed
        raise TypeError("the http_service tree starts with its prices service")
    faulty = attrs.evolve(
        prices, factory=DrillPriceClient, faults=FaultSpec(inject=FAULTS, seed=seed)
    )
    return attrs.evolve(spec, children=[faulty])


@attrs.frozen(kw_only=True)
class Drill:
    """What one run of :func:`main` saw."""

    requests: int
    answered: int
    errors: int
    from_cache: int
    injected: dict[str, int]
    """Faults that fired, by kind (``"error"``, ``"latency"``)."""
    breaker_opened: int
    final_state: CircuitState
    server_statuses: dict[int, int]
    """What the (always healthy) server sent, by status code."""
    while_open: str
    """The monitor's view once the breaker had opened."""
    at_the_end: str
    """The monitor's view at the end."""


def _monitor_view(tree: Tree) -> str:
    console = Console(file=io.StringIO(), width=MONITOR_WIDTH, color_system=None)
    console.print(render(tree.snapshot(), width=MONITOR_WIDTH, max_events=30))
    return console.file.getvalue()  # type: ignore[attr-defined, no-any-return]


async def _caller(index: int, call: Callable[[str], Any], tally: collections.Counter[str]) -> None:
    path = f"/price/{index % http_service.ITEMS + 1}"
    await trio.sleep(index * http_service.PACE / http_service.CALLERS)
    for _ in range(int(RUN / http_service.PACE)):  # bounded: ends after RUN seconds
        tally["requests"] += 1
        try:
            await call(path)
        except Exception:  # an error is part of the drill; the tree counts it
            tally["errors"] += 1
        else:
            tally["answered"] += 1
        await trio.sleep(http_service.PACE)


async def main(out: Callable[[str], None] = print, *, seed: int = 1) -> Drill:
    """Run the drill and return what it saw (lines go to ``out``). Real clock."""
    http_service.tls_settings()  # loaded once, before the clock of the drill starts
    schedule = (
        http_service.Phase(
            name="healthy",
            behaviour=http_service.Behaviour.HEALTHY,
            duration=RUN + 1.0,
            note="answers every request",
        ),
    )
    recorder = EventRecorder()
    tally: collections.Counter[str] = collections.Counter()
    async with trio.open_nursery() as nursery:
        server = http_service.FlakyServer(schedule, lambda phase: None)
        port: int = await nursery.start(server.run)
        spec = tree_spec(f"http://127.0.0.1:{port}", seed=seed)
        async with run_tree(spec, events=recorder.bus, rng=random.Random(seed)) as tree:
            prices = tree.service("prices")
            out(f"server on 127.0.0.1:{port}; faults: refused {REFUSED}, slow {SLOW}")
            async with trio.open_nursery() as callers:
                for index in range(http_service.CALLERS):
                    callers.start_soon(_caller, index, prices.call, tally)
                await wait_for_breaker(prices, CircuitState.OPEN, timeout=REFUSED[1] + 0.5)
                # Let the cache answer a few refused requests, so that the view shows it.
                await recorder.wait_for(
                    FallbackUsed, 3, where=lambda e: isinstance(e.cause, CircuitOpenError)
                )
                while_open = _monitor_view(tree)
                out("-- the monitor, once the breaker opened --")
                out(while_open)
                await trio.sleep_until(tree.started_at + SLOW[1])
                await wait_for_breaker(prices, CircuitState.CLOSED, timeout=RUN)
            at_the_end = _monitor_view(tree)
            out("-- the monitor, at the end --")
            out(at_the_end)
            breaker = prices.breaker
            final = breaker.state if breaker is not None else CircuitState.CLOSED
        nursery.cancel_scope.cancel()
    injected = collections.Counter(event.kind.value for event in recorder.of(FaultInjected))
    drill = Drill(
        requests=tally["requests"],
        answered=tally["answered"],
        errors=tally["errors"],
        from_cache=len(recorder.of(FallbackUsed)),
        injected=dict(injected),
        breaker_opened=len(
            recorder.of(CircuitStateChange, where=lambda e: e.new_state is CircuitState.OPEN)
        ),
        final_state=final,
        server_statuses=dict(server.answered),
        while_open=while_open,
        at_the_end=at_the_end,
    )
    out(
        f"summary: {drill.requests} requests, {drill.answered} answered "
        f"({drill.from_cache} from the cache), {drill.errors} errors; injected {drill.injected}; "
        f"breaker opened {drill.breaker_opened}x, now {drill.final_state.value}; "
        f"the server sent {drill.server_statuses}"
    )
    return drill


if __name__ == "__main__":
    trio.run(main)
