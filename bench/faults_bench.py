"""What fault injection costs a request: off (no faults configured), armed but quiet (faults
behind a flag that is off), on (a rate drawn on every request), and firing (a replaced result on
every request), each against the same run's guarded call without faults; and the decorator
against the bare function."""

from __future__ import annotations

from typing import Any

import trio

import actors
import supervisor
from supervisor import Fault, FaultSpec
from supervisor.tree._rule_specs import BreakerSpec, RetrySpec
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ServiceSpec, SupervisorSpec

from ._baselines import RawServer
from ._harness import Figure, Report, paired_async

SECTION = "faults"
_NEVER = "bench-flag-never-on"


class _Echo(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        return message


def _service(name: str, *faults: Fault) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        factory=_Echo,
        breaker=BreakerSpec(failure_threshold=5, timeout=30.0),
        retry=RetrySpec(max_attempts=3),
        faults=FaultSpec(inject=faults, seed=1) if faults else None,
    )


def _spec() -> SupervisorSpec:
    return SupervisorSpec(
        name="bench",
        children=(
            _service("plain"),
            _service("twin"),
            _service(
                "armed",
                Fault(error=ConnectionError, flag=_NEVER),
                Fault(latency=1.0, flag=_NEVER),
            ),
            _service("drawing", Fault(error=ConnectionError, rate=1e-12)),
            _service("firing", Fault(result="stub")),
        ),
    )


def _calls(ref: Any) -> Any:
    async def loop(n: int) -> None:
        for i in range(n):
            await ref.call(i)

    return loop


async def _bare() -> int:
    return 1


def _fn_loop(fn: Any) -> Any:
    async def loop(n: int) -> None:
        for _ in range(n):
            await fn()

    return loop


async def run(report: Report, *, quick: bool) -> None:
    """Add this module's figures to ``report``."""
    ops = 2_000 if quick else 20_000
    raw = RawServer()
    figures: list[tuple[str, float, float, str]] = []
    async with trio.open_nursery() as nursery, run_tree(_spec()) as tree:
        nursery.start_soon(raw.serve)
        plain = _calls(tree.service("plain"))
        off_us, raw_us = await paired_async(plain, raw.loop, ops=ops)
        figures.append(("guarded call, faults off (none set)", off_us, raw_us, "raw round trip"))
        twin_us, plain_us = await paired_async(_calls(tree.service("twin")), plain, ops=ops)
        figures.append(("same, a twin service (the noise floor)", twin_us, plain_us, "faults off"))
        for name, label in (
            ("armed", "faults set, their flag off"),
            ("drawing", "faults on, a rate drawn per call"),
            ("firing", "faults on, result replaced every call"),
        ):
            ours, base = await paired_async(_calls(tree.service(name)), plain, ops=ops)
            figures.append((label, ours, base, "faults off"))
        raw.close()

    flagged = supervisor.inject_faults(Fault(error=ConnectionError, flag=_NEVER))(_bare)
    drawing = supervisor.inject_faults(Fault(error=ConnectionError, rate=1e-12), seed=1)(_bare)
    for label, fn in (
        ("@inject_faults, flag off", flagged),
        ("@inject_faults, a rate drawn per call", drawing),
    ):
        ours, base = await paired_async(_fn_loop(fn), _fn_loop(_bare), ops=ops * 5)
        figures.append((label, ours, base, "bare async call"))

    for name, ours, base, baseline_name in figures:
        report.add(
            Figure(
                section=SECTION,
                name=name,
                ours=ours,
                baseline=base,
                unit="us",
                baseline_name=baseline_name,
            )
        )
