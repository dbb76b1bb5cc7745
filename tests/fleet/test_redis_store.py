"""The Redis store against a real redis-server, in one process: several stores on one server
stand for several processes (each has its own connection, subscription and holder id).

Real time is unavoidable here (the server's clock decides); the stores use short intervals so
each test takes a fraction of a second.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import trio
from fleet_helpers import RedisServer, free_port

import actors
import supervisor
from supervisor import CircuitBreaker, CircuitOpenError, CircuitState, RateLimitExceeded
from supervisor.store import FleetBreakerCore

FAST: dict[str, Any] = {"flush_interval": 0.02, "resync_interval": 0.2, "lease": 0.3}


def connect(url: str, **options: Any) -> AbstractAsyncContextManager[supervisor.RedisStore]:
    return supervisor.RedisStore.connect(url, **{**FAST, **options})


@asynccontextmanager
async def stores(
    url: str, count: int, **options: Any
) -> AsyncIterator[list[supervisor.RedisStore]]:
    async with connect(url, **options) as first:
        if count == 1:
            yield [first]
            return
        async with stores(url, count - 1, **options) as rest:
            yield [first, *rest]


async def wait_for(predicate: Callable[[], bool], seconds: float = 3.0) -> None:
    # Polling on purpose: the state under test changes in another store's task.
    with trio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.005)


async def fail(breaker: CircuitBreaker) -> None:
    async def broken() -> None:
        raise ValueError("down")

    with pytest.raises(ValueError):
        await breaker.call(broken)


async def ok() -> str:
    return "ok"


# -- connecting ---------------------------------------------------------------------------------


def test_a_bad_url_is_a_config_error_that_hides_the_password() -> None:
    """A URL that is not redis:// (or has a bad port) is refused at connect(), naming the URL
    without its password."""
    for url in ("http://user:hunter2@host:6379", "redis://:hunter2@host:notaport", "redis://"):
        with pytest.raises(supervisor.ConfigError) as caught:
            supervisor.RedisStore.connect(url)
        assert "hunter2" not in str(caught.value)
        assert "url" in str(caught.value)
    with pytest.raises(supervisor.ConfigError, match=r"\*\*\*@host"):
        supervisor.RedisStore.connect("http://user:hunter2@host")


def test_the_url_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a url, SUPERVISOR_REDIS_URL is read; unset, that is a ConfigError naming it."""
    monkeypatch.delenv("SUPERVISOR_REDIS_URL", raising=False)
    with pytest.raises(supervisor.ConfigError, match="SUPERVISOR_REDIS_URL"):
        supervisor.RedisStore.connect()
    monkeypatch.setenv("SUPERVISOR_REDIS_URL", "ftp://x")
    with pytest.raises(supervisor.ConfigError, match="environment variable SUPERVISOR_REDIS_URL"):
        supervisor.RedisStore.connect()


def test_bad_options_name_the_option() -> None:
    """Every option is checked at connect(), with its name and value in the message."""
    with pytest.raises(supervisor.ConfigError, match=r"`flush_interval`.*\(got 0\)"):
        supervisor.RedisStore.connect("redis://h", flush_interval=0)
    with pytest.raises(supervisor.ConfigError, match=r"`failure_ratio`.*\(got 1.5\)"):
        supervisor.RedisStore.connect("redis://h", failure_ratio=1.5)
    with pytest.raises(supervisor.ConfigError, match="`prefix`"):
        supervisor.RedisStore.connect("redis://h", prefix="a{b}")


async def test_the_wrong_port_is_a_connection_error_naming_the_url() -> None:
    """Nothing listening: StoreConnectionError (a ConnectionError) on entering, with the URL."""
    url = f"redis://:hunter2@127.0.0.1:{free_port()}"
    with pytest.raises(supervisor.StoreConnectionError) as caught:
        async with supervisor.RedisStore.connect(url):
            pytest.fail("connected to nothing")
    assert isinstance(caught.value, ConnectionError)
    assert "127.0.0.1" in str(caught.value)
    assert "hunter2" not in str(caught.value)


