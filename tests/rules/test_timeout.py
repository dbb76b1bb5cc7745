"""The timeout decorator and TimeoutBudget, on trio's mocked clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from supervisor import ConfigError, OperationTimeout, TimeoutBudget, timeout
from supervisor.guards._timeout import TimeoutKind
from supervisor.rules._budget import BudgetCore

KIND_VARS = ("DEFAULT_OPERATION_TIMEOUT", "DEFAULT_API_TIMEOUT", "DEFAULT_QUERY_TIMEOUT")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in KIND_VARS:
        monkeypatch.delenv(var, raising=False)


async def sleeper(seconds: float) -> str:
    await trio.sleep(seconds)
    return "woke"


async def test_expiry_raises_operation_timeout(autojump_clock: trio.testing.MockClock) -> None:
    """A call running past `seconds` is cancelled at exactly that time with OperationTimeout."""
    start = trio.current_time()
    with pytest.raises(OperationTimeout) as info:
        await timeout(2.5)(sleeper)(10.0)
    assert trio.current_time() - start == 2.5
    assert info.value.seconds == 2.5
    assert isinstance(info.value, TimeoutError)


async def test_call_within_limit_returns(autojump_clock: trio.testing.MockClock) -> None:
    """A call that ends before the limit returns its result untouched."""
    assert await timeout(2.5)(sleeper)(2.0) == "woke"


async def test_errors_pass_through() -> None:
    """An error raised before the limit propagates unchanged."""

    @timeout(1.0)
    async def broken() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        await broken()


@pytest.mark.parametrize(
    ("kind", "variable", "default"),
    [
        ("operation", "DEFAULT_OPERATION_TIMEOUT", 30.0),
        ("api", "DEFAULT_API_TIMEOUT", 10.0),
        ("query", "DEFAULT_QUERY_TIMEOUT", 60.0),
    ],
)
async def test_kind_defaults(
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    variable: str,
    default: float,
) -> None:
    """seconds=None takes the kind's variable (read at timeout(...)), else its built-in default."""
    start = trio.current_time()
    with pytest.raises(OperationTimeout):
        await timeout(kind=kind)(sleeper)(1000.0)
    assert trio.current_time() - start == default
    monkeypatch.setenv(variable, "4.5")
    guard = timeout(kind=kind)
    monkeypatch.setenv(variable, "oops")  # read already
    start = trio.current_time()
    with pytest.raises(OperationTimeout) as info:
        await guard(sleeper)(1000.0)
    assert trio.current_time() - start == 4.5
    assert info.value.seconds == 4.5


def test_default_kind_is_operation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without kind, DEFAULT_OPERATION_TIMEOUT applies."""
    monkeypatch.setenv("DEFAULT_OPERATION_TIMEOUT", "7")
    assert timeout()(sleeper).timeout_seconds == 7.0  # type: ignore[attr-defined]
    assert TimeoutKind("api") is TimeoutKind.API


@pytest.mark.parametrize("seconds", [None, 5.0])
def test_unknown_kind_raises(seconds: float | None) -> None:
    """An unknown kind raises ConfigError, with or without seconds."""
    with pytest.raises(ConfigError, match=r"`kind`.*'db'"):
        timeout(seconds, kind="db")


@pytest.mark.parametrize("seconds", [0, -1.0, float("inf"), float("nan"), True])
def test_bad_seconds(seconds: float) -> None:
    """seconds must be a number > 0."""
    with pytest.raises(ConfigError, match="`seconds`"):
        timeout(seconds)


@pytest.mark.parametrize("variable", KIND_VARS)
def test_bad_variable(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """A bad kind variable raises ConfigError naming it, and is not read when seconds is given."""
    monkeypatch.setenv(variable, "-2")
    kind = {"DEFAULT_OPERATION_TIMEOUT": "operation", "DEFAULT_API_TIMEOUT": "api"}.get(
        variable, "query"
    )
    with pytest.raises(ConfigError, match=variable) as info:
        timeout(kind=kind)
    assert "'-2'" in str(info.value)
    timeout(3.0, kind=kind)


def test_plain_function_refused_at_decoration() -> None:
    """Decorating a plain function raises TypeError at decoration time."""

    def plain() -> None:
        pass

    with pytest.raises(TypeError, match="async def"):
        timeout(1.0)(plain)  # type: ignore[arg-type]


async def test_call_form_and_metadata(autojump_clock: trio.testing.MockClock) -> None:
    """timeout(s)(fn)(*args) works and the wrapper keeps fn's metadata."""

    async def fetch_from_db(key: str) -> str:
        """Fetch from the database."""
        await trio.sleep(1.0)
        return key

    db_timeout = 2.0
    assert await timeout(db_timeout)(fetch_from_db)("k") == "k"
    wrapped = timeout(db_timeout)(fetch_from_db)
    assert wrapped.__name__ == "fetch_from_db"
    assert wrapped.__doc__ == "Fetch from the database."


