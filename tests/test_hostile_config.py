"""Any Python value for any spec field or rule parameter is accepted, or refused with a
ConfigError or TypeError that names the parameter; never an OverflowError, a RecursionError or a
traceback from deep inside."""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich.console import Console

import actors
from supervisor import (
    AdaptiveBulkhead,
    AdaptiveLimitSpec,
    Bulkhead,
    CircuitBreaker,
    CircuitBreakerConfig,
    ConfigError,
    ExponentialBackoff,
    Fault,
    HealthTracker,
    Hedge,
    HedgeSpec,
    LinearBackoff,
    RateLimiter,
    Retrier,
    adaptive_bulkhead,
    bulkhead,
    cache_fallback,
    circuit_breaker,
    degraded_fallback,
    fallback,
    hedge,
    load_tree,
    load_tree_file,
    retry,
    retrying,
    throttle,
    timeout,
)
from supervisor.console._monitor import Monitor
from supervisor.console._render import render
from supervisor.cores import AdaptiveLimitCore, HedgeCore, SlidingWindowCore
from supervisor.observe._aggregates import ServiceMetrics
from supervisor.observe._snapshot import (
    LatencySnapshot,
    NodeSnapshot,
    ServiceSnapshot,
    SystemSnapshot,
)
from supervisor.rules._budget import BudgetCore
from supervisor.rules._health import HealthWindow
from supervisor.rules._rate_breaker import OpenBackoff, RateWindow
from supervisor.rules._retry_budget import RetryBudget, RetryBudgetConfig
from supervisor.tree._rule_specs import (
    BreakerSpec,
    BulkheadSpec,
    FallbackSpec,
    RetrySpec,
    ThrottleSpec,
)
from supervisor.tree._specs import ChildSpec, RestartBackoff, ServiceSpec, SupervisorSpec


class Echo(actors.Actor[Any]):
    """A trivial actor for the specs' factory."""

    async def receive(self, message: Any) -> Any:
        return message


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# Strings never contain ':' so that no field tries to import an arbitrary module.
texts = st.text(max_size=12).filter(lambda text: ":" not in text)
scalars = st.one_of(
    st.integers(),
    st.sampled_from([10**400, -(10**400), 10**4000, 2**63, 2**63 - 1, sys.maxsize + 1, 2**1024]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e308, 5e-324, -0.0]),
    texts,
    st.none(),
    st.booleans(),
    st.binary(max_size=4),
    st.just(object()),
    st.builds(_deep, st.just(3000)),
    st.builds(lambda: {"a": _deep(3000)}),
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(texts, children, max_size=3)
        | st.frozensets(st.integers(), max_size=3)
    ),
    max_leaves=6,
)


def _echo() -> Any:
    return Echo


_ADAPTIVE = (
    "max_limit",
    "max_queued",
    "algorithm",
    "initial_limit",
    "min_limit",
    "tolerance",
    "backoff_ratio",
    "smoothing",
    "queue_size",
    "probe_interval",
    "exceptions",
)
_HEDGE = ("max_hedges", "percentile", "min_samples", "samples", "exceptions")


