"""The ``inject_faults`` decorator and its ``FaultInjector``: errors, latency and replaced
results on trio's clock, windows from the first call, flags, and repeatable seeds."""

from __future__ import annotations

import random

import pytest
import trio

from supervisor import (
    ConfigError,
    Fault,
    FaultFlags,
    FaultInjector,
    OperationTimeout,
    inject_faults,
    timeout,
)


async def test_error_latency_and_result(autojump_clock: trio.testing.MockClock) -> None:
    """An error fault raises a new error, latency is slept on trio's clock, a result replaces
    the call."""
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        return "real"

    failing = inject_faults(Fault(error=ConnectionError, message="refused"))(fetch)
    with pytest.raises(ConnectionError, match="refused"):
        await failing()
    assert calls == 0

    slow = inject_faults(Fault(latency=2.5))(fetch)
    start = trio.current_time()
    assert await slow() == "real"
    assert trio.current_time() - start == pytest.approx(2.5)

    stubbed = inject_faults(Fault(result="stub"))(fetch)
    assert await stubbed() == "stub"
    assert calls == 1
    assert stubbed.fault_injector.core.fired == [1]  # type: ignore[attr-defined]


async def test_window_starts_at_the_first_call(autojump_clock: trio.testing.MockClock) -> None:
    """Windows are measured from the first call (or the given origin)."""

    @inject_faults(Fault(result="faulty", start=10.0, end=20.0))
    async def answer() -> str:
        return "ok"

    await trio.sleep(100.0)  # time before the first call does not count
    assert await answer() == "ok"
    await trio.sleep(10.0)
    assert await answer() == "faulty"
    await trio.sleep(10.0)
    assert await answer() == "ok"

    @inject_faults(Fault(result="faulty", end=1.0), origin=0.0)
    async def late() -> str:
        return "ok"

    assert await late() == "ok"  # 120 s past its origin: its window is over


async def test_flags_switch_faults(autojump_clock: trio.testing.MockClock) -> None:
    """A flagged fault fires only while its flag is on, in the flags given."""
    flags = FaultFlags()

    @inject_faults(Fault(error=TimeoutError, flag="db-down"), flags=flags)
    async def query() -> int:
        return 1

    assert await query() == 1
    with flags.raised("db-down"), pytest.raises(TimeoutError):
        await query()
    assert await query() == 1


async def test_same_seed_same_story(autojump_clock: trio.testing.MockClock) -> None:
    """Two functions with the same seed see the same faults in the same calls."""

    async def story(seed: int) -> list[str]:
        @inject_faults(Fault(error=OSError, rate=0.3), Fault(result="x", rate=0.3), seed=seed)
        async def call() -> str:
            return "ok"

        outcomes = []
        for _ in range(40):
            try:
                outcomes.append(await call())
            except OSError:
                outcomes.append("error")
        return outcomes

    first = await story(1)
    assert first == await story(1)
    assert first != await story(2)
    assert {"ok", "x", "error"} <= set(first)


async def test_latency_runs_under_the_callers_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Injected latency is a trio sleep: an outer timeout cuts it short."""

    @timeout(1.0)
    @inject_faults(Fault(latency=5.0))
    async def slow() -> None:
        raise AssertionError("not reached")

    with pytest.raises(OperationTimeout):
        await slow()


def test_bad_use_is_refused() -> None:
    """Plain functions, start faults, bad seeds and bad flags are refused at decoration."""
    with pytest.raises(TypeError, match="needs an `async def` function"):
        inject_faults(Fault(error=OSError))(lambda: None)
    with pytest.raises(TypeError, match="injects at requests only"):
        inject_faults(Fault(error=OSError, point="start"))
    with pytest.raises(ConfigError, match=r"`seed` must be an integer or a string \(got 1.5\)"):
        inject_faults(Fault(error=OSError), seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="`flags` must be a FaultFlags"):
        FaultInjector([Fault(error=OSError)], flags={"x"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="give `seed` or `rng`, not both"):
        FaultInjector([Fault(error=OSError)], seed=1, rng=random.Random())


async def test_listener_hears_every_firing(autojump_clock: trio.testing.MockClock) -> None:
    """The injector's listener gets each fault that fired, with the time."""
    heard: list[tuple[str, float]] = []
    injector = FaultInjector(
        [Fault(latency=1.0), Fault(error=OSError)],
        listener=lambda fault, at: heard.append((fault.describe(), at)),
    )
    start = trio.current_time()

    async def call() -> None:
        raise AssertionError("not reached")

    with pytest.raises(OSError, match="injected fault"):
        await injector.run(call)
    assert heard == [("+1s latency", start), ("OSError: injected fault", start)]
    assert "fired [1, 1]" in repr(injector)
