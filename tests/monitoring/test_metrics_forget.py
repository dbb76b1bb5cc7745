"""A service that leaves the tree leaves the metrics: nothing of it is kept, its checks stop."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

import actors
from supervisor.tree._rule_specs import BreakerSpec
from supervisor.tree._run import run_tree
from supervisor.tree._specs import Restart, ServiceSpec, SupervisorSpec


class Echo(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        return message


async def test_deleted_services_keep_no_metrics_and_their_checks_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """200 services come and go (started, called, checked, deleted): the metrics track only the
    ones still in the tree, and a deleted service's health check is never called again."""
    checks: dict[str, int] = {}

    def check_of(name: str) -> Any:
        def check() -> bool:
            checks[name] = checks.get(name, 0) + 1
            return True

        return check

    spec = SupervisorSpec(name="app", children=(ServiceSpec(name="kept", factory=Echo),))
    async with run_tree(spec) as tree:
        metrics = tree.metrics
        assert metrics is not None
        await tree.service("kept").call("q")
        for i in range(200):
            name = f"s{i}"
            await tree.start_child(
                "app",
                ServiceSpec(
                    name=name,
                    factory=Echo,
                    breaker=BreakerSpec(),
                    health_check=check_of(name),
                    health_interval=1.0,
                    restart=Restart.TEMPORARY,
                ),
            )
            await tree.service(name).call("q")
            await trio.sleep(1.5)  # one health check runs
            await tree.terminate_child(f"app/{name}")  # temporary: it is gone
        assert metrics.statistics().services == 1
        assert metrics.statistics().health_checks_running == 0
        assert metrics.service("app/kept").successes == 1
        before = dict(checks)
        assert all(count >= 1 for count in before.values())
        await trio.sleep(10.0)
        assert checks == before
        snapshot = tree.snapshot()
        assert [service.path for service in snapshot.services] == ["app/kept"]
