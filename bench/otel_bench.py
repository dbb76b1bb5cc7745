"""The request-path cost of the OpenTelemetry exporter: a guarded call with the exporter attached
against the same call on an identical tree without it, interleaved in the same run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

import supervisor
from supervisor.tree._run import run_tree

from ._harness import Figure, Report, paired_async
from .tree_bench import _plain_spec

SECTION = "otel"


def _providers(kind: str) -> tuple[Any, Any]:
    """(meter provider, tracer provider): the API's no-op ones, or the SDK's with an in-memory
    metric reader (collected on demand) and spans batched to an exporter that drops them."""
    if kind == "noop":
        from opentelemetry import metrics, trace

        return metrics.NoOpMeterProvider(), trace.NoOpTracerProvider()
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracers = TracerProvider()
    tracers.add_span_processor(BatchSpanProcessor(Drop()))
    return MeterProvider(metric_readers=[InMemoryMetricReader()]), tracers


async def _pair(
    report: Report, *, name: str, ops: int, kind: str, spans: bool, metrics: bool
) -> None:
    meters, tracers = _providers(kind)
    exporter = supervisor.OpenTelemetryExporter(
        meter_provider=meters, tracer_provider=tracers, spans=spans, metrics=metrics
    )
    async with run_tree(_plain_spec()) as plain, run_tree(_plain_spec()) as traced:
        exporter.attach(traced)

        def calls(tree: supervisor.Tree) -> Callable[[int], Awaitable[None]]:
            service = tree.service("guarded")

            async def loop(n: int) -> None:
                for i in range(n):
                    await service.call(i)

            return loop

        on_us, off_us = await paired_async(calls(traced), calls(plain), ops=ops, rounds=15)
        exporter.detach()
    if kind == "sdk":
        tracers.shutdown()
    report.add(
        Figure(
            section=SECTION,
            name=name,
            ours=on_us,
            baseline=off_us,
            unit="us",
            baseline_name="exporter off",
        )
    )


async def run(report: Report, *, quick: bool) -> None:
    """Add this module's figures to ``report`` (none without the OpenTelemetry SDK)."""
    try:
        import opentelemetry.sdk  # noqa: F401
    except ImportError:
        print("otel: skipped (pip install opentelemetry-sdk)")
        return
    ops = 2_000 if quick else 20_000
    await _pair(
        report,
        name="guarded call, spans + metrics (SDK)",
        ops=ops,
        kind="sdk",
        spans=True,
        metrics=True,
    )
    await _pair(
        report,
        name="guarded call, metrics only (SDK)",
        ops=ops,
        kind="sdk",
        spans=False,
        metrics=True,
    )
    await _pair(
        report,
        name="guarded call, spans + metrics (API no-op)",
        ops=ops,
        kind="noop",
        spans=True,
        metrics=True,
    )
    await trio.lowlevel.checkpoint()
