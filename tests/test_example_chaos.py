"""The fault injection drill: a real HTTP server (on 127.0.0.1) that never fails, behind faults
injected into its service, and what the monitor shows of it.

The example runs on the real clock, so these tests assert what a user should see, not exact
times or counts."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import sys
import types

import pytest

pytest.importorskip("httpx")

EXAMPLES = pathlib.Path(__file__).parents[1] / "examples"


@pytest.fixture(scope="module")
def example() -> types.ModuleType:
    """The example module, loaded from its file (its sibling http_service importable)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(
            "example_chaos_http", EXAMPLES / "chaos_http.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


def _prices_row(view: str) -> dict[str, str]:
    lines = view.splitlines()
    head = next(line for line in lines if line.startswith("Service "))
    row = next(line for line in lines if line.startswith("prices "))
    return dict(zip(head.split(), row.split(), strict=True))


async def test_the_drill_shows_breakers_and_fallbacks(example: types.ModuleType) -> None:
    """The injected refusals open the breaker (the monitor says so, with the cache's answers
    counted and the injected faults among the latest events); the breaker closes again; the
    server itself never failed; every request got exactly one answer or error."""
    lines: list[str] = []
    drill = await example.main(lines.append)

    assert drill.requests == drill.answered + drill.errors
    assert drill.injected.get("error", 0) >= 3
    assert drill.breaker_opened >= 1
    assert drill.from_cache >= 3
    assert drill.final_state.value == "closed"
    assert set(drill.server_statuses) == {200}  # every failure the callers saw was injected

    while_open = drill.while_open
    assert re.search(r"prices \[service\] \w+ .*breaker open", while_open)
    assert "FaultInjected" in while_open
    assert "injected at request: ConnectError" in while_open
    row = _prices_row(while_open)
    assert row["Breaker"] == "open"
    assert int(row["Fallbacks"]) >= 3

    assert re.search(r"prices \[service\] running .*breaker closed", drill.at_the_end)
    assert _prices_row(drill.at_the_end)["Breaker"] == "closed"
    assert lines[-1].startswith(f"summary: {drill.requests} requests")


def test_the_faults_are_in_the_sibling_tree(example: types.ModuleType) -> None:
    """The drill's tree is http_service's tree with the faults added (and its actor closing what a
    crashed instance left open), its rules unchanged."""
    import http_service  # noqa: PLC0415 - importable only once the example put it on the path

    base = http_service.tree_spec("http://127.0.0.1:1")
    drill = example.tree_spec("http://127.0.0.1:1", seed=3)
    assert drill.children[0].faults.inject == example.FAULTS
    assert drill.children[0].faults.seed == 3
    assert drill.children[0].breaker == base.children[0].breaker
    assert drill.children[0].fallback == base.children[0].fallback
    assert issubclass(drill.children[0].factory, http_service.PriceClient)
