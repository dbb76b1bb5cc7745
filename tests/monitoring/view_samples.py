"""A demo-like snapshot (two supervisors, six services) during an outage of one of them, for the
rendering tests of the events pane, the folded tree and the watch view."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console, RenderableType

from supervisor.observe._snapshot import (
    EventSnapshot,
    LatencySnapshot,
    NodeSnapshot,
    ServiceSnapshot,
    SystemSnapshot,
)

FRONTEND = ("api-gateway", "auth")
BACKEND = ("db", "cache", "payments", "search")


def service_node(name: str, parent: str, **changes: Any) -> NodeSnapshot:
    return NodeSnapshot(
        path=f"app/{parent}/{name}",
        name=name,
        kind="service",
        state=changes.pop("state", "running"),
        breaker=changes.pop("breaker", "closed"),
        **changes,
    )


def outage(
    *, at: float = 30.0, payments: str = "open", search: str = "closed", repeats: int = 20
) -> SystemSnapshot:
    """The tree at ``at``: ``payments``'s breaker in state ``payments`` (parked when open),
    ``search``'s in state ``search``, and ``repeats`` fallback/refusal pairs of payments among
    the events, after a few transitions."""
    frontend = NodeSnapshot(
        path="app/frontend",
        name="frontend",
        kind="supervisor",
        state="running",
        restart_budget=6,
        children=tuple(service_node(name, "frontend") for name in FRONTEND),
    )
    states = {"payments": payments, "search": search}
    backend = NodeSnapshot(
        path="app/backend",
        name="backend",
        kind="supervisor",
        state="running",
        restart_budget=10,
        children=tuple(
            service_node(
                name,
                "backend",
                breaker=states.get(name, "closed"),
                state="parked" if states.get(name) == "open" else "running",
                restarts=2 if name in states else 0,
            )
            for name in BACKEND
        ),
    )
    root = NodeSnapshot(
        path="app",
        name="app",
        kind="supervisor",
        state="running",
        restart_budget=10,
        children=(frontend, backend),
    )
    services = tuple(
        ServiceSnapshot(
            path=f"app/{parent}/{name}",
            breaker=states.get(name, "closed"),
            health_score=40.0 if name == "payments" else 100.0,
            calls_per_second=10.0,
            latency=LatencySnapshot(p50=20.0, p90=40.0, p99=80.0, samples=100),
            error_rate=0.5 if name == "payments" else 0.0,
        )
        for parent, names in (("frontend", FRONTEND), ("backend", BACKEND))
        for name in names
    )
    pay = "app/backend/payments"
    events = [
        EventSnapshot(at=10.0, kind="ChildCrashed", path=pay, detail="crashed: BackendError: down"),
        EventSnapshot(
            at=10.5,
            kind="CircuitStateChange",
            path=pay,
            detail="breaker closed -> open (failure_threshold)",
        ),
        EventSnapshot(
            at=11.0, kind="ChildParked", path=pay, detail="parked until t=15.000 (breaker open)"
        ),
        EventSnapshot(
            at=12.0, kind="RetryScheduled", path="app/backend/db", detail="attempt 1 failed"
        ),
    ]
    for i in range(repeats):
        t = 13.0 + i * 0.5
        events.append(
            EventSnapshot(
                at=t,
                kind="RequestRefused",
                path=pay,
                detail=f"refused: circuit_open, retry after {2.0 - i * 0.05:.3g}s",
            )
        )
        events.append(
            EventSnapshot(
                at=t,
                kind="FallbackUsed",
                path=pay,
                detail="cache fallback answered (CircuitOpenError)",
            )
        )
    return SystemSnapshot(
        at=at, name="app", tree=root, services=services, events=tuple(events), started_at=0.0
    )


def capture(renderable: RenderableType, width: int) -> str:
    """``renderable`` as text on a recording console without colour."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()
