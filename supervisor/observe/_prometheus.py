"""The Prometheus exporter: snapshots as metric families, with the optional
``prometheus-client`` library (``pip install trio-supervisor[prometheus]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._errors import shown
from ..rules._breaker import CircuitState
from ._snapshot import SystemSnapshot

if TYPE_CHECKING:
    pass


def _prometheus() -> Any:
    try:
        import prometheus_client.core  # noqa: PLC0415 - an optional dependency
    except ImportError as exc:
        raise ImportError(
            "Prometheus export needs the prometheus-client library: "
            "pip install 'trio-supervisor[prometheus]'"
        ) from exc
    return prometheus_client.core


def _families(snapshot: SystemSnapshot, namespace: str) -> list[Any]:
    core = _prometheus()
    gauge, counter = core.GaugeMetricFamily, core.CounterMetricFamily
    n = namespace
    svc = ["service"]

    def g(name: str, doc: str, labels: list[str] = svc) -> Any:
        return gauge(f"{n}_service_{name}", doc, labels=labels)

    def c(name: str, doc: str, labels: list[str] = svc) -> Any:
        return counter(f"{n}_service_{name}", doc, labels=labels)

    fam: dict[str, Any] = {
        "successes": c("successes", "Requests answered by the service."),
        "failures": c("failures", "Failed attempts, by exception type.", [*svc, "error_type"]),
        "refusals": c("refusals", "Requests refused by a rule.", [*svc, "rule"]),
        "fallbacks": c("fallbacks", "Requests answered by the fallback.", [*svc, "kind"]),
        "retries": c("retries", "Retry attempts scheduled."),
        "retry_delay": c("retry_delay_seconds", "Seconds of retry delay added."),
        "after_retry": c("succeeded_after_retry", "Requests answered on a later attempt."),
        "exhausted": c("retries_exhausted", "Requests whose last attempt failed after a retry."),
        "restarts": c("restarts", "Restarts of the service actor."),
        "transitions": c("breaker_transitions", "Breaker state changes."),
        "in_state": c("breaker_state_seconds", "Seconds in each breaker state.", [*svc, "state"]),
        "breaker": g("breaker_state", "1 for the breaker's current state.", [*svc, "state"]),
        "in_flight": g("in_flight", "Requests running now."),
        "queued": g("queued", "Requests queued now."),
        "high_water": g("queued_high_water", "Most requests queued at once."),
        "rate": g("calls_per_second", "Requests per second over the recent window."),
        "error_rate": g("error_rate", "Failed attempts / attempts over the recent window."),
        "latency": g("latency_seconds", "Latency percentiles.", [*svc, "quantile"]),
        "healthy": g("healthy", "1 when the service is healthy."),
        "score": g("health_score", "Health score, 0 to 100."),
        "availability": g("availability_percent", "Percent of outcomes that succeeded."),
        "checks": c("health_checks", "Health checks run."),
        "hedges": c("hedges", "Hedged attempts launched."),
        "hedge_wins": c("hedge_wins", "Requests answered by a hedge."),
        "limit": g("concurrency_limit", "The adaptive concurrency limit now."),
    }
    for s in snapshot.services:
        p = [s.path]
        fam["successes"].add_metric(p, s.successes)
        for name, count in sorted(s.errors_by_type.items()):
            fam["failures"].add_metric([*p, name], count)
        for name, count in sorted(s.refusals.items()):
            fam["refusals"].add_metric([*p, name], count)
        for name, count in sorted(s.fallbacks.items()):
            fam["fallbacks"].add_metric([*p, name], count)
        fam["retries"].add_metric(p, s.retries)
        fam["retry_delay"].add_metric(p, s.retry_delay_total)
        fam["after_retry"].add_metric(p, s.succeeded_after_retry)
        fam["exhausted"].add_metric(p, s.retries_exhausted)
        fam["restarts"].add_metric(p, s.restarts)
        fam["transitions"].add_metric(p, s.breaker_transitions)
        for state, seconds in sorted(s.time_in_state.items()):
            fam["in_state"].add_metric([*p, state], seconds)
        if s.breaker is not None:
            for member in CircuitState:
                fam["breaker"].add_metric([*p, member.value], float(member.value == s.breaker))
        fam["in_flight"].add_metric(p, s.in_flight)
        fam["queued"].add_metric(p, s.queued)
        fam["high_water"].add_metric(p, s.queued_high_water)
        fam["rate"].add_metric(p, s.calls_per_second)
        fam["error_rate"].add_metric(p, s.error_rate)
        for quantile, ms in (
            ("0.5", s.latency.p50),
            ("0.9", s.latency.p90),
            ("0.99", s.latency.p99),
        ):
            fam["latency"].add_metric([*p, quantile], ms / 1000.0)
        fam["healthy"].add_metric(p, float(s.healthy))
        fam["score"].add_metric(p, s.health_score)
        fam["availability"].add_metric(p, s.availability)
        fam["checks"].add_metric(p, s.health_checks)
        fam["hedges"].add_metric(p, s.hedges)
        fam["hedge_wins"].add_metric(p, s.hedge_wins)
        if s.concurrency_limit is not None:
            fam["limit"].add_metric(p, s.concurrency_limit)
    restarts = counter(f"{n}_node_restarts", "Restarts of each tree node.", labels=["path", "kind"])
    state = gauge(f"{n}_node_state", "1 for each node's current state.", labels=["path", "state"])
    budget = gauge(
        f"{n}_supervisor_restart_budget", "Restarts a supervisor may still make.", labels=["path"]
    )
    stack = [snapshot.tree]
    while stack:
        node = stack.pop()
        restarts.add_metric([node.path, node.kind], node.restarts)
        state.add_metric([node.path, node.state], 1.0)
        if node.restart_budget is not None:
            budget.add_metric([node.path], node.restart_budget)
        stack.extend(reversed(node.children))
    return [*fam.values(), restarts, state, budget]


class PrometheusCollector:
    """A ``prometheus-client`` collector: each scrape calls ``source()`` for a fresh
    :class:`SystemSnapshot` (e.g. ``tree.snapshot``) and exposes it as metric families named
    ``<namespace>_service_*`` (label ``service``: the path) and ``<namespace>_node_*``.

    Register it with ``prometheus_client.REGISTRY.register(PrometheusCollector(tree.snapshot))``.
    ``source`` runs in the scraping thread: with a tree, call :func:`prometheus_text` from a trio
    task instead, or hand over snapshots taken in trio.

    Raises:
        ImportError: ``prometheus-client`` is not installed (at creation).
    """

    def __init__(
        self, source: Callable[[], SystemSnapshot], *, namespace: str = "supervisor"
    ) -> None:
        _prometheus()
        if not callable(source):
            raise TypeError(f"`source` must be callable (got {shown(source)})")
        self.source = source
        self.namespace = namespace

    def __repr__(self) -> str:
        return f"<PrometheusCollector {self.namespace!r} from {self.source!r}>"

    def describe(self) -> list[Any]:
        """No fixed descriptions (the services are known only at scrape time)."""
        return []

    def collect(self) -> Iterable[Any]:
        """The metric families of a fresh snapshot."""
        return _families(self.source(), self.namespace)


def prometheus_text(snapshot: SystemSnapshot, *, namespace: str = "supervisor") -> str:
    """``snapshot`` in the Prometheus text exposition format (version 0.0.4).

    Raises:
        ImportError: ``prometheus-client`` is not installed.
    """
    _prometheus()
    from prometheus_client import CollectorRegistry, generate_latest  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    registry.register(PrometheusCollector(lambda: snapshot, namespace=namespace))
    text: bytes = generate_latest(registry)
    return text.decode("utf-8")