async def test_an_auth_failure_is_a_typed_error_without_the_password(redis_binary: str) -> None:
    """A wrong or missing password: StoreAuthError (a PermissionError), the URL shown redacted."""
    server = RedisServer(redis_binary, password="right-one")
    await trio.to_thread.run_sync(server.start)
    try:
        for auth in (":wrong-one@", ""):
            url = f"redis://{auth}127.0.0.1:{server.port}"
            with pytest.raises(supervisor.StoreAuthError) as caught:
                async with supervisor.RedisStore.connect(url):
                    pytest.fail("authenticated with a wrong password")
            assert isinstance(caught.value, PermissionError)
            assert "wrong-one" not in str(caught.value)
            assert str(server.port) in str(caught.value)
        async with supervisor.RedisStore.connect(server.url) as store:
            assert store.available
            assert "right-one" not in repr(store)
    finally:
        server.kill()


async def test_the_body_error_leaves_unchanged(redis_server: RedisServer) -> None:
    """An exception raised in the store's block comes out as itself, not in a group."""
    with pytest.raises(KeyError):
        async with connect(redis_server.url):
            raise KeyError("mine")


# -- breakers -----------------------------------------------------------------------------------


async def test_a_closed_shared_breaker_makes_no_round_trip(redis_server: RedisServer) -> None:
    """A thousand successful calls through a closed shared breaker send no Redis command."""
    async with connect(redis_server.url, resync_interval=60.0) as store:
        breaker = CircuitBreaker("quiet", store=store)
        await wait_for(lambda: store.statistics().commands >= 1)  # the new breaker's first sync
        before = store.statistics().commands
        for _ in range(1000):
            assert await breaker.call(ok) == "ok"
        await trio.sleep(0.05)
        assert store.statistics().commands == before


async def test_failures_in_several_processes_open_every_breaker(redis_server: RedisServer) -> None:
    """Two failures in each of three stores (threshold 5, none opens alone) open the breaker in
    all three; the change reads as the failure threshold reached."""
    async with stores(redis_server.url, 3) as fleet:
        breakers = [CircuitBreaker("pay", 5, 1, 0.5, store=s) for s in fleet]
        changes: list[supervisor.CircuitStateChange] = []
        for breaker in breakers:
            breaker.add_listener(changes.append)
        for breaker in breakers:
            await fail(breaker)
            await fail(breaker)
        await wait_for(lambda: all(b.state is CircuitState.OPEN for b in breakers))
        assert [c.reason for c in changes] == [supervisor.ChangeReason.FAILURE_THRESHOLD] * 3
        for breaker in breakers:
            with pytest.raises(CircuitOpenError) as refused:
                await breaker.call(ok)
            assert 0.0 < refused.value.retry_after <= 0.5


async def test_one_trial_in_the_fleet_and_its_failure_reopens_everywhere(
    redis_server: RedisServer,
) -> None:
    """In half-open only the lease holder's call runs; its failure reopens every breaker (the
    timer anew); the next trial's success closes them all."""
    async with stores(redis_server.url, 2) as fleet:
        breakers = [CircuitBreaker("db", 2, 1, 0.3, half_open_max_calls=1, store=s) for s in fleet]
        await fail(breakers[0])
        await fail(breakers[1])
        await wait_for(lambda: all(b.state is CircuitState.OPEN for b in breakers))
        ran: list[int] = []

        async def attempt(i: int, outcome: Callable[[], Any]) -> None:
            # Records the calls that ran as trials (the breaker was half-open when asked).
            half_open = breakers[i].state is CircuitState.HALF_OPEN
            try:
                await breakers[i].call(outcome)
            except CircuitOpenError:
                return
            except ValueError:
                pass
            if half_open:
                ran.append(i)

        async def broken() -> None:
            raise ValueError("still down")

        while not ran:  # both ask; only the holder's call runs
            await attempt(0, broken)
            await attempt(1, broken)
            await trio.sleep(0.01)
        assert len(ran) == 1
        await wait_for(lambda: all(b.state is CircuitState.OPEN for b in breakers))
        ran.clear()
        with trio.fail_after(3):
            while not all(b.state is CircuitState.CLOSED for b in breakers):
                await attempt(0, ok)
                await attempt(1, ok)
                await trio.sleep(0.01)
        assert len(ran) == 1


