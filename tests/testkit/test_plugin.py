"""The pytest plugin: its fixtures run a tree and record its events, its marker sets the testing
mode, it loads with ``-p`` and through a conftest's ``pytest_plugins``, and the worked example of
docs/testing.md passes as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import actors
from supervisor import (
    BreakerSpec,
    CircuitState,
    EventRecorder,
    ServiceSpec,
    SupervisorSpec,
    Tree,
)

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
TEST_BLOCK = re.compile(r"```python test\n(.*?)```", re.DOTALL)
PLUGIN = "supervisor.testkit.pytest_plugin"
INI = "[pytest]\ntrio_mode = true\n"


def _doc_example() -> str:
    (block,) = TEST_BLOCK.findall(DOC.read_text())
    return str(block)


def test_the_worked_example_passes(pytester: pytest.Pytester) -> None:
    """The example test of docs/testing.md passes, loaded with ``-p``."""
    pytester.makeini(INI)
    pytester.makepyfile(test_shop=_doc_example())
    result = pytester.runpytest("-p", PLUGIN)
    result.assert_outcomes(passed=2)


def test_loaded_through_a_conftest(pytester: pytest.Pytester) -> None:
    """A top-level conftest's ``pytest_plugins`` loads it too; the marker reaches the mode."""
    pytester.makeini(INI)
    pytester.makeconftest(f"pytest_plugins = [{PLUGIN!r}]\n")
    pytester.makepyfile(
        test_mode="""
        import pytest

        @pytest.mark.supervisor_testing(max_attempts=2, retry_delay=0.5)
        def test_marker(supervisor_testing):
            assert supervisor_testing.max_attempts == 2
            assert supervisor_testing.retry_delay == 0.5

        def test_no_marker(supervisor_testing):
            assert supervisor_testing.retry_delay == 0.0

        @pytest.mark.supervisor_testing(max_attempts=3)
        def test_marker_without_the_fixture():
            from supervisor.guards._testing import current_mode

            assert current_mode().max_attempts == 3
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=3)


def test_loaded_twice_registers_once(pytester: pytest.Pytester) -> None:
    """Named both with ``-p`` and in a conftest (as an installed entry point of the same name
    and a conftest would), the plugin is registered once."""
    pytester.makeini(INI)
    pytester.makeconftest(f"pytest_plugins = [{PLUGIN!r}]\n")
    pytester.makepyfile(
        test_once="def test_recorder(supervisor_events):\n    assert not supervisor_events.events\n"
    )
    result = pytester.runpytest("-p", PLUGIN)
    result.assert_outcomes(passed=1)


def test_a_missing_spec_fails_clearly(pytester: pytest.Pytester) -> None:
    """Without a ``supervisor_spec`` fixture, a test using the tree fails saying what to do."""
    pytester.makeini(INI)
    pytester.makepyfile(
        test_nospec="""
        async def test_tree(supervisor_tree):
            pass
        """
    )
    result = pytester.runpytest("-p", PLUGIN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs a `supervisor_spec` fixture*"])


class Echo(actors.Actor[Any]):
    """Answers what it is asked."""

    async def receive(self, message: Any) -> Any:
        return message


class TestFixturesHere:
    """The fixtures, as this suite loads them (tests/conftest.py)."""

    @pytest.fixture
    def supervisor_spec(self) -> SupervisorSpec:
        return SupervisorSpec(
            name="app",
            children=[ServiceSpec(name="db", factory=Echo, breaker=BreakerSpec())],
        )

    async def test_tree_and_events(
        self, supervisor_tree: Tree, supervisor_events: EventRecorder
    ) -> None:
        """The tree runs the spec, publishing on the recorder's bus from its first start."""
        assert await supervisor_tree.service("db").call(1) == 1
        assert supervisor_tree.events is supervisor_events.bus
        assert [type(e).__name__ for e in supervisor_events.events][:1] == ["ChildStarted"]

    @pytest.mark.supervisor_testing(open_breakers="app/db")
    async def test_marker_holds_the_trees_breaker(self, supervisor_tree: Tree) -> None:
        """A breaker made by the tree inside the testing mode is held open by name."""
        breaker = supervisor_tree.service("db").breaker
        assert breaker is not None
        assert breaker.state is CircuitState.OPEN
