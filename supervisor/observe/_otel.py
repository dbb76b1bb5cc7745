"""The OpenTelemetry exporter: a tree's metrics and a span per guarded call, with the optional
``opentelemetry-api`` library (``pip install trio-supervisor[otel]``), imported only when an
exporter is made.

It keeps no count of its own. The counters and gauges are observable instruments read from the
tree's snapshot (the same numbers :class:`~supervisor.Metrics` keeps and the Prometheus exporter
reads); only the latency histogram is fed from the events (:class:`RequestCompleted`), because an
OpenTelemetry histogram aggregates the measurements it is given. The span of a call is opened by
the request path's hook (:attr:`EventBus.call_tracer`), and what happens during the call (failed
attempts, retries, refusals, fallbacks, breaker changes) is read from the events the call
publishes, in the caller's task, while its span is open.

Names and attributes (documented in docs/monitoring.md) follow OpenTelemetry's naming rules:
dotted lower-case names under ``supervisor.``, units in ``unit`` (``s``, ``{call}``), counters not
suffixed ``_total``, ``error.type`` for the exception's class name.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs
import trio

from .._config import DURATION
from ..rules._breaker import CircuitState, CircuitStateChange
from ._events import (
    FallbackUsed,
    RequestCompleted,
    RequestFailed,
    RequestRefused,
    RetryScheduled,
)
from ._snapshot import ServiceSnapshot, SystemSnapshot

if TYPE_CHECKING:
    from ._bus import EventBus

__all__ = ["OpenTelemetryExporter", "OpenTelemetryStatistics"]

SCOPE: Final = "trio-supervisor"
"""The instrumentation scope of the meter and the tracer."""

# Attribute keys.
PATH: Final = "supervisor.service.path"
OUTCOME: Final = "supervisor.call.outcome"
DEADLINE: Final = "supervisor.call.deadline"
TIMEOUT: Final = "supervisor.call.timeout"
ATTEMPTS: Final = "supervisor.call.attempts"
ATTEMPT: Final = "supervisor.attempt"
LATENCY: Final = "supervisor.latency"
DELAY: Final = "supervisor.retry.delay"
RULE: Final = "supervisor.refusal.rule"
RETRY_AFTER: Final = "supervisor.refusal.retry_after"
KIND: Final = "supervisor.fallback.kind"
STATE: Final = "supervisor.breaker.state"
ERROR_TYPE: Final = "error.type"

# Latency buckets in seconds (OpenTelemetry's advice for request durations).
_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def _opentelemetry() -> tuple[Any, Any, Any]:
    try:
        from opentelemetry import context, metrics, trace  # noqa: PLC0415 - an optional extra
    except ImportError as exc:
        raise ImportError(
            "OpenTelemetry export needs the opentelemetry-api library: "
            "pip install 'trio-supervisor[otel]'"
        ) from exc
    return context, metrics, trace


class ExportedTree(Protocol):
    """What :class:`OpenTelemetryExporter` needs of a running tree (:class:`~supervisor.Tree`
    satisfies it)."""

    @property
    def events(self) -> EventBus[Any]: ...

    def snapshot(self) -> SystemSnapshot: ...

    def start_background(self, fn: Callable[[], Awaitable[None]], *, name: str) -> None: ...


@attrs.frozen(kw_only=True)
class OpenTelemetryStatistics:
    """A snapshot of an :class:`OpenTelemetryExporter`."""

    attached: bool
    """Whether it is attached to a tree."""
    spans: int
    """Spans of guarded calls ended."""
    span_events: int
    """Events added to those spans."""
    durations: int
    """Latencies recorded in the ``supervisor.call.duration`` histogram."""


@attrs.define(eq=False)
class _Call:
    """The span of the call running in this task, and what its events said."""

    span: Any
    path: str
    attempts: int = 0
    answered: bool = False
    refused: str | None = None
    fallback: str | None = None


_CURRENT: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "supervisor_otel_call", default=None
)


def _same_run(token: trio.lowlevel.TrioToken | None) -> bool:
    if token is None:
        return False
    try:
        return trio.lowlevel.current_trio_token() is token
    except RuntimeError:  # another thread, or no trio run
        return False


class OpenTelemetryExporter:
    """Exports a supervision tree's metrics and a span per guarded call to OpenTelemetry.

    Args:
        meter_provider: where the instruments are made (default: the global one,
            ``opentelemetry.metrics.get_meter_provider()``).
        tracer_provider: where the spans go (default: the global one).
        metrics: export the metrics (default ``True``).
        spans: open a span around every call to a guarded service (default ``True``).
        refresh_interval: seconds between the snapshots kept for collections made from another
            thread (a ``PeriodicExportingMetricReader``'s); ``None``: none are kept, and only
            collections made in the tree's trio thread see values. A collection made in the
            tree's trio thread always reads a fresh snapshot.

    Raises:
        ImportError: ``opentelemetry-api`` is not installed.
        ConfigError: ``refresh_interval`` is not a number > 0 or ``None``.
        TypeError: ``metrics`` or ``spans`` is not a bool.

    Use it inside ``run_tree``: ``exporter.attach(tree)``; :meth:`detach` (or the end of the
    tree) stops it. Counters and gauges are read from the tree's snapshot when the SDK collects
    them; nothing is counted twice. The ``supervisor.call.duration`` histogram is recorded from
    each :class:`~supervisor.RequestCompleted` event.
    """

    def __init__(
        self,
        *,
        meter_provider: Any = None,
        tracer_provider: Any = None,
        metrics: bool = True,
        spans: bool = True,
        refresh_interval: float | None = 1.0,
    ) -> None:
        self._context, otel_metrics, otel_trace = _opentelemetry()
        for name, value in (("metrics", metrics), ("spans", spans)):
            if not isinstance(value, bool):
                raise TypeError(f"`{name}` must be true or false (got {value!r})")
        self.refresh_interval = (
            None
            if refresh_interval is None
            else DURATION.check("refresh_interval", refresh_interval)
        )
        self.metrics = metrics
        self.spans = spans
        self._trace = otel_trace
        self._internal = otel_trace.SpanKind.INTERNAL
        self._in_context = otel_trace.set_span_in_context
        self._tree: ExportedTree | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._last: SystemSnapshot | None = None
        self._refresher: trio.CancelScope | None = None
        self._spans = 0
        self._span_events = 0
        self._durations = 0
        self._tracer: Any = None
        self._duration: Any = None
        if spans:
            provider = tracer_provider or otel_trace.get_tracer_provider()
            self._tracer = provider.get_tracer(SCOPE)
        if metrics:
            provider = meter_provider or otel_metrics.get_meter_provider()
            self._make_instruments(provider.get_meter(SCOPE), otel_metrics.Observation)

    def __repr__(self) -> str:
        where = "detached" if self._tree is None else "attached"
        return f"<OpenTelemetryExporter {where}, {self._spans} spans, {self._durations} durations>"

    def statistics(self) -> OpenTelemetryStatistics:
        """Whether it is attached, and how many spans, span events and durations it exported."""
        return OpenTelemetryStatistics(
            attached=self._tree is not None,
            spans=self._spans,
            span_events=self._span_events,
            durations=self._durations,
        )

    # -- wiring ------------------------------------------------------------------------------

    def attach(self, tree: ExportedTree) -> None:
        """Export ``tree`` from now on. Call it from a task of the tree's trio run.

        Raises:
            RuntimeError: this exporter is already attached; another tracer wraps the calls of
                ``tree.events`` (one per bus); the tree runs without metrics (with
                ``metrics=True``); or no trio run is active.
        """
        if self._tree is not None:
            raise RuntimeError(f"{self!r} is already attached")
        bus = tree.events
        if self.spans and bus.call_tracer is not None:
            raise RuntimeError(f"the calls on {bus!r} are already traced by {bus.call_tracer!r}")
        token = trio.lowlevel.current_trio_token()
        if self.metrics:
            self._last = tree.snapshot()  # also fails early for a tree without metrics
        self._tree = tree
        self._token = token
        bus.add_listener(self._on_event)
        if self.spans:
            bus.call_tracer = self
        if self.metrics and self.refresh_interval is not None:
            tree.start_background(self._refresh, name="OpenTelemetry snapshots")

    def detach(self) -> None:
        """Stop exporting (idempotent): no more spans, durations nor observations."""
        tree = self._tree
        if tree is None:
            return
        bus = tree.events
        if bus.call_tracer is self:
            bus.call_tracer = None
        with contextlib.suppress(ValueError):  # already removed (it raised once)
            bus.remove_listener(self._on_event)
        if self._refresher is not None:
            self._refresher.cancel()
        self._tree = None
        self._token = None
        self._last = None

    async def _refresh(self) -> None:
        interval = self.refresh_interval
        with trio.CancelScope() as self._refresher:
            while self._tree is not None and interval is not None:
                await trio.sleep(interval)
                self._snapshot()

    # -- metrics -------------------------------------------------------------------------------

    def _snapshot(self) -> SystemSnapshot | None:
        # Fresh in the tree's trio thread; elsewhere the last one kept by _refresh.
        tree = self._tree
        if tree is not None and _same_run(self._token):
            self._last = tree.snapshot()
        return self._last

    def _services(self) -> tuple[ServiceSnapshot, ...]:
        snapshot = self._snapshot()
        return () if snapshot is None else snapshot.services

    def _make_instruments(self, meter: Any, observation: Any) -> None:
        def each(
            values: Callable[[ServiceSnapshot], Iterator[tuple[float, dict[str, str]]]],
        ) -> Callable[[Any], list[Any]]:
            def callback(options: Any) -> list[Any]:
                return [
                    observation(value, {PATH: service.path, **extra})
                    for service in self._services()
                    for value, extra in values(service)
                ]

            return callback

        def calls(s: ServiceSnapshot) -> Iterator[tuple[float, dict[str, str]]]:
            yield s.successes, {OUTCOME: "answered"}
            yield s.failures - s.retries, {OUTCOME: "failed"}
            yield sum(s.refusals.values()), {OUTCOME: "refused"}

        def by(key: str, field: str) -> Callable[[ServiceSnapshot], Iterator[Any]]:
            def values(s: ServiceSnapshot) -> Iterator[tuple[float, dict[str, str]]]:
                for name, count in sorted(getattr(s, field).items()):
                    yield count, {key: name}

            return values

        def plain(field: str) -> Callable[[ServiceSnapshot], Iterator[Any]]:
            def values(s: ServiceSnapshot) -> Iterator[tuple[float, dict[str, str]]]:
                yield getattr(s, field), {}

            return values

        def breaker(s: ServiceSnapshot) -> Iterator[tuple[float, dict[str, str]]]:
            if s.breaker is not None:
                for state in CircuitState:
                    yield float(state.value == s.breaker), {STATE: state.value}

        counter = meter.create_observable_counter
        gauge = meter.create_observable_gauge
        counter(
            "supervisor.service.calls",
            [each(calls)],
            unit="{call}",
            description="Calls that reached an outcome: answered, failed (last attempt), refused.",
        )
        counter(
            "supervisor.service.failures",
            [each(by(ERROR_TYPE, "errors_by_type"))],
            unit="{attempt}",
            description="Failed attempts, by exception type.",
        )
        counter(
            "supervisor.service.refusals",
            [each(by(RULE, "refusals"))],
            unit="{call}",
            description="Calls refused on the caller's side, by rule.",
        )
        counter(
            "supervisor.service.retries",
            [each(plain("retries"))],
            unit="{retry}",
            description="Retries scheduled.",
        )
        counter(
            "supervisor.service.fallbacks",
            [each(by(KIND, "fallbacks"))],
            unit="{call}",
            description="Calls answered by the fallback, by kind.",
        )
        counter(
            "supervisor.service.restarts",
            [each(plain("restarts"))],
            unit="{restart}",
            description="Restarts of the service actor.",
        )
        gauge(
            "supervisor.breaker.state",
            [each(breaker)],
            unit="1",
            description="1 for the breaker's current state, 0 for the others.",
        )
        gauge(
            "supervisor.service.mailbox.depth",
            [each(plain("queued"))],
            unit="{request}",
            description="Requests waiting in the service actor's mailbox.",
        )
        gauge(
            "supervisor.service.in_flight",
            [each(plain("in_flight"))],
            unit="{request}",
            description="Requests being handled by the service actor.",
        )
        gauge(
            "supervisor.service.health_score",
            [each(plain("health_score"))],
            unit="1",
            description="Health score, 0 to 100.",
        )
        self._duration = meter.create_histogram(
            "supervisor.call.duration",
            unit="s",
            description="Seconds from a call to its answer by the service, retries included.",
            explicit_bucket_boundaries_advisory=list(_BUCKETS),
        )

    # -- spans ---------------------------------------------------------------------------------

    async def trace(
        self, path: str, deadline: float, call: Callable[..., Awaitable[Any]], *args: Any
    ) -> Any:
        """The request path's hook: ``await call(*args)`` inside a span named ``call PATH``.

        Attributes: ``supervisor.service.path``; ``supervisor.call.deadline`` (trio time) and
        ``supervisor.call.timeout`` (seconds left at the start) when the call has a deadline;
        at the end ``supervisor.call.outcome`` (``answered``, ``fallback``, ``refused``,
        ``failed``, ``cancelled``) and ``supervisor.call.attempts``, plus ``error.type`` and an
        error status when an exception leaves the call (recorded as an exception event). The
        span is the current span of the call (a parent for spans opened inside it in this
        task). Exceptions, ``Cancelled`` included, propagate unchanged.
        """
        tracer = self._tracer
        if tracer is None or self._tree is None:
            return await call(*args)
        attributes: dict[str, Any] = {PATH: path}
        if deadline != math.inf:
            attributes[DEADLINE] = deadline
            attributes[TIMEOUT] = max(0.0, deadline - trio.current_time())
        span = tracer.start_span(f"call {path}", kind=self._internal, attributes=attributes)
        state = _Call(span, path)
        attached = self._context.attach(self._in_context(span))
        current = _CURRENT.set(state)
        outcome = "cancelled"
        try:
            result = await call(*args)
        except Exception as exc:
            outcome = "refused" if state.refused is not None else "failed"
            span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
            span.record_exception(exc)
            trace = self._trace
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__qualname__))
            raise
        else:
            outcome = "fallback" if state.fallback is not None else "answered"
            return result
        finally:
            _CURRENT.reset(current)
            self._context.detach(attached)
            span.set_attributes({OUTCOME: outcome, ATTEMPTS: state.attempts})
            span.end()
            self._spans += 1

    def _on_event(self, event: object) -> None:
        # The bus listener: durations for every answered call, span events for the call (if
        # any) whose task publishes the event.
        kind = type(event)
        if kind is RequestCompleted and self._duration is not None:
            self._duration.record(event.latency, {PATH: event.path})  # type: ignore[attr-defined]
            self._durations += 1
        state = _CURRENT.get()
        if state is None:
            return
        path = event.name if kind is CircuitStateChange else getattr(event, "path", None)  # type: ignore[attr-defined]
        if path != state.path:
            return
        name, attributes = _span_event(event, state)
        if name:
            state.span.add_event(name, attributes)
            self._span_events += 1


def _span_event(event: object, state: _Call) -> tuple[str, dict[str, Any]]:
    if isinstance(event, RequestCompleted):
        state.attempts = event.attempts
        state.answered = True
        return "supervisor.attempt", {ATTEMPT: event.attempts, OUTCOME: "answered"}
    if isinstance(event, RequestFailed):
        state.attempts = event.attempt
        return "supervisor.attempt", {
            ATTEMPT: event.attempt,
            OUTCOME: "failed",
            LATENCY: event.latency,
            ERROR_TYPE: type(event.error).__qualname__,
        }
    if isinstance(event, RetryScheduled):
        return "supervisor.retry", {ATTEMPT: event.attempt, DELAY: event.delay}
    if isinstance(event, RequestRefused):
        state.refused = event.refusal.value
        return "supervisor.refusal", {RULE: event.refusal.value, RETRY_AFTER: event.retry_after}
    if isinstance(event, FallbackUsed):
        state.fallback = event.kind
        return "supervisor.fallback", {KIND: event.kind, ERROR_TYPE: type(event.cause).__qualname__}
    if isinstance(event, CircuitStateChange):
        return "supervisor.breaker.state_change", {
            "supervisor.breaker.old_state": event.old_state.value,
            STATE: event.new_state.value,
            "supervisor.breaker.reason": event.reason.value,
        }
    return "", {}
