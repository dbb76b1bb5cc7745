"""The command line: ``python -m supervisor monitor ADDRESS`` and ``python -m supervisor demo``.

``monitor ADDRESS`` attaches to a program serving snapshots (see :func:`supervisor.console._attach.
serve_snapshots`) and shows them live, refreshed every ``--interval`` seconds; a program that goes
away is shown as "disconnected (retrying)" and picked up again when it returns. ``--once`` prints
one snapshot as text and ``--json`` as one line of JSON, then exit 0. ``--watch SERVICE`` shows
that one service instead: its last minute as sparklines, its breaker's transitions and its events.

Exit codes: 0 success; 2 a bad address or option, or (with ``--once``/``--json``) nothing
listening, no answer in time, or an answer that is not a snapshot (one line on stderr); 130 the
live view was interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Final

import trio
from rich.console import Console

from .._config import seconds_argument
from ..console._attach import Address, AttachError, fetch_snapshot, parse_address
from ..console._history import ServiceHistory
from ..console._monitor import Monitor
from ..console._render import render
from ..console._watch import render_watch
from ..observe._snapshot import SystemSnapshot, snapshot_to_json

__all__ = ["main"]

_PROG: Final = "python -m supervisor"
_USAGE_ERROR: Final = 2
_INTERRUPTED: Final = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description="Tools for trio-supervisor programs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    watch = commands.add_parser(
        "monitor",
        help="show the snapshots a running program serves",
        description="Attach to a program serving snapshots and show them.",
    )
    watch.add_argument(
        "address",
        metavar="ADDRESS",
        help="unix:/path/to/sock, a path containing '/', HOST:PORT or PORT (127.0.0.1)",
    )
    mode = watch.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="print one snapshot as text and exit")
    mode.add_argument("--json", action="store_true", help="print one snapshot as JSON and exit")
    watch.add_argument(
        "--interval",
        type=seconds_argument,
        default=1.0,
        help="seconds between refreshes (default 1)",
    )
    watch.add_argument(
        "--timeout",
        type=seconds_argument,
        default=5.0,
        help="seconds to wait for an answer (default 5)",
    )
    watch.add_argument(
        "--watch",
        metavar="SERVICE",
        default=None,
        help="show one service (its path or name): its last minute, breaker changes and events",
    )
    commands.add_parser(
        "demo",
        help="run the demonstration program (arguments are passed through)",
        add_help=False,
    )
    return parser


def _fail(message: str) -> int:
    print(f"{_PROG} monitor: {message}", file=sys.stderr)
    return _USAGE_ERROR


def _monitor(options: argparse.Namespace) -> int:
    try:
        address = parse_address(options.address)
    except AttachError as exc:
        return _fail(str(exc))
    if options.watch is not None and (options.json or not options.watch):
        return _fail("--watch needs a service name and shows a view (not with --json)")
    if options.once or options.json:
        try:
            snapshot = trio.run(fetch_snapshot, address, options.timeout)
        except AttachError as exc:
            return _fail(str(exc))
        if options.watch is not None:
            history = ServiceHistory(options.watch)
            if not history.record(snapshot):
                return _fail(str(history.problem))
            console = Console()
            console.print(render_watch(snapshot, history, width=console.width))
            return 0
        _print_once(snapshot, as_json=options.json)
        return 0
    try:
        trio.run(_live, address, options.interval, options.timeout, options.watch)
    except KeyboardInterrupt:  # the way to quit the live view; the process ends here
        return _INTERRUPTED
    return 0


def _print_once(snapshot: SystemSnapshot, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(snapshot_to_json(snapshot) + "\n")
        sys.stdout.flush()
        return
    console = Console()
    console.print(render(snapshot, width=console.width))


async def _live(address: Address, interval: float, timeout: float, watch: str | None) -> None:  # noqa: ASYNC109 - per fetch, passed on to fetch_snapshot
    async def fetch() -> SystemSnapshot:
        return await fetch_snapshot(address, timeout)

    await Monitor(fetch, interval=interval, watch=watch).run()


def _demo(argv: Sequence[str]) -> int:
    try:
        demo = importlib.import_module("supervisor.app._demo")
    except ModuleNotFoundError as exc:
        if exc.name != "supervisor.app._demo":
            raise
        print(f"{_PROG} demo: the demo is not available in this build", file=sys.stderr)
        return _USAGE_ERROR
    code: int = demo.main(list(argv))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    ``demo ARGS...`` hands ``ARGS`` unparsed to ``supervisor.app._demo.main``, imported only then.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "demo":
        return _demo(args[1:])
    options = _parser().parse_args(args)
    return _monitor(options)


if __name__ == "__main__":
    sys.exit(main())
