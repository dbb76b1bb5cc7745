"""Hedges and the adaptive limit as a running tree reports them: loaded from TOML, counted in
snapshots (old JSON still loads), exported to Prometheus, drawn by the monitor."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from rich.console import Console

import actors
from supervisor import (
    ConfigError,
    ServiceSnapshot,
    load_tree,
    load_tree_file,
    render,
    run_tree,
    snapshot_from_json,
    snapshot_to_json,
)
from supervisor.cores import HedgeLaunched, HedgeSettled, LimitAlgorithm
from supervisor.observe._aggregates import ServiceMetrics
from supervisor.observe._describe import describe_event

EXPECTED = Path(__file__).parent / "expected"


class Search(actors.Actor[Any]):
    """Its first request takes 5 s, every later one 10 ms."""

    def __init__(self) -> None:
        self.n = 0

    async def receive(self, message: Any) -> Any:
        self.n += 1
        await trio.sleep(5.0 if self.n == 1 else 0.01)
        return message


TOML = """
name = "app"

[[children]]
name = "search"
factory = "test_limits_view:Search"

[children.hedge]
delay = 0.2
max_hedges = 2
percentile = 0.95

[children.bulkhead]
max_concurrent = 20
max_queued = 10

[children.bulkhead.adaptive]
algorithm = "aimd"
initial_limit = 4
tolerance = 1.5
"""


def test_toml_loads_hedge_and_adaptive_limit(tmp_path: Path) -> None:
    """A TOML tree sets both rules; the service is recognised by its `hedge` table."""
    path = tmp_path / "tree.toml"
    path.write_text(TOML)
    spec = load_tree_file(path)
    (search,) = spec.children
    assert search.hedge.delay == 0.2  # type: ignore[union-attr]
    assert search.hedge.percentile == 0.95  # type: ignore[union-attr]
    adaptive = search.bulkhead.adaptive  # type: ignore[union-attr]
    assert adaptive is not None
    assert (adaptive.algorithm, adaptive.initial_limit) == (LimitAlgorithm.AIMD, 4)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"hedge": {"delay": -1}},
            "children[0].hedge.delay: `delay` must be a number >= 0 (got -1)",
        ),
        ({"hedge": {"delay": 1, "max_hedges": 0}}, "children[0].hedge.max_hedges: `max_hedges`"),
        ({"hedge": {}}, "children[0].hedge.delay: required field missing"),
        ({"hedge": {"delay": 1, "colour": 1}}, "children[0].hedge: unknown field(s) colour"),
        (
            {"bulkhead": {"adaptive": {"algorithm": "vegas"}}},
            "children[0].bulkhead.adaptive.algorithm: `algorithm` must be",
        ),
        (
            {"bulkhead": {"max_concurrent": 3, "adaptive": {"initial_limit": 5}}},
            "children[0].bulkhead.adaptive.initial_limit: `initial_limit` must be at most the "
            "bulkhead's `max_concurrent` (3) (got 5)",
        ),
        (
            {"bulkhead": {"adaptive": {"initial_limit": 1, "smoothing": 2}}},
            "children[0].bulkhead.adaptive.smoothing: `smoothing` must be a number > 0.0",
        ),
    ],
)
def test_bad_data_names_the_field(patch: dict[str, Any], message: str) -> None:
    """Each bad value gives one ConfigError with the path of the field."""
    child = {"name": "search", "factory": "test_limits_view:Search", **patch}
    if "bulkhead" in patch:
        child["bulkhead"] = {"max_concurrent": 20, **patch["bulkhead"]}
    with pytest.raises(ConfigError) as info:
        load_tree({"name": "app", "children": [child]})
    assert message in str(info.value)


async def test_snapshot_counts_hedges_and_shows_the_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A slow first request is hedged and the hedge wins: the snapshot counts one hedge, one
    hedge win and one cancelled attempt, and shows the live adaptive limit; the events read
    as text."""
    spec = load_tree(
        {
            "name": "app",
            "children": [
                {
                    "name": "search",
                    "factory": Search,
                    "hedge": {"delay": 0.2},
                    "bulkhead": {
                        "max_concurrent": 8,
                        "adaptive": {"initial_limit": 3, "min_limit": 3},
                    },
                }
            ],
        }
    )
    async with run_tree(spec) as tree:
        assert await tree.service("search").call("q") == "q"
        snap = tree.snapshot()
    (search,) = snap.services
    assert (search.hedges, search.hedge_wins, search.hedges_cancelled) == (1, 1, 1)
    assert search.concurrency_limit == 3
    assert search.successes == 1
    kinds = [event.kind for event in snap.events]
    assert "HedgeLaunched" in kinds
    assert "HedgeSettled" in kinds
    text = [event.detail for event in snap.events if event.kind.startswith("Hedge")]
    assert text == ["hedge #1 sent after 0.2s (no answer)", "attempt 1 won; 1 hedged, 1 cancelled"]
    assert snapshot_from_json(snapshot_to_json(snap)) == snap


def test_hedge_events_do_not_settle_a_pending_failure() -> None:
    """Hedge events of a service are counted by name and, like breaker changes, do not end the
    pairing of a failed attempt with its retry."""
    metrics = ServiceMetrics("app/s", created_at=0.0)
    metrics.record(HedgeLaunched(name="app/s", at=1.0, hedge=1, after=0.2, reason="delay"))
    metrics.record(HedgeLaunched(name="app/other", at=1.0, hedge=1, after=0.2, reason="delay"))
    metrics.record(HedgeSettled(name="app/s", at=1.5, hedges=2, winner=0, cancelled=2, failed=0))
    snap = metrics.snapshot(2.0)
    assert (snap.hedges, snap.hedge_wins, snap.hedges_cancelled) == (1, 0, 2)
    assert (
        describe_event(
            HedgeSettled(name="app/s", at=1.5, hedges=1, winner=None, cancelled=0, failed=2)
        ).detail
        == "every attempt failed; 1 hedged, 0 cancelled"
    )


def test_old_json_without_the_new_fields_still_loads() -> None:
    """A snapshot written before these fields existed loads with their defaults."""
    data = json.loads((EXPECTED / "sample.json").read_text())
    for service in data["services"]:
        for field in ("concurrency_limit", "hedges", "hedge_wins", "hedges_cancelled"):
            assert field not in service
    snap = snapshot_from_json(json.dumps(data))
    assert all(s.concurrency_limit is None and s.hedges == 0 for s in snap.services)


def _capture(width: int, limit: int | None) -> str:
    snap = snapshot_from_json((EXPECTED / "sample.json").read_text())
    first: ServiceSnapshot = attrs.evolve(snap.services[2], concurrency_limit=limit)
    snap = attrs.evolve(snap, services=(snap.services[0], snap.services[1], first))
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(render(snap, width=width))
    return console.export_text()


def test_the_monitor_shows_the_limit() -> None:
    """Wide: a Limit column ("-" for a fixed bulkhead), only when a service has a limit; compact:
    the limit in brackets after the in-flight count."""
    assert "Limit" not in _capture(140, None)
    wide = _capture(140, 12)
    row = next(line for line in wide.splitlines() if line.startswith("users-db"))
    assert row.split()[4:6] == ["7/12", "12"]
    assert "Limit" in wide
    assert (
        next(line for line in wide.splitlines() if line.startswith("backend/payments")).split()[5]
        == "-"
    )
    compact = _capture(80, 12)
    assert "7(12)/12" in compact
    assert "7(12)/12" not in _capture(80, None)
