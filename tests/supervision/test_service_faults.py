"""Faults injected into guarded services of a running tree: inside the actor, so an injected
error is a crash the supervisor and the breaker see; latency holds the slot under the request's
deadline; windows count from the tree's start; starts can fail; TOML can say all of it."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from typing import Any

import pytest
import trio

import actors
from supervisor import (
    BreakerSpec,
    ChildCrashed,
    ChildRestarted,
    ChildState,
    CircuitState,
    ConfigError,
    EventRecorder,
    FallbackSpec,
    FallbackUsed,
    Fault,
    FaultInjected,
    FaultKind,
    FaultPoint,
    FaultSpec,
    RestartBackoff,
    ServiceSpec,
    SupervisorSpec,
    fault_flags,
    load_tree_file,
    run_tree,
    wait_for_breaker,
    wait_for_service,
)
from supervisor.observe._describe import describe_event


class Echo(actors.Actor[Any]):
    """Answers what it is asked; counts its starts in ``starts``."""

    starts: list[int] = []  # noqa: RUF012 - a class-level tally the tests reset

    async def on_start(self) -> None:
        Echo.starts.append(1)

    async def receive(self, message: Any) -> Any:
        return ("echo", message)


def _tree(*faults: Fault, seed: int | str | None = 1, **service: Any) -> SupervisorSpec:
    return SupervisorSpec(
        name="app",
        max_restarts=1000,
        within=1.0,
        backoff=RestartBackoff(initial_delay=0.0, jitter=False),
        children=[
            ServiceSpec(
                name="db", factory=Echo, faults=FaultSpec(inject=faults, seed=seed), **service
            )
        ],
    )


async def test_an_injected_error_is_a_crash(autojump_clock: trio.testing.MockClock) -> None:
    """The injected error reaches the caller, crashes the actor, and its supervisor restarts
    it; the fault is published."""
    recorder = EventRecorder()
    spec = _tree(Fault(error=ConnectionError, message="refused", limit=1))
    async with run_tree(spec, events=recorder.bus) as tree:
        db = tree.service("db")
        with pytest.raises(ConnectionError, match="refused"):
            await db.call("q")
        await recorder.wait_for(ChildRestarted, path="db")
        assert await db.call("q") == ("echo", "q")
    (crash,) = recorder.of(ChildCrashed)
    assert isinstance(crash.error, ConnectionError)
    (injected,) = recorder.of(FaultInjected)
    assert injected.path == "app/db"
    assert injected.kind is FaultKind.ERROR
    assert injected.point is FaultPoint.REQUEST
    assert describe_event(injected).detail == "injected at request: ConnectionError: refused"


async def test_errors_open_the_breaker_and_the_fallback_answers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Injected failures count against the breaker like real ones; the fallback answers."""
    spec = _tree(
        Fault(error=OSError, flag="db-down"),
        breaker=BreakerSpec(failure_threshold=3, timeout=10.0),
        fallback=FallbackSpec(default="stale"),
    )
    async with run_tree(spec) as tree:
        db = tree.service("db")
        assert await db.call(1) == ("echo", 1)
        with fault_flags.raised("db-down"):
            for _ in range(3):
                assert await db.call(1) == "stale"
            await wait_for_breaker(db, CircuitState.OPEN, timeout=0.1)
            await wait_for_service(tree, "db", ChildState.PARKED, timeout=0.1)
        await wait_for_breaker(db, CircuitState.HALF_OPEN, timeout=10.5)
        assert await db.call(2) == ("echo", 2)
        assert await db.call(3) == ("echo", 3)
        assert db.breaker is not None
        assert db.breaker.state is CircuitState.CLOSED
        assert db.statistics().fallbacks == 3


async def test_latency_runs_inside_the_actor_under_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Injected latency delays the answer by exactly that much, and a shorter timeout cuts it."""
    async with run_tree(_tree(Fault(latency=0.75, start=1.0, end=2.0), timeout=0.5)) as tree:
        db = tree.service("db")
        start = trio.current_time()
        assert await db.call("fast") == ("echo", "fast")
        assert trio.current_time() == start
        await trio.sleep_until(tree.started_at + 1.0)
        with pytest.raises(actors.AskTimeout):
            await db.call("slow")
        await trio.sleep_until(tree.started_at + 2.0)
        assert await db.call("fast again", timeout=None) == ("echo", "fast again")


async def test_a_result_replaces_the_answer(autojump_clock: trio.testing.MockClock) -> None:
    """A result fault answers instead of the actor, at its rate."""
    async with run_tree(_tree(Fault(result="canned", rate=0.5), seed=3)) as tree:
        answers = [await tree.service("db").call(i) for i in range(200)]
    canned = answers.count("canned")
    assert 70 < canned < 130
    assert all(a == "canned" or a[0] == "echo" for a in answers)


async def test_start_faults_fail_restarts(autojump_clock: trio.testing.MockClock) -> None:
    """A start fault makes the next starts fail (its supervisor retries them) until its limit."""
    Echo.starts = []
    recorder = EventRecorder()
    spec = _tree(
        Fault(error=RuntimeError, message="bad config", point="start", start=1.0, limit=2),
        Fault(error=ValueError, message="poison", start=1.0, limit=1),
    )
    async with run_tree(spec, events=recorder.bus) as tree:
        await trio.sleep(1.0)
        with pytest.raises(ValueError, match="poison"):
            await tree.service("db").call("x")
        crashes = await recorder.wait_for(ChildCrashed, 3)
        await wait_for_service(tree, "db", "running")
        assert await tree.service("db").call("y") == ("echo", "y")
    assert [type(c.error).__name__ for c in crashes] == [
        "ValueError",
        "RuntimeError",
        "RuntimeError",
    ]
    assert len(recorder.of(FaultInjected, where=lambda e: e.point is FaultPoint.START)) == 2
    assert len(Echo.starts) == 2  # the first start, and the one after the two failed ones


async def test_same_seed_same_faults(autojump_clock: trio.testing.MockClock) -> None:
    """Two runs with the same seed inject the same faults into the same requests; without a
    seed of its own, the tree's seeded source decides."""

    async def story(seed: int | None, tree_seed: int) -> list[object]:
        spec = _tree(Fault(result="x", rate=0.3), Fault(latency=0.01, rate=0.5), seed=seed)
        async with run_tree(spec, rng=random.Random(tree_seed)) as tree:
            return [
                (await tree.service("db").call(i), round(trio.current_time() - tree.started_at, 6))
                for i in range(30)
            ]

    assert await story(5, 0) == await story(5, 1)
    assert await story(None, 7) == await story(None, 7)
    assert await story(5, 0) != await story(6, 0)


