"""The monitor and the attach server on a real running tree."""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing
from rich.console import Console

import actors
from supervisor.console._attach import fetch_snapshot, serve_snapshots
from supervisor.console._feed import FeedState
from supervisor.console._monitor import monitor
from supervisor.tree._rule_specs import BreakerSpec
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ChildSpec, ServiceSpec, SupervisorSpec


class Backend(actors.Actor[Any]):
    """Answers "ok"; raises on "fail"."""

    async def receive(self, message: Any) -> Any:
        if message == "fail":
            raise RuntimeError("backend down")
        return message


def spec() -> SupervisorSpec:
    """A root with one plain worker and one guarded service with a breaker."""
    return SupervisorSpec(
        name="app",
        max_restarts=10,
        within=60.0,
        children=(
            ChildSpec(name="worker", factory=Backend),
            ServiceSpec(
                name="db", factory=Backend, breaker=BreakerSpec(failure_threshold=1, timeout=30.0)
            ),
        ),
    )


@pytest.fixture
def sock_dir() -> Iterator[str]:
    """A short private directory for socket files."""
    path = tempfile.mkdtemp(prefix="sv-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_monitor_a_running_tree(autojump_clock: trio.testing.MockClock) -> None:
    """`async with monitor(tree)` shows the tree, its service and the breaker opening."""
    console = Console(file=io.StringIO(), width=120, record=True, force_terminal=False)
    async with run_tree(spec()) as tree, monitor(tree, interval=1.0, console=console) as shown:
        assert await tree.service("db").call("ok") == "ok"
        with pytest.raises(RuntimeError, match="backend down"):
            await tree.service("db").call("fail")
        await trio.sleep(1.5)
        assert shown.statistics().state is FeedState.LIVE
    text = console.export_text()
    assert "app [supervisor] running" in text
    assert "worker [worker]" in text
    assert "db [service]" in text
    assert "breaker open" in text


async def test_serve_a_running_tree(sock_dir: str) -> None:
    """A tree served over a Unix socket is fetched as the tree's own snapshot."""
    path = f"{sock_dir}/app.sock"
    async with run_tree(spec()) as tree, serve_snapshots(tree, path):
        fetched = await fetch_snapshot(path)
        assert fetched.name == "app"
        assert [child.name for child in fetched.tree.children] == ["worker", "db"]
        assert [service.path for service in fetched.services] == ["app/db"]
