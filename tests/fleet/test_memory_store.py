"""The in-memory store: today's behaviour by default, one core per name when shared."""

from __future__ import annotations

import pytest
import trio

import supervisor
from supervisor import CircuitBreaker, CircuitState, MemoryStore


def test_without_a_store_each_breaker_keeps_its_own_state() -> None:
    """Two breakers of one name and no store stay independent, as before stores existed."""
    a, b = CircuitBreaker("x", failure_threshold=1), CircuitBreaker("x", failure_threshold=1)
    a.force_open()
    assert a.core is not b.core
    assert b.state is CircuitState.CLOSED


def test_one_memory_store_one_breaker_per_name() -> None:
    """Breakers of one name in one MemoryStore share their core; other names do not."""
    store = MemoryStore()
    a = CircuitBreaker("db", 2, store=store)
    b = CircuitBreaker("db", 2, store=store)
    c = CircuitBreaker("cache", 2, store=store)
    assert a.core is b.core
    assert a.core is not c.core
    a.force_open()
    assert b.state is CircuitState.OPEN
    assert CircuitBreaker("db", 2, store=MemoryStore()).state is CircuitState.CLOSED


def test_other_settings_for_one_name_are_a_config_error() -> None:
    """One rule has one set of settings: asking again with others names the rule and both."""
    store = MemoryStore()
    CircuitBreaker("db", 2, store=store)
    with pytest.raises(supervisor.ConfigError, match=r"breaker 'db' is already in this store"):
        CircuitBreaker("db", 3, store=store)
    supervisor.throttle(5, 1.0, name="api", store=store)(_noop)
    with pytest.raises(supervisor.ConfigError, match=r"throttle 'api'"):
        supervisor.throttle(6, 1.0, name="api", store=store)(_noop)


def test_a_store_that_is_not_a_store_is_refused() -> None:
    """store= takes a store; anything else is a ConfigError naming the parameter."""
    with pytest.raises(supervisor.ConfigError, match="`store`"):
        CircuitBreaker("x", store="redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(supervisor.ConfigError, match="`store`"):
        supervisor.circuit_breaker(store=object())  # type: ignore[arg-type]
    with pytest.raises(supervisor.ConfigError, match="`store`"):
        supervisor.throttle(store=42)  # type: ignore[arg-type]
    with pytest.raises(supervisor.ConfigError, match="`name`"):
        supervisor.throttle(name="")


async def _noop() -> None:
    return None


async def test_throttles_of_one_name_share_one_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two decorated functions with one throttle name in one MemoryStore share the limit."""
    store = MemoryStore()
    first = supervisor.throttle(2, 1.0, on_limit="raise", name="api", store=store)(_noop)
    second = supervisor.throttle(2, 1.0, on_limit="raise", name="api", store=store)(_noop)
    await first()
    await second()
    with pytest.raises(supervisor.RateLimitExceeded) as refused:
        await first()
    assert refused.value.retry_after == pytest.approx(1.0)
    await trio.sleep(1.0)
    await second()
