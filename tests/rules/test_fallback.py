"""Tests of the fallbacks and of the TTL+LRU cache core behind cache_fallback."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import trio
import trio.testing
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from supervisor import (
    ConfigError,
    cache_fallback,
    default_fallback,
    degraded_fallback,
    fallback,
    retry,
)
from supervisor.rules._cache import MISS, TtlLruCache


class CacheMachine(RuleBasedStateMachine):
    """Puts, gets and time steps against an OrderedDict model of TTL and LRU."""

    def __init__(self) -> None:
        super().__init__()
        self.cache: TtlLruCache[int, int] = TtlLruCache(5.0, 3)
        self.model: OrderedDict[int, tuple[int, float]] = OrderedDict()
        self.now = 0.0

    @rule(step=st.sampled_from([0.0, 1.0, 2.5, 5.0]))
    def advance(self, step: float) -> None:
        """Time moves on, sometimes by exactly the TTL."""
        self.now += step

    @rule(key=st.integers(0, 5), value=st.integers())
    def put(self, key: int, value: int) -> None:
        """A put stores the value and evicts the least recently used entry beyond maxsize."""
        self.model[key] = (value, self.now)
        self.model.move_to_end(key)
        expected = self.model.popitem(last=False)[0] if len(self.model) > 3 else None
        assert self.cache.put(key, value, self.now) == expected

    @rule(key=st.integers(0, 5))
    def get(self, key: int) -> None:
        """A get serves values at most ttl old (exactly ttl included) and refreshes recency."""
        got = self.cache.get(key, self.now)
        entry = self.model.get(key)
        if entry is None:
            assert got is MISS
        elif self.now - entry[1] <= 5.0:
            assert got == entry[0]
            self.model.move_to_end(key)
        else:
            assert got is MISS
            del self.model[key]

    @invariant()
    def same_order(self) -> None:
        """The cache holds the model's keys in the model's recency order."""
        assert self.cache.keys() == list(self.model)
        assert len(self.cache) <= 3


TestCacheCore = CacheMachine.TestCase


# -- fallback / default_fallback ------------------------------------------------------------------


def test_fallback_argument_rules() -> None:
    """Both a value and a factory, or neither, raise TypeError when fallback(...) is called."""
    with pytest.raises(TypeError):
        fallback()
    with pytest.raises(TypeError):
        fallback(default_factory=None)
    with pytest.raises(TypeError):
        fallback(1, default_factory=list)
    with pytest.raises(TypeError):
        fallback(default_factory=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fallback(1, exceptions=(int,))  # type: ignore[arg-type]
    fallback(None)  # None is a valid default value


async def test_fallback_async_default_and_passthrough() -> None:
    """Failures in `exceptions` give the default; other exceptions propagate unchanged."""

    @fallback("default", exceptions=(KeyError,))
    async def get(kind: str) -> str:
        """Doc."""
        if kind == "key":
            raise KeyError(kind)
        if kind == "value":
            raise ValueError(kind)
        return "real"

    assert get.__doc__ == "Doc."
    assert await get("ok") == "real"
    assert await get("key") == "default"
    with pytest.raises(ValueError, match="value"):
        await get("value")


def test_fallback_factory_called_per_failure_on_plain_function() -> None:
    """default_factory is called anew for each failure, and plain functions work too."""

    @fallback(default_factory=list)
    def load() -> list[int]:
        raise OSError

    first, second = load(), load()
    assert first == second == []
    assert first is not second


def test_default_fallback_is_fallback_with_value() -> None:
    """default_fallback(value) returns value on any Exception."""

    @default_fallback(42)
    def f() -> int:
        raise RuntimeError

    assert f() == 42


async def test_fallbacks_never_replace_cancellation() -> None:
    """trio.Cancelled passes through every fallback untouched."""

    @default_fallback("x")
    @cache_fallback()
    @degraded_fallback(lambda: "degraded")
    async def slow() -> str:
        await trio.sleep_forever()
        return "never"

    with trio.move_on_after(0) as scope:
        await slow()
    assert scope.cancelled_caught


def test_fallbacks_never_replace_keyboard_interrupt() -> None:
    """KeyboardInterrupt propagates even with exceptions=(BaseException,)."""

    @fallback(1, exceptions=(BaseException,))
    def f() -> int:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        f()


# -- degraded_fallback ----------------------------------------------------------------------------


async def test_degraded_sync_and_async_alternatives() -> None:
    """The alternative gets the same arguments; it may be plain or async."""

    async def alt_async(x: int, *, scale: int = 1) -> str:
        return f"async {x * scale}"

    def alt_sync(x: int, *, scale: int = 1) -> str:
        return f"sync {x * scale}"

    @degraded_fallback(alt_async)
    async def a(x: int, *, scale: int = 1) -> str:
        raise ConnectionError

    @degraded_fallback(alt_sync)
    async def b(x: int, *, scale: int = 1) -> str:
        raise ConnectionError

    assert await a(2, scale=3) == "async 6"
    assert await b(2, scale=3) == "sync 6"


def test_degraded_on_plain_function_and_errors() -> None:
    """A plain function takes a plain alternative; bad alternatives raise TypeError."""

    @degraded_fallback(lambda x: x + 1)
    def f(x: int) -> int:
        raise ConnectionError

    assert f(1) == 2
    with pytest.raises(TypeError):
        degraded_fallback(5)  # type: ignore[arg-type]

    async def alt() -> int:
        return 0

    with pytest.raises(TypeError):
        degraded_fallback(alt)(lambda: 1)


async def test_degraded_on_method_passes_self() -> None:
    """On a method, the alternative receives self too."""

    class Svc:
        @degraded_fallback(lambda self, x: ("degraded", x))
        async def call(self, x: int) -> tuple[str, int]:
            raise ConnectionError

    assert await Svc().call(3) == ("degraded", 3)


# -- cache_fallback -------------------------------------------------------------------------------


def test_cache_bad_parameters() -> None:
    """ttl and maxsize are validated when cache_fallback(...) is called."""
    with pytest.raises(ConfigError, match=r"`ttl` must be a number > 0 \(got 0\)"):
        cache_fallback(ttl=0)
    with pytest.raises(ConfigError, match=r"`maxsize` must be an integer >= 1 \(got 0\)"):
        cache_fallback(maxsize=0)
    with pytest.raises(TypeError):
        cache_fallback(key=1)  # type: ignore[arg-type]


async def test_cache_ttl_is_inclusive(autojump_clock: trio.testing.MockClock) -> None:
    """A value exactly ttl old is served; a moment later the failure is re-raised."""
    fail = False

    @cache_fallback(ttl=10.0)
    async def get(x: int) -> int:
        if fail:
            raise ConnectionError("down")
        return x * 2

    assert await get(1) == 2
    fail = True
    await trio.sleep(10.0)
    assert await get(1) == 2
    await trio.sleep(0.001)
    with pytest.raises(ConnectionError):
        await get(1)
    with pytest.raises(ConnectionError):
        await get(2)  # never stored


async def test_cache_lru_and_key(autojump_clock: trio.testing.MockClock) -> None:
    """At most maxsize entries are kept, least recently used first; `key` picks the entry."""
    fail = False

    @cache_fallback(maxsize=2, key=lambda x, **_: x % 10)
    async def get(x: int, *, tag: str = "") -> int:
        if fail:
            raise ConnectionError
        return x

    await get(1)
    await get(2)
    fail = True
    assert await get(11) == 1  # same key as 1; also makes it most recently used
    fail = False
    await get(3)  # evicts key 2
    fail = True
    assert await get(1, tag="t") == 1
    assert await get(3) == 3
    with pytest.raises(ConnectionError):
        await get(2)
    assert get.cache_statistics().size == 2  # type: ignore[attr-defined]


async def test_cache_methods_key_by_instance(autojump_clock: trio.testing.MockClock) -> None:
    """Methods include self in the default key, so instances do not share values."""

    class Svc:
        def __init__(self, value: int) -> None:
            self.value = value
            self.fail = False

        @cache_fallback()
        async def read(self) -> int:
            if self.fail:
                raise ConnectionError
            return self.value

    a, b = Svc(1), Svc(2)
    assert (await a.read(), await b.read()) == (1, 2)
    a.fail = b.fail = True
    assert (await a.read(), await b.read()) == (1, 2)


def test_cache_plain_function_outside_trio_with_clock() -> None:
    """A plain function works outside trio; `clock` measures ages there."""
    now = [0.0]
    fail = [False]

    @cache_fallback(ttl=5.0, clock=lambda: now[0])
    def read(key: str) -> str:
        if fail[0]:
            raise OSError
        return key.upper()

    assert read("a") == "A"
    fail[0] = True
    now[0] = 5.0
    assert read("a") == "A"
    now[0] = 5.5
    with pytest.raises(OSError):
        read("a")


def test_cache_unhashable_arguments_are_not_cached() -> None:
    """A call with unhashable arguments still runs; its failure propagates."""
    fail = [False]

    @cache_fallback()
    def read(items: list[int]) -> int:
        if fail[0]:
            raise OSError
        return len(items)

    assert read([1, 2]) == 2
    fail[0] = True
    with pytest.raises(OSError):
        read([1, 2])


def test_cache_is_not_shared_across_runs() -> None:
    """Values stored in one trio.run are not served in another (their clocks are unrelated)."""
    fail = [False]

    @cache_fallback()
    async def read() -> int:
        if fail[0]:
            raise OSError
        return 1

    trio.run(read, clock=trio.testing.MockClock())
    fail[0] = True
    with pytest.raises(OSError):
        trio.run(read, clock=trio.testing.MockClock())


async def test_fallback_composes_with_retry(autojump_clock: trio.testing.MockClock) -> None:
    """A fallback outside a retry answers once the retries are used up, in either order."""
    calls = 0

    @default_fallback("fallback")
    @retry(max_attempts=3, jitter=False, initial_delay=1.0)
    async def flaky() -> str:
        nonlocal calls
        calls += 1
        raise ConnectionError

    assert await flaky() == "fallback"
    assert calls == 3