async def test_force_open_and_reset_act_fleet_wide(redis_server: RedisServer) -> None:
    """force_open() in one process holds every process's breaker open; reset() closes them."""
    async with stores(redis_server.url, 2) as (a, b):
        here, there = CircuitBreaker("ops", store=a), CircuitBreaker("ops", store=b)
        here.force_open()
        await wait_for(lambda: there.state is CircuitState.OPEN)
        with pytest.raises(CircuitOpenError) as refused:
            await there.call(ok)
        assert refused.value.retry_after == math.inf
        here.reset()
        await wait_for(lambda: there.state is CircuitState.CLOSED)
        assert await there.call(ok) == "ok"


async def test_a_process_opens_on_its_own_failures_before_the_fleet_decides(
    redis_server: RedisServer,
) -> None:
    """The local breaker keeps working: its own failures open it at once, with no round trip."""
    async with connect(redis_server.url, flush_interval=10.0) as store:
        breaker = CircuitBreaker("local", failure_threshold=2, store=store)
        await fail(breaker)
        await fail(breaker)
        assert breaker.state is CircuitState.OPEN


async def test_one_name_one_rule_one_settings(redis_server: RedisServer) -> None:
    """Two breakers of one name in one store share one core; other settings are refused."""
    async with connect(redis_server.url) as store:
        first = CircuitBreaker("same", 3, store=store)
        second = CircuitBreaker("same", 3, store=store)
        assert first.core is second.core
        assert isinstance(first.core, FleetBreakerCore)
        with pytest.raises(supervisor.ConfigError, match="'same'"):
            CircuitBreaker("same", 4, store=store)


# -- throttles ----------------------------------------------------------------------------------


async def test_a_shared_throttle_is_exact_across_processes(redis_server: RedisServer) -> None:
    """Raise mode: 5 per second over three stores admits exactly 5 of 12 calls; the refusals
    carry the fleet's retry_after."""
    async with stores(redis_server.url, 3) as fleet:
        calls = [
            supervisor.throttle(5, 1.0, on_limit="raise", name="api", store=s)(ok) for s in fleet
        ]
        admitted, refused = 0, []
        for i in range(12):
            try:
                await calls[i % 3]()
                admitted += 1
            except RateLimitExceeded as exc:
                refused.append(exc.retry_after)
        assert admitted == 5
        assert len(refused) == 7
        assert all(0.0 < r <= 1.0 for r in refused)


async def test_waiters_book_slots_and_a_cancelled_one_gives_its_slot_back(
    redis_server: RedisServer,
) -> None:
    """Wait mode: the second call of a 1-per-0.4s limit waits about 0.4 s; a waiter cancelled
    before its slot gives it back, so the next caller gets that slot, not a later one."""
    async with stores(redis_server.url, 2) as (a, b):
        first = supervisor.throttle(1, 0.4, name="slow", store=a)(ok)
        second = supervisor.throttle(1, 0.4, name="slow", store=b)(ok)
        t0 = trio.current_time()
        await first()
        with trio.move_on_after(0.1):
            await second()  # books the slot at ~0.4 s, then is cancelled
        await trio.sleep(0.05)  # the cancelled booking is dropped by the next sync
        await second()
        waited = trio.current_time() - t0
        assert 0.35 <= waited <= 0.6


async def test_a_tree_shares_its_services_rules_through_the_store(
    redis_server: RedisServer,
) -> None:
    """run_tree(spec, store=...): the same service path in two trees is one breaker."""
    spec = supervisor.SupervisorSpec(
        name="app",
        children=[
            supervisor.ServiceSpec(
                name="echo",
                factory=Echo,
                breaker=supervisor.BreakerSpec(failure_threshold=5),
                throttle=supervisor.ThrottleSpec(max_calls=100, period=1.0),
            )
        ],
    )
    async with (
        stores(redis_server.url, 2) as (a, b),
        supervisor.run_tree(spec, store=a) as one,
        supervisor.run_tree(spec, store=b) as two,
    ):
        assert await two.service("echo").call("hi") == "hi"
        breaker = one.service("echo").breaker
        assert breaker is not None
        breaker.force_open()
        other = two.service("echo").breaker
        assert other is not None
        await wait_for(lambda: other.state is CircuitState.OPEN)
        with pytest.raises(CircuitOpenError):
            await two.service("echo").call("hi")


