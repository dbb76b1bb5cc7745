"""The examples of the resilience rules run, print what they should, and behave as they say.

Each example is loaded fresh from its file (so its per-function breakers start closed) and its
``main()`` run on the ``autojump_clock``; each is also run once as a script, as a user would.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys
import types

import pytest
import trio
import trio.testing

from supervisor import CircuitOpenError, CircuitState, OperationTimeout

EXAMPLES = pathlib.Path(__file__).parents[1] / "examples"

# Variables that would change the defaults the examples rely on.
SETTINGS = (
    "RETRY_MAX_ATTEMPTS",
    "RETRY_INITIAL_DELAY",
    "RETRY_MAX_DELAY",
    "RETRY_BACKOFF_FACTOR",
    "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
    "CIRCUIT_BREAKER_SUCCESS_THRESHOLD",
    "CIRCUIT_BREAKER_TIMEOUT",
    "CIRCUIT_BREAKER_HALF_OPEN_REQUESTS",
    "DEFAULT_OPERATION_TIMEOUT",
    "DEFAULT_API_TIMEOUT",
    "DEFAULT_QUERY_TIMEOUT",
)

EXPECTED: dict[str, list[str]] = {
    "api_client": [
        "1. a flaky server: two 503s, then 200",
        "  GET /orders/1 -> 503",
        "  GET /orders/1 -> 503",
        "  GET /orders/1 -> 200",
        "get_order(1) = {'path': '/orders/1', 'status': 'shipped'} after 3 requests; "
        "<CircuitBreaker 'orders-api' closed, 0/3 failures, 0/3 trials>",
        "2. the server goes down",
        "  GET /orders/2 -> 503",
        "  GET /orders/2 -> 503",
        "  GET /orders/2 -> 503",
        "  breaker 'orders-api': closed -> open (failure_threshold)",
        "get_order(2) failed with HTTP 503 after 3 requests",
        "3. the open breaker refuses at once",
        "get_order(3) refused: breaker 'orders-api' open, trial in 120 s; 0 requests made",
        "4. two minutes later the server is back",
        "  breaker 'orders-api': open -> half_open (timeout_elapsed)",
        "state after 120 s: half_open",
        "  GET /orders/4 -> 200",
        "  GET /orders/5 -> 200",
        "  breaker 'orders-api': half_open -> closed (trials_succeeded)",
        "after two trial calls: <CircuitBreaker 'orders-api' closed, 0/3 failures, 0/3 trials>",
    ],
    "database": [
        "1. transient errors: the connection drops, then a query hangs",
        "  query 1: SELECT * FROM users WHERE id = %s -> drop",
        "  query 2: SELECT * FROM users WHERE id = %s -> hang",
        "  query 3: SELECT * FROM users WHERE id = %s -> ok",
        "fetch_user(7) = [(7,)] after 3 queries",
        "2. a constraint violation is not retried",
        "  query 4: INSERT INTO users (id) VALUES (%s) -> duplicate",
        "insert_user(7) raised IntegrityError after 1 query: "
        "duplicate key value violates unique constraint (7)",
    ],
    "queue_consumer": [
        "poll 1: ['order-1', 'order-2']",
        "poll 2: ['order-3']",
        "-- the broker goes down --",
        "poll 3: []",
        "poll 4: []",
        "4 pulls for 4 polls; breaker closed, 0 failures counted",
    ],
    "timeout_budget": [
        "[0.20s] authenticated 'alice' (share 0.60s); 1.80s left",
        "[0.90s] loaded 2 orders (share 1.00s); 1.10s left",
        "[1.30s] recommendations timed out after 0.40s; serving the page without them",
        "[1.30s] page served; 0.70s of the budget left",
        "page: {'user': 'alice', 'orders': ['alice-order-1', 'alice-order-2'], "
        "'recommendations': []}",
    ],
}


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in SETTINGS:
        monkeypatch.delenv(var, raising=False)


def load(name: str) -> types.ModuleType:
    """A fresh copy of ``examples/<name>.py`` (not registered in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load example {name!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- each main() on the mock clock ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_example_main_prints_its_story(
    name: str, autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each example's main() prints exactly the lines of its story."""
    await load(name).main()
    captured = capsys.readouterr()
    assert captured.out.splitlines() == EXPECTED[name]
    assert captured.err == ""


# -- each script as a user runs it ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_script_runs(name: str) -> None:
    """``python examples/<name>.py`` exits 0 and prints the same story."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == EXPECTED[name]
    assert done.stderr == ""


# -- api_client.py ----------------------------------------------------------------------------


async def test_api_client_retries_a_flaky_server(autojump_clock: trio.testing.MockClock) -> None:
    """Two 503s are retried away: the third request answers and the breaker stays closed."""
    api = load("api_client")
    http = api.FakeHTTP(503, 503, 200)
    client = api.OrdersClient(http)
    assert await client.get_order(1) == {"path": "/orders/1", "status": "shipped"}
    assert http.requests == 3
    assert client.breaker.state is CircuitState.CLOSED
    assert client.breaker.failure_count == 0


async def test_api_client_breaker_opens_refuses_and_recovers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Three failed attempts open the breaker; it then refuses at once (retry_after 120 s, above
    retry's max_delay, so retry gives up) and is half-open exactly 120 s after opening."""
    api = load("api_client")
    http = api.FakeHTTP(503)
    client = api.OrdersClient(http)
    opened: list[float] = []
    client.breaker.add_listener(
        lambda change: opened.append(change.at) if change.new_state is CircuitState.OPEN else None
    )

    with pytest.raises(api.HTTPError):
        await client.get_order(2)
    assert http.requests == 3
    assert client.breaker.state is CircuitState.OPEN
    assert opened == [trio.current_time()]

    with pytest.raises(CircuitOpenError) as refused:
        await client.get_order(3)
    assert refused.value.retry_after == 120.0
    assert http.requests == 3
    assert trio.current_time() == opened[0]

    await trio.sleep_until(opened[0] + 120.0 - 0.001)
    assert client.breaker.statistics().state is CircuitState.OPEN
    await trio.sleep_until(opened[0] + 120.0)
    assert client.breaker.statistics().state is CircuitState.HALF_OPEN

    http.answer_with(200)
    await client.get_order(4)
    assert client.breaker.statistics().state is CircuitState.HALF_OPEN
    await client.get_order(5)
    assert client.breaker.statistics().state is CircuitState.CLOSED


# -- database.py ------------------------------------------------------------------------------


async def test_database_retries_transient_errors(autojump_clock: trio.testing.MockClock) -> None:
    """A dropped connection and a query cut by the 2 s timeout are both retried."""
    database = load("database")
    database.db.script("drop", "hang", "ok")
    start = trio.current_time()
    assert await database.fetch_user(7) == [(7,)]
    assert database.db.queries == 3
    # Three 20 ms queries, one of them cut at 2 s, and two jittered sleeps of at most 1 s and 1.5 s.
    elapsed = trio.current_time() - start
    assert 2.04 - 1e-9 <= elapsed <= 2.04 + 1.0 + 1.5 + 1e-9


async def test_database_gives_up_after_max_attempts(autojump_clock: trio.testing.MockClock) -> None:
    """A connection that keeps dropping is tried 4 times, then its last error is re-raised."""
    database = load("database")
    database.db.script("drop")
    with pytest.raises(database.OperationalError):
        await database.fetch_user(7)
    assert database.db.queries == 4


async def test_database_hanging_query_times_out(autojump_clock: trio.testing.MockClock) -> None:
    """A query that never answers ends with OperationTimeout (a TimeoutError) after 4 attempts."""
    database = load("database")
    database.db.script("hang")
    with pytest.raises(OperationTimeout) as timed_out:
        await database.fetch_user(7)
    assert timed_out.value.seconds == 2.0
    assert isinstance(timed_out.value, TimeoutError)
    assert database.db.queries == 4


async def test_database_other_errors_propagate_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An IntegrityError is not in `exceptions`: one query, no sleep, the error propagates."""
    database = load("database")
    database.db.script("duplicate")
    start = trio.current_time()
    with pytest.raises(database.IntegrityError):
        await database.insert_user(7)
    assert database.db.queries == 1
    assert trio.current_time() - start == pytest.approx(0.02)


# -- queue_consumer.py ------------------------------------------------------------------------


async def test_queue_consumer_fallback_answers(autojump_clock: trio.testing.MockClock) -> None:
    """With the broker down the innermost fallback answers [], so retry makes one attempt per fetch
    and the outer breaker counts no failure."""
    consumer = load("queue_consumer")
    broker = consumer.FakeBroker(["m1"])
    queue = consumer.MessageQueue(broker)
    assert await queue.fetch() == ["m1"]
    broker.up = False
    for _ in range(20):
        assert await queue.fetch() == []
    assert broker.pulls == 21
    breaker = consumer.MessageQueue.fetch.breaker
    assert breaker.name == "MessageQueue.fetch"
    assert breaker.failure_threshold == 10
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0


async def test_queue_consumer_breaker_is_shared_by_instances(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every MessageQueue shares the one breaker that circuit_breaker made for `fetch`."""
    consumer = load("queue_consumer")
    first = consumer.MessageQueue(consumer.FakeBroker([]))
    second = consumer.MessageQueue(consumer.FakeBroker(["m1"]))
    consumer.MessageQueue.fetch.breaker.force_open()
    for queue in (first, second):
        with pytest.raises(CircuitOpenError):
            await queue.fetch()
    assert second.broker.pulls == 0


# -- timeout_budget.py ------------------------------------------------------------------------


async def test_timeout_budget_slow_call_times_out_within_its_share(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The third call (20 % of 2 s) is cut at 0.4 s, 1.3 s into the request; 0.7 s are left."""
    budget_example = load("timeout_budget")
    start = trio.current_time()
    page = await budget_example.handle_request("t0k3n")
    assert page == {
        "user": "alice",
        "orders": ["alice-order-1", "alice-order-2"],
        "recommendations": [],
    }
    assert trio.current_time() - start == pytest.approx(0.2 + 0.7 + 0.4)