# (parameter name, build: value -> object); build must raise only for a bad value.
CASES: list[tuple[str, Callable[[Any], Any]]] = [
    *[(f, lambda v, f=f: RestartBackoff(**{f: v})) for f in ("initial_delay", "max_delay")],
    *[(f, lambda v, f=f: RestartBackoff(**{f: v})) for f in ("factor", "jitter")],
    *[
        (f, lambda v, f=f: ChildSpec(**{"name": "c", "factory": Echo, f: v}))
        for f in ("name", "factory", "args", "kwargs", "restart", "shutdown")
    ],
    *[
        (f, lambda v, f=f: ChildSpec(**{"name": "c", "factory": Echo, f: v}))
        for f in ("mailbox_size", "overflow")
    ],
    *[
        (f, lambda v, f=f: BreakerSpec(**{f: v}))
        for f in (
            "failure_threshold",
            "success_threshold",
            "timeout",
            "half_open_max_calls",
            "expected_exception",
        )
    ],
    *[
        (f, lambda v, f=f: RetrySpec(**{f: v}))
        for f in ("max_attempts", "initial_delay", "max_delay", "backoff_factor", "jitter")
    ],
    ("exceptions", lambda v: RetrySpec(exceptions=v)),
    *[(f, lambda v, f=f: BulkheadSpec(**{f: v})) for f in ("max_concurrent", "max_queued")],
    ("max_calls", lambda v: ThrottleSpec(max_calls=v, period=1)),
    ("period", lambda v: ThrottleSpec(max_calls=1, period=v)),
    ("on_limit", lambda v: ThrottleSpec(max_calls=1, period=1, on_limit=v)),
    ("cache_ttl", lambda v: FallbackSpec(cache_ttl=v)),
    ("cache_maxsize", lambda v: FallbackSpec(default=1, cache_maxsize=v)),
    ("degraded", lambda v: FallbackSpec(degraded=v)),
    *[
        (f, lambda v, f=f: ServiceSpec(**{"name": "s", "factory": Echo, f: v}))
        for f in (
            "name",
            "factory",
            "args",
            "kwargs",
            "restart",
            "shutdown",
            "bulkhead",
            "breaker",
            "retry",
            "throttle",
            "timeout",
            "fallback",
            "health_check",
            "health_interval",
        )
    ],
    *[
        (f, lambda v, f=f: SupervisorSpec(**{"name": "root", f: v}))
        for f in (
            "name",
            "children",
            "strategy",
            "max_restarts",
            "within",
            "backoff",
            "restart",
            "shutdown",
        )
    ],
    # fault injection (a spec field of services, and the decorator's faults)
    *[
        (f, lambda v, f=f: Fault(**{"latency": 1.0, f: v}))
        for f in ("rate", "start", "end", "flag", "limit", "point")
    ],
    ("error", lambda v: Fault(error=v)),
    ("latency", lambda v: Fault(latency=v)),
    # the decorators and rule objects of API.md
    *[
        (f, lambda v, f=f: CircuitBreaker("b", **{f: v}))
        for f in (
            "failure_threshold",
            "success_threshold",
            "timeout",
            "expected_exception",
            "half_open_max_calls",
            "config",
        )
    ],
    ("name", CircuitBreaker),
    *[
        (f, lambda v, f=f: circuit_breaker(**{f: v}))
        for f in ("failure_threshold", "success_threshold", "timeout", "half_open_max_calls")
    ],
    *[
        (f, lambda v, f=f: CircuitBreakerConfig(**{f: v}))
        for f in ("failure_threshold", "success_threshold", "timeout")
    ],
    *[
        (f, lambda v, f=f: retry(**{f: v}))
        for f in (
            "max_attempts",
            "backoff_factor",
            "exceptions",
            "initial_delay",
            "max_delay",
            "policy",
        )
    ],
    ("max_attempts", lambda v: Retrier(LinearBackoff(), v)),
    ("exceptions", lambda v: Retrier(LinearBackoff(), exceptions=v)),
    ("policy", Retrier),
    *[
        (f, lambda v, f=f: ExponentialBackoff(**{f: v}))
        for f in ("initial_delay", "max_delay", "factor")
    ],
    *[(f, lambda v, f=f: LinearBackoff(**{f: v})) for f in ("delay", "max_attempts")],
    ("seconds", timeout),
    ("kind", lambda v: timeout(1.0, kind=v)),
    ("total", lambda v: BudgetCore(total=v, started_at=0.0)),
    ("fraction", lambda v: BudgetCore(total=1.0, started_at=0.0).share(v, 0.0)),
    ("default_factory", lambda v: fallback(default_factory=v)),
    ("exceptions", lambda v: fallback(1, exceptions=v)),
    *[(f, lambda v, f=f: cache_fallback(**{f: v})) for f in ("ttl", "maxsize", "exceptions")],
    ("alternative", degraded_fallback),
    *[(f, lambda v, f=f: throttle(**{f: v})) for f in ("max_calls", "period", "on_limit")],
    *[(f, lambda v, f=f: bulkhead(**{f: v})) for f in ("max_concurrent", "max_queued", "name")],
    *[(f, lambda v, f=f: Bulkhead("b", **{f: v})) for f in ("max_concurrent", "max_queued")],
    ("name", Bulkhead),
    *[
        (f, lambda v, f=f: HealthTracker(**{f: v}))
        for f in ("failure_threshold", "check_timeout", "on_alert", "window_size")
    ],
    ("name", lambda v: HealthTracker().register_service(v, lambda: True)),
    ("health_check", lambda v: HealthTracker().register_service("s", v)),
    ("interval", lambda v: HealthTracker().register_service("s", lambda: True, v)),
    ("failure_threshold", lambda v: HealthWindow("s", failure_threshold=v)),
    ("window_size", lambda v: HealthWindow("s", failure_threshold=1, window_size=v)),
    *[
        (f, lambda v, f=f: ServiceMetrics("s", created_at=0.0, **{f: v}))
        for f in ("rate_window", "latency_window", "latency_samples")
    ],
    ("interval", lambda v: Monitor(lambda: None, interval=v)),
    ("max_events", lambda v: Monitor(lambda: None, max_events=v)),
    # the breaker and retry rules beyond API.md
    *[
        (f, lambda v, f=f: BreakerSpec(**{f: v}))
        for f in ("window", "open_backoff", "exclude", "is_failure", "is_failure_result")
    ],
    *[
        (f, lambda v, f=f: RetrySpec(**{f: v}))
        for f in ("on", "retry_on_result", "total_timeout", "budget")
    ],
    ("size", lambda v: RateWindow(size=v)),
    ("duration", lambda v: RateWindow(duration=v)),
    *[
        (f, lambda v, f=f: RateWindow(**{"size": 3, f: v}))
        for f in ("failure_rate", "minimum_calls")
    ],
    ("slow_call_rate", lambda v: RateWindow(size=3, slow_call_rate=v, slow_call_duration=1.0)),
    ("slow_call_duration", lambda v: RateWindow(size=3, slow_call_rate=0.5, slow_call_duration=v)),
    *[(f, lambda v, f=f: OpenBackoff(**{f: v})) for f in ("factor", "max_timeout")],
    *[
        (f, lambda v, f=f: RetryBudgetConfig(**{f: v}))
        for f in ("ratio", "min_per_second", "window")
    ],
    ("config", RetryBudget),
    *[
        (f, lambda v, f=f: CircuitBreaker("b", **{f: v}))
        for f in ("window", "open_backoff", "exclude", "is_failure", "is_failure_result")
    ],
    *[
        (f, lambda v, f=f: retry(**{f: v}))
        for f in (
            "on",
            "retry_on_result",
            "total_timeout",
            "budget",
            "before_sleep",
            "on_giveup",
            "on_success",
        )
    ],
    *[(f, lambda v, f=f: retrying(**{f: v})) for f in ("on", "total_timeout", "budget", "name")],
    # the rate limiter, the adaptive bulkhead and hedging (shells, cores and specs)
    *[(f, lambda v, f=f: RateLimiter(**{f: v})) for f in ("max_rate", "time_period")],
    *[(f, lambda v, f=f: RateLimiter(1, **{f: v})) for f in ("name", "on_limit")],
    ("amount", lambda v: SlidingWindowCore(3, 1.0).check_amount(v)),
    *[(f, lambda v, f=f: AdaptiveBulkhead("a", **{f: v})) for f in _ADAPTIVE],
    *[(f, lambda v, f=f: adaptive_bulkhead(**{f: v})) for f in ("max_queued", "exceptions")],
    *[(f, lambda v, f=f: AdaptiveLimitCore(**{f: v})) for f in _ADAPTIVE[2:-1]],
    ("latency", lambda v: AdaptiveLimitCore().on_sample(v, in_flight=1)),
    ("in_flight", lambda v: AdaptiveLimitCore().on_sample(0.1, in_flight=v)),
    *[(f, lambda v, f=f: AdaptiveLimitSpec(**{f: v})) for f in _ADAPTIVE[2:-1]],
    ("adaptive", lambda v: BulkheadSpec(adaptive=v)),
    ("delay", lambda v: Hedge("h", v)),
    *[(f, lambda v, f=f: Hedge("h", 0.1, **{f: v})) for f in _HEDGE],
    *[(f, lambda v, f=f: hedge(0.1, **{f: v})) for f in _HEDGE],
    ("delay", lambda v: HedgeSpec(delay=v)),
    *[(f, lambda v, f=f: HedgeSpec(delay=0.1, **{f: v})) for f in _HEDGE[:-1]],
    ("latency", lambda v: HedgeCore(delay=0.1).record(v)),
    ("hedge", lambda v: ServiceSpec(name="s", factory=Echo, hedge=v)),
]