async def test_inner_timeout_never_extends_outer(autojump_clock: trio.testing.MockClock) -> None:
    """An outer deadline that comes first cancels the call; no OperationTimeout is raised."""
    start = trio.current_time()
    with trio.move_on_after(1.0) as outer:
        await timeout(10.0)(sleeper)(100.0)
    assert outer.cancelled_caught
    assert trio.current_time() - start == 1.0


async def test_outer_timeout_fires_first(autojump_clock: trio.testing.MockClock) -> None:
    """Nested timeouts: the shorter outer one wins and names its own seconds."""
    inner = timeout(10.0)(sleeper)

    @timeout(3.0)
    async def outer() -> str:
        return await inner(100.0)

    with pytest.raises(OperationTimeout) as info:
        await outer()
    assert info.value.seconds == 3.0


async def test_equal_outer_deadline_wins(autojump_clock: trio.testing.MockClock) -> None:
    """When the outer deadline falls at the same moment, the outer scope takes the cancellation."""
    with trio.move_on_after(2.0) as outer:
        await timeout(2.0)(sleeper)(100.0)
    assert outer.cancelled_caught


async def test_external_cancel_is_not_converted(autojump_clock: trio.testing.MockClock) -> None:
    """A cancellation from outside propagates as Cancelled, never as OperationTimeout."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timeout(10.0)(sleeper), 100.0)
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()


async def test_many_concurrent_timeouts(autojump_clock: trio.testing.MockClock) -> None:
    """100 concurrent calls each time out at their own limit."""
    ended: dict[int, float] = {}
    start = trio.current_time()

    async def one(i: int) -> None:
        limit = 1.0 + i % 5
        try:
            await timeout(limit)(sleeper)(3.0)
        except OperationTimeout:
            ended[i] = trio.current_time() - start
        else:
            ended[i] = -(trio.current_time() - start)

    async with trio.open_nursery() as nursery:
        for i in range(100):
            nursery.start_soon(one, i)
    for i, at in ended.items():
        limit = 1.0 + i % 5
        assert at == (limit if limit <= 3.0 else -3.0)


async def test_budget_remaining_and_share(autojump_clock: trio.testing.MockClock) -> None:
    """remaining counts down from creation to 0 (never negative); share is min(remaining, part)."""
    budget = TimeoutBudget(10.0)
    assert budget.remaining == 10.0
    assert budget.share(0.25) == 2.5
    await trio.sleep(8.0)
    assert budget.remaining == 2.0
    assert budget.share(0.5) == 2.0
    assert budget.share(0.1) == 1.0
    await trio.sleep(2.0)
    assert budget.remaining == 0.0
    assert budget.expired
    await trio.sleep(5.0)
    assert budget.remaining == 0.0
    assert budget.share(1) == 0.0
    assert budget.deadline - budget.started_at == budget.total == 10.0
    assert repr(budget) == "<TimeoutBudget 10.0s, 0.000s left>"


async def test_budget_split_across_calls(autojump_clock: trio.testing.MockClock) -> None:
    """A budget split with share() across timeouts caps each call."""
    budget = TimeoutBudget(6.0)
    assert await timeout(budget.share(0.5))(sleeper)(2.0) == "woke"
    with pytest.raises(OperationTimeout) as info:
        await timeout(budget.share(1.0))(sleeper)(100.0)
    assert info.value.seconds == 4.0
    assert budget.remaining == 0.0


@pytest.mark.parametrize("fraction", [0, -0.5, 1.01, float("nan"), True, "half"])
async def test_bad_fraction(fraction: float) -> None:
    """A fraction outside (0, 1] raises ConfigError."""
    with pytest.raises(ConfigError, match="`fraction`"):
        TimeoutBudget(1.0).share(fraction)


@pytest.mark.parametrize("total", [0, -1.0, float("inf")])
async def test_bad_total(total: float) -> None:
    """total must be a number > 0."""
    with pytest.raises(ConfigError, match="`total`"):
        TimeoutBudget(total)


def test_budget_core_is_pure() -> None:
    """The budget arithmetic takes the time as an argument."""
    core = BudgetCore(total=4.0, started_at=100.0)
    assert core.remaining(101.0) == 3.0
    assert core.remaining(104.0) == 0.0
    assert core.remaining(200.0) == 0.0
    assert core.share(0.5, 103.0) == 1.0
    with pytest.raises(ConfigError, match="`total`"):
        BudgetCore(total=0.0, started_at=0.0)
