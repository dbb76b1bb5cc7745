"""The example program runs and prints what it should."""

from __future__ import annotations

import pathlib
import subprocess
import sys

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "hello.py"


def test_hello_example_runs() -> None:
    """examples/hello.py greets, counts, and reports the stopped greeter."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=10, check=True
    )
    assert done.stdout.splitlines() == [
        "hello world (#1)",
        "hello trio (#1)",
        "hello world (#2)",
        "<ActorRef 'greeter' running, 0 queued>",
        "watcher: greeter stopped (reason: None)",
    ]
    assert done.stderr == ""
