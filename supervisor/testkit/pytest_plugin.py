"""The pytest plugin of trio-supervisor: fixtures for a running tree and its recorded events.

Loaded by its ``pytest11`` entry point once the package is installed, or explicitly with
``pytest -p supervisor.testkit.pytest_plugin`` or ``pytest_plugins =
["supervisor.testkit.pytest_plugin"]`` in a top-level ``conftest.py`` (the entry point has the
module's own name, so loading it both ways registers it once).

Fixtures (the async one needs pytest-trio, e.g. ``trio_mode = true``):

* ``supervisor_spec``: the :class:`~supervisor.SupervisorSpec` to run; override it in your test
  module or ``conftest.py`` (the default fails the test, saying so).
* ``supervisor_events``: an :class:`~supervisor.EventRecorder` on a fresh bus, recording from
  before the tree starts.
* ``supervisor_tree``: the running :class:`~supervisor.Tree` of ``supervisor_spec``, publishing
  on ``supervisor_events.bus``, with a random source seeded by ``supervisor_seed`` (0), so fault
  injection and jitter repeat from run to run; stopped in order after the test.
* ``supervisor_testing``: :func:`supervisor.testing` around the test; yields the
  :class:`~supervisor.TestingMode`. A test marked ``@pytest.mark.supervisor_testing(**options)``
  runs under ``testing(**options)`` whether it asks for the fixture or not, from before its first
  fixture is set up (so a tree made by a fixture sees it too).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ..guards._testing import TestingMode, testing
from ..tree._run import run_tree
from ..tree._specs import SupervisorSpec
from ..tree._tree import Tree
from ._recorder import EventRecorder

__all__ = [
    "pytest_configure",
    "supervisor_events",
    "supervisor_seed",
    "supervisor_spec",
    "supervisor_testing",
    "supervisor_tree",
]


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        "supervisor_testing(**options): run the test under supervisor.testing(**options) "
        "(with the supervisor_testing fixture)",
    )


@pytest.fixture
def supervisor_spec() -> SupervisorSpec:
    """The tree to run: override this fixture."""
    pytest.fail(
        "the supervisor_tree fixture needs a `supervisor_spec` fixture returning the "
        "SupervisorSpec to run: define one in the test module or conftest.py",
        pytrace=False,
    )


@pytest.fixture
def supervisor_seed() -> int:
    """Seeds the tree's random source (override for another repeatable run)."""
    return 0


@pytest.fixture
def supervisor_events() -> Iterator[EventRecorder]:
    """A recorder of every event of the tree, from before it starts."""
    recorder = EventRecorder()
    yield recorder
    recorder.close()


@pytest.fixture
async def supervisor_tree(
    supervisor_spec: SupervisorSpec, supervisor_events: EventRecorder, supervisor_seed: int
) -> AsyncIterator[Tree]:
    """The running tree of ``supervisor_spec``; stopped in order after the test."""
    if not isinstance(supervisor_spec, SupervisorSpec):
        pytest.fail(
            f"`supervisor_spec` must return a SupervisorSpec (got {supervisor_spec!r})",
            pytrace=False,
        )
    async with run_tree(
        supervisor_spec, events=supervisor_events.bus, rng=random.Random(supervisor_seed)
    ) as tree:
        yield tree


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    markers = list(request.node.iter_markers("supervisor_testing"))
    if not markers:
        return None
    options: dict[str, Any] = {}
    for marker in reversed(markers):  # the closest marker wins
        if marker.args:
            pytest.fail("@pytest.mark.supervisor_testing takes keyword options only", pytrace=False)
        options.update(marker.kwargs)
    return options


@pytest.fixture(autouse=True)
def _supervisor_testing_marker(request: pytest.FixtureRequest) -> Iterator[TestingMode | None]:
    """A test marked ``supervisor_testing`` runs under that mode from before its first fixture
    (so a tree made by a fixture already sees it)."""
    options = _marker_options(request)
    if options is None:
        yield None
        return
    with testing(**options) as mode:
        yield mode


@pytest.fixture
def supervisor_testing(
    _supervisor_testing_marker: TestingMode | None,
) -> Iterator[TestingMode]:
    """The testing mode of the test: its marker's, else :func:`supervisor.testing` with the
    defaults around the test."""
    if _supervisor_testing_marker is not None:
        yield _supervisor_testing_marker
        return
    with testing() as mode:
        yield mode