def _outcome(build: Callable[[Any], Any], value: Any) -> Exception | None:
    """The exception ``build(value)`` raised, or None."""
    try:
        build(value)
    except Exception as exc:  # inspected by the caller
        return exc
    return None


def _record_call(value: Any) -> None:
    tracker = HealthTracker()
    tracker.register_service("s", lambda: True)
    tracker.record_call("s", value)


@settings(max_examples=300)
@given(case=st.sampled_from(CASES), value=values)
@example(case=("timeout", lambda v: BreakerSpec(timeout=v)), value=10**400)
@example(case=("rate", lambda v: Fault(latency=1.0, rate=v)), value=10**400)
@example(case=("within", lambda v: SupervisorSpec(name="r", within=v)), value=10**4000)
@example(case=("max_delay", lambda v: RetrySpec(max_delay=v)), value=math.inf)
def test_any_value_is_accepted_or_refused_naming_the_parameter(
    case: tuple[str, Callable[[Any], Any]], value: Any
) -> None:
    """The only errors are ConfigError and TypeError, and their message names the parameter."""
    name, build = case
    error = _outcome(build, value)
    if error is not None:
        assert isinstance(error, ConfigError | TypeError), (name, repr(error))
        assert f"`{name}" in str(error), (name, str(error))
        assert len(str(error)) < 600


