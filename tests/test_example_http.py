"""The httpx example: a supervision tree guarding a real HTTP client against a flaky local server.

The example runs on the real clock (its server is a real socket on 127.0.0.1), so these tests
assert the shape of the story, not exact times or counts.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types

import pytest
import trio

httpx = pytest.importorskip("httpx")

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "http_service.py"


@pytest.fixture(scope="module")
def example() -> types.ModuleType:
    """The example module, loaded from its file."""
    spec = importlib.util.spec_from_file_location("example_http_service", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs and typing resolve the module's names through it
    spec.loader.exec_module(module)
    return module


async def test_the_story_happens(example: types.ModuleType) -> None:
    """The breaker opens, the cache answers, the parked actor comes back on probation, the
    breaker closes again, and every request gets exactly one answer or error."""
    lines: list[str] = []
    summary = await example.main(lines.append)
    text = "\n".join(lines)

    assert summary.requests > 100
    assert summary.answered + summary.errors == summary.requests
    assert summary.breaker_opened >= 1
    assert summary.from_cache >= 1
    assert summary.breaker_closed >= 1
    assert summary.final_state.value == "closed"
    assert summary.parked >= 1
    assert summary.probation >= 1
    assert summary.crashes >= 1
    assert summary.refused.get("circuit_open", 0) >= 1
    assert summary.server_statuses.get(200, 0) >= 1
    assert summary.server_statuses.get(500, 0) >= 1

    for phase in example.SCHEDULE:
        assert f"-- server: {phase.name}" in text
    for expected in (
        "breaker OPEN (failure threshold)",
        "cache answers instead",
        "while the breaker is open: parked until",
        "actor restarted on probation (breaker half-open)",
        "breaker CLOSED again",
        "summary",
    ):
        assert expected in text
    assert lines[-6] == "summary"
    assert lines[-5].startswith(f"  requests: {summary.requests}: {summary.answered} answered")
    assert lines[-3].endswith("now closed")


async def test_server_follows_its_schedule(example: types.ModuleType) -> None:
    """The flaky server answers 200, then 500, then slowly, then refuses connections, then 200
    again on the same port."""
    behaviour = example.Behaviour
    phase = example.Phase
    schedule = (
        phase(name="a", behaviour=behaviour.HEALTHY, duration=0.15, note=""),
        phase(name="b", behaviour=behaviour.ERRORS, duration=0.15, note=""),
        phase(name="c", behaviour=behaviour.SLOW, duration=0.15, note=""),
        phase(name="d", behaviour=behaviour.OUTAGE, duration=0.15, note=""),
        phase(name="e", behaviour=behaviour.HEALTHY, duration=0.15, note=""),
    )
    seen: list[str] = []
    server = example.FlakyServer(schedule, lambda p: seen.append(p.name))
    results: dict[str, object] = {}

    async def ask(
        client: httpx.AsyncClient, name: str, delay: float, path: str = "/price/2"
    ) -> None:
        await trio.sleep(delay)
        try:
            response = await client.get(path, timeout=0.05)
        except httpx.HTTPError as exc:
            results[name] = type(exc).__name__
        else:
            results[name] = (response.status_code, response.json())

    client = httpx.AsyncClient(verify=example.tls_settings())
    async with client, trio.open_nursery() as nursery:
        port = await nursery.start(server.run)
        client.base_url = f"http://127.0.0.1:{port}"
        async with trio.open_nursery() as askers:
            for index, name in enumerate("abcde"):
                askers.start_soon(ask, client, name, 0.05 + 0.15 * index)
            askers.start_soon(ask, client, "404", 0.0, "/nothing")

    assert seen == ["a", "b", "c", "d", "e"]
    assert results["404"] == (404, {"error": "no such path '/nothing'"})
    assert results["a"] == (200, {"item": 2, "price": 12, "served": 1})
    assert results["b"] == (500, {"error": "internal server error"})
    assert results["c"] == "ReadTimeout"
    assert results["d"] == "ConnectError"
    assert results["e"] == (200, {"item": 2, "price": 12, "served": 2})
    assert server.answered == {404: 1, 200: 2, 500: 1}