async def test_a_request_can_bring_its_own_random_source(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With ``FaultSpec.rng``, each request's decision is drawn from the source it names."""

    def own(request: Any) -> random.Random:
        return random.Random(request)

    spec = _tree(Fault(result="x", rate=0.5), seed=None)
    spec = SupervisorSpec(
        name="app",
        children=[
            ServiceSpec(
                name="db",
                factory=Echo,
                faults=FaultSpec(inject=(Fault(result="x", rate=0.5),), rng=own),
            )
        ],
    )
    async with run_tree(spec) as tree:
        forward = [await tree.service("db").call(i) for i in range(20)]
        backward = [await tree.service("db").call(i) for i in reversed(range(20))]
    assert forward == list(reversed(backward))


async def test_a_service_without_faults_spawns_its_own_factory(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """No faults: no injector and the actor's own ``receive``."""
    spec = SupervisorSpec(name="app", children=[ServiceSpec(name="db", factory=Echo)])
    async with run_tree(spec) as tree:
        assert tree._services["app/db"].faults is None
        assert await tree.service("db").call(1) == ("echo", 1)


def test_bad_fault_specs_are_refused() -> None:
    """A FaultSpec needs Faults, a whole seed and a callable rng; a ServiceSpec a FaultSpec."""
    with pytest.raises(ConfigError, match=r"`inject\[0\]` must be a Fault"):
        FaultSpec(inject=["slow"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=r"`seed` must be an integer or a string"):
        FaultSpec(inject=(), seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"`rng` must be callable"):
        FaultSpec(inject=(), rng=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"`faults` must be a FaultSpec"):
        ServiceSpec(name="db", factory=Echo, faults=[Fault(latency=1.0)])  # type: ignore[arg-type]


def test_faults_load_from_toml(tmp_path: Path) -> None:
    """A service's faults are tables in TOML, exception classes named as "module:Name"."""
    path = tmp_path / "tree.toml"
    path.write_text(
        textwrap.dedent(
            """
            name = "app"

            [[children]]
            name = "db"
            factory = "test_service_faults:Echo"

            [children.faults]
            seed = 7

            [[children.faults.inject]]
            error = "builtins:ConnectionError"
            message = "refused"
            rate = 0.8
            start = 3.0
            end = 6.6

            [[children.faults.inject]]
            latency = 1.0
            flag = "slow-db"

            [[children.faults.inject]]
            point = "start"
            error = "builtins:RuntimeError"
            limit = 2
            """
        )
    )
    spec = load_tree_file(path)
    service = spec.children[0]
    assert isinstance(service, ServiceSpec)
    assert service.faults == FaultSpec(
        seed=7,
        inject=(
            Fault(error=ConnectionError, message="refused", rate=0.8, start=3.0, end=6.6),
            Fault(latency=1.0, flag="slow-db"),
            Fault(error=RuntimeError, point=FaultPoint.START, limit=2),
        ),
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "app"\n[[children]]\nname = "db"\nfactory = "builtins:object"\n'
        '[children.faults]\n[[children.faults.inject]]\nerror = "builtins:len"\n'
    )
    with pytest.raises(ConfigError, match=r"children\[0\]\.faults\.inject\[0\]: `error` must be"):
        load_tree_file(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(
        'name = "app"\n[[children]]\nname = "db"\nfactory = "builtins:object"\n'
        "[children.faults]\n[[children.faults.inject]]\nlatency = 1\nwhen = 3\n"
    )
    with pytest.raises(ConfigError, match=r"inject\[0\]: unknown field\(s\) when"):
        load_tree_file(unknown)


async def test_fallback_event_follows_the_injected_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The story in the events: the fault, the failure, then the fallback."""
    recorder = EventRecorder()
    spec = _tree(Fault(error=OSError, limit=1), fallback=FallbackSpec(default=0))
    async with run_tree(spec, events=recorder.bus) as tree:
        assert await tree.service("db").call("q") == 0
    kinds = [type(e).__name__ for e in recorder.events]
    assert kinds.index("FaultInjected") < kinds.index("RequestFailed") < kinds.index("FallbackUsed")
    assert recorder.of(FallbackUsed)[0].kind == "default"