class Echo(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        return message


# -- the server going away ------------------------------------------------------------------------


async def test_a_killed_server_turns_every_rule_local_and_a_restart_resyncs(
    redis_server: RedisServer,
) -> None:
    """Kill redis-server mid-run: no call hangs (a throttle admission waits at most `timeout`),
    the rules decide locally, StoreUnavailable is published; once the server is back the store
    publishes StoreRecovered and the rules follow the fleet again."""
    events: list[object] = []
    async with stores(redis_server.url, 2, timeout=0.2) as (a, b):
        a.add_listener(events.append)
        breaker = CircuitBreaker("svc", failure_threshold=2, timeout=0.2, store=a)
        far = CircuitBreaker("svc", failure_threshold=2, timeout=0.2, store=b)
        limited = supervisor.throttle(1000, 1.0, name="api", store=a)(ok)
        assert await limited() == "ok"
        await fail(breaker)  # one failure counted in the fleet, not yet opening

        await trio.to_thread.run_sync(redis_server.kill)
        with trio.fail_after(1.0):  # never hangs: at most `timeout`, then local
            for _ in range(5):
                assert await limited() == "ok"
        await wait_for(lambda: not a.available, 1.0)
        assert isinstance(events[0], supervisor.StoreUnavailable)
        assert "127.0.0.1" in events[0].url
        # Local safety: the process's own failures still open its breaker, and it half-opens on
        # its own timer with no fleet to ask.
        await fail(breaker)
        assert breaker.state is CircuitState.OPEN
        await trio.sleep(0.25)
        assert await breaker.call(ok) == "ok"

        await trio.to_thread.run_sync(redis_server.start)
        await wait_for(lambda: a.available and b.available, 5.0)
        assert isinstance(events[-1], supervisor.StoreRecovered)
        assert events[-1].down_for > 0
        # Both follow the fleet again: a force_open in one reaches the other.
        far.force_open()
        await wait_for(lambda: breaker.state is CircuitState.OPEN, 3.0)
        assert await limited() == "ok"
        assert a.statistics().failures >= 1


async def test_a_stalled_server_costs_a_request_at_most_the_timeout(
    redis_server: RedisServer,
) -> None:
    """A server that stops answering (SIGSTOP) delays one throttle admission by at most the
    store's timeout; the next ones are decided locally at once; when it answers again the store
    is back."""
    async with connect(redis_server.url, timeout=0.1) as store:
        limited = supervisor.throttle(1000, 1.0, name="api", store=store)(ok)
        assert await limited() == "ok"
        process = redis_server.process
        assert process is not None
        process.send_signal(signal.SIGSTOP)
        try:
            started = trio.current_time()
            assert await limited() == "ok"
            assert trio.current_time() - started < 0.1 + 0.05
            assert not store.available
            started = trio.current_time()
            for _ in range(100):
                assert await limited() == "ok"
            assert trio.current_time() - started < 0.05
        finally:
            process.send_signal(signal.SIGCONT)
        await wait_for(lambda: store.available, 3.0)


# -- without the extra ----------------------------------------------------------------------------


def test_the_package_imports_without_coredis() -> None:
    """`import supervisor` and the memory store work where coredis is missing; connecting a
    RedisStore then says which extra to install."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["coredis"] = None
        import supervisor
        breaker = supervisor.CircuitBreaker("x", store=supervisor.MemoryStore())
        assert breaker.state is supervisor.CircuitState.CLOSED
        try:
            supervisor.RedisStore.connect("redis://127.0.0.1:1")
        except ImportError as exc:
            assert "trio-supervisor[redis]" in str(exc), exc
            print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.stdout.strip() == "ok", done.stderr
