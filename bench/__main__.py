"""``python -m bench [--quick] [--only SECTION]``: print every figure beside its baseline.

``python -m bench million [--count N]``: the opt-in measurement of a million idle actors in one
process (minutes; RSS, spawn and teardown per actor, against raw trio tasks).
"""

from __future__ import annotations

import argparse
import functools
import platform
import sys

import trio
from rich.console import Console

from . import (
    actors_bench,
    dynamic_bench,
    faults_bench,
    fleet_bench,
    million,
    otel_bench,
    rules_bench,
    rules_more_bench,
    tree_bench,
)
from ._harness import Report

SECTIONS = {
    "actors": actors_bench.run,
    "rules": rules_bench.run,
    "rules+": rules_more_bench.run,
    "tree": tree_bench.run,
    "faults": faults_bench.run,
    "otel": otel_bench.run,
    "dynamic": dynamic_bench.run,
    "fleet": fleet_bench.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append", help="run one section")
    parser.add_argument(
        "what",
        nargs="?",
        choices=["million"],
        help="million: the opt-in million-idle-actor measurement instead of the sections",
    )
    parser.add_argument(
        "--count", type=int, default=1_000_000, help="actors for `million` (default 1,000,000)"
    )
    args = parser.parse_args(argv)
    console = Console(width=150)  # wide enough for one line per figure, also when piped
    console.print(
        f"Python {platform.python_version()} on {platform.machine()} "
        f"({platform.processor() or 'unknown cpu'}), trio {trio.__version__}"
    )
    report = Report()
    if args.what == "million":
        million.run(report, count=args.count)
        report.render(console)
        return 0
    for name in args.only or list(SECTIONS):
        trio.run(functools.partial(SECTIONS[name], report, quick=args.quick))
    report.render(console)
    # A missed target is shown in the table; it does not fail the command (machines differ).
    return 0


if __name__ == "__main__":
    sys.exit(main())