@settings(max_examples=100)
@given(value=values)
def test_record_call_latency(value: Any) -> None:
    """``record_call``'s latency is a number >= 0, else ValueError naming it (its contract)."""
    error = _outcome(_record_call, value)
    if error is not None:
        assert isinstance(error, ValueError)
        assert "`latency`" in str(error)


@pytest.mark.parametrize(
    "value", [10**400, -(10**400), math.inf, math.nan, 2**1024, 1e308 * 10, True, "1"]
)
@pytest.mark.parametrize("field", ["timeout", "health_interval"])
def test_a_bad_service_duration_through_data_names_the_field(field: str, value: Any) -> None:
    """Through ``load_tree`` the path ends at the field itself, not only at the child."""
    data = {"name": "app", "children": [{"name": "s", "factory": _factory(), field: value}]}
    with pytest.raises(ConfigError, match=rf"^children\[0\]\.{field}: "):
        load_tree(data)


def _factory() -> str:
    return f"{__name__}:Echo"


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ("breaker", "timeout"),
        ("retry", "initial_delay"),
        ("retry", "backoff_factor"),
        ("throttle", "period"),
        ("fallback", "cache_ttl"),
    ],
)
def test_a_huge_integer_in_a_rule_table_names_the_path(table: str, field: str) -> None:
    """``children[0].breaker.timeout``: the whole path to the field, and no OverflowError."""
    rule: dict[str, Any] = {field: 10**400}
    if table == "throttle":
        rule["max_calls"] = 1
    data = {"name": "app", "children": [{"name": "s", "factory": _factory(), table: rule}]}
    with pytest.raises(ConfigError) as info:
        load_tree(data)
    assert str(info.value) == (
        f"children[0].{table}.{field}: `{field}` must be a number "
        f"{'>= 1' if field == 'backoff_factor' else '>= 0' if field == 'initial_delay' else '> 0'}"
        " small enough to be a float (got <an integer of about 401 digits>)"
    )


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * 5000 + "]" * 5000,
        "x = " + "{a = " * 5000 + "1" + "}" * 5000,
    ],
)
def test_deeply_nested_toml_is_a_config_error_naming_the_file(tmp_path: Path, text: str) -> None:
    """tomllib's RecursionError becomes a ConfigError that names the file."""
    path = tmp_path / "deep.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_tree_file(path)
    assert str(info.value) == f"{path}: not valid TOML: nested too deeply"


def test_a_tree_nested_too_deeply_to_load_is_a_config_error() -> None:
    """Thousands of nested supervisors in data: a ConfigError, not a RecursionError."""
    data: dict[str, Any] = {"name": "root"}
    node = data
    for index in range(3000):
        child: dict[str, Any] = {"name": f"s{index}", "children": []}
        node["children"] = [child]
        node = child
    with pytest.raises(ConfigError, match=r"^the tree is nested too deeply to load"):
        load_tree(data)


@pytest.mark.parametrize(
    "build",
    [
        lambda: retry(max_delay=math.inf, jitter=False),
        lambda: ExponentialBackoff(max_delay=math.inf, jitter=False),
        lambda: RetrySpec(max_delay=math.inf),
        lambda: RestartBackoff(max_delay=math.inf),
    ],
)
def test_max_delay_accepts_inf_as_no_cap(build: Callable[[], Any]) -> None:
    """``max_delay=math.inf`` (as tenacity users write it) means no cap; NaN stays refused."""
    assert build() is not None


def test_an_uncapped_delay_grows_without_a_cap() -> None:
    """With no cap the formula alone decides: 1, 2, 4, ... 2**(n-1) seconds."""
    policy = ExponentialBackoff(initial_delay=1.0, max_delay=math.inf, factor=2.0, jitter=False)
    assert [policy.get_delay(n) for n in (1, 2, 3, 31)] == [1.0, 2.0, 4.0, 2.0**30]
    assert policy.get_delay(5000) == math.inf  # beyond the float range: as long as it gets


@pytest.mark.parametrize("value", [math.nan, -math.inf])
def test_nan_and_minus_inf_are_refused_for_max_delay(value: float) -> None:
    """Only +inf has a meaning (no cap)."""
    with pytest.raises(ConfigError, match="`max_delay` must be a number >= 0 \\(inf: no limit\\)"):
        retry(max_delay=value)


def test_max_delay_inf_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``RETRY_MAX_DELAY=inf`` is read as no cap."""
    monkeypatch.setenv("RETRY_MAX_DELAY", "inf")
    assert ExponentialBackoff().max_delay == math.inf


def test_huge_integers_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment value of 5,000 digits is a ConfigError naming the variable."""
    monkeypatch.setenv("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "9" * 5000)
    with pytest.raises(ConfigError, match="environment variable CIRCUIT_BREAKER_FAILURE_THRE"):
        CircuitBreaker("b")


def test_a_hostile_snapshot_still_renders() -> None:
    """Odd but valid numbers in a snapshot (inf, NaN, huge counts) never break the view."""
    service = ServiceSnapshot(
        path="app/db",
        health_score=math.nan,
        calls_per_second=math.inf,
        latency=LatencySnapshot(p50=math.inf, p99=-1.0),
        error_rate=math.nan,
        refusals={"circuit_open": 10**4000, "other": 10**4000},
        retries=10**4000,
        fallbacks={"default": -(10**100)},
    )
    root = NodeSnapshot(path="app", name="app", kind="supervisor", state="running", restarts=-5)
    snapshot = SystemSnapshot(at=math.nan, name="app", tree=root, services=(service,))
    for width in (80, 140):
        console = Console(file=io.StringIO(), width=width)
        console.print(render(snapshot, width=width))
        assert "app" in console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "build"), CASES[::3])
def test_an_integer_too_long_to_print_is_described(name: str, build: Callable[[Any], Any]) -> None:
    """``repr(10**5000)`` raises ValueError; the message describes the integer instead."""
    error = _outcome(build, 10**5000)
    if error is not None:
        assert isinstance(error, ConfigError | TypeError)
        assert f"`{name}" in str(error)
        assert "an integer of about 5001 digits" in str(error) or "got" not in str(error)
