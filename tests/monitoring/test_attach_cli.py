"""`python -m supervisor monitor` against a program serving snapshots in another process."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import supervisor
from supervisor.app._cli import main
from supervisor.observe._snapshot import snapshot_from_json

EXPECTED = Path(__file__).parent / "expected"
ROOT = Path(supervisor.__file__).resolve().parent.parent

SERVER = """
import sys
import trio
from supervisor.console._attach import serve_snapshots
from supervisor.observe._snapshot import snapshot_from_json

snapshot = snapshot_from_json(open(sys.argv[2]).read())

async def main():
    async with serve_snapshots(lambda: snapshot, sys.argv[1]):
        await trio.sleep_forever()

trio.run(main)
"""

# Waits below poll a real subprocess; each is bounded (at most 200 x 0.05 s).
POLLS = 200
POLL = 0.05


def env(columns: int = 80) -> dict[str, str]:
    """The environment for a child process: this project importable, no forced colours."""
    result = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "TTY_COMPATIBLE"}}
    result["COLUMNS"] = str(columns)
    result["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return result


@pytest.fixture
def sock_dir() -> Iterator[str]:
    """A short private directory for socket files."""
    path = tempfile.mkdtemp(prefix="sv-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def wait_connectable(path: str, server: subprocess.Popen[bytes]) -> None:
    """Wait (bounded) until something accepts connections at the Unix socket `path`."""
    for _ in range(POLLS):
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}")
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(path)
        except OSError:
            time.sleep(POLL)
        else:
            return
        finally:
            probe.close()
    pytest.fail(f"nothing listened at {path} within {POLLS * POLL}s")


def start_server(directory: str) -> tuple[str, subprocess.Popen[bytes]]:
    """Start a program in another process serving the sample snapshot at a Unix socket."""
    script = Path(directory) / "server.py"
    script.write_text(SERVER)
    path = f"{directory}/app.sock"
    server = subprocess.Popen(
        [sys.executable, str(script), path, str(EXPECTED / "sample.json")], env=env()
    )
    try:
        wait_connectable(path, server)
    except BaseException:
        server.kill()
        server.wait(timeout=10)
        raise
    return path, server


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """One server process shared by the tests that only read from it."""
    directory = tempfile.mkdtemp(prefix="sv-", dir="/tmp")
    path, server = start_server(directory)
    try:
        yield path, server
    finally:
        server.kill()
        server.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def monitor(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """Run `python -m supervisor monitor ARGS...` and capture what it prints."""
    return subprocess.run(
        [sys.executable, "-m", "supervisor", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env(columns),
        check=False,
    )


@pytest.mark.parametrize("columns", [80, 140])
def test_once_prints_the_snapshot_as_text(
    served: tuple[str, subprocess.Popen[bytes]], columns: int
) -> None:
    """`--once` prints the other process's snapshot as the monitor's text view and exits 0."""
    path, _ = served
    result = monitor(f"unix:{path}", "--once", columns=columns)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (EXPECTED / f"render_{columns}.txt").read_text()


def test_json_prints_one_line_of_json(served: tuple[str, subprocess.Popen[bytes]]) -> None:
    """`--json` prints the other process's snapshot as one line of JSON and exits 0."""
    path, _ = served
    result = monitor(path, "--json")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.count("\n") == 1
    expected = snapshot_from_json((EXPECTED / "sample.json").read_text())
    assert snapshot_from_json(result.stdout) == expected


def test_live_view_shows_a_process_that_goes_away_as_disconnected(sock_dir: str) -> None:
    """The live view (here on a pipe) says "disconnected (retrying)" when the program exits."""
    path, server = start_server(sock_dir)
    out = Path(sock_dir) / "out.txt"
    with out.open("w") as sink:
        live = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "monitor", path, "--interval", "0.1"],
            stdout=sink,
            stderr=subprocess.PIPE,
            env=env(),
        )
    try:
        for _ in range(POLLS):
            if "shop  at 112.50s" in out.read_text():
                break
            time.sleep(POLL)
        server.kill()
        server.wait(timeout=10)
        for _ in range(POLLS):
            if "disconnected (retrying)" in out.read_text():
                break
            time.sleep(POLL)
        live.send_signal(signal.SIGINT)
        _, stderr = live.communicate(timeout=10)
    finally:
        live.kill()
        live.wait(timeout=10)
        server.kill()
        server.wait(timeout=10)
    text = out.read_text()
    assert "shop  at 112.50s" in text
    assert "disconnected (retrying)" in text
    # a killed program leaves its socket file behind: the connection is refused
    # (how long it has been down when first drawn depends on the machine's load: any time)
    assert re.search(r"disconnected \(retrying\) for \d+\.\ds: nothing listening at unix:/", text)
    assert live.returncode == 130
    assert b"Traceback" not in stderr


def test_a_bad_address_is_one_line_and_exit_2() -> None:
    """A bad address: one clear line on stderr, exit code 2."""
    result = monitor("not-an-address", "--once")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "python -m supervisor monitor: bad address 'not-an-address': the port must be an "
        "integer from 0 to 65535; expected unix:/path, a path containing '/', HOST:PORT or PORT\n"
    )


def test_nothing_listening_is_one_line_and_exit_2(sock_dir: str) -> None:
    """Nothing listening at the address: one clear line naming it, exit code 2."""
    result = monitor(f"unix:{sock_dir}/none.sock", "--json")
    assert result.returncode == 2
    assert result.stderr == (
        f"python -m supervisor monitor: nothing listening at unix:{sock_dir}/none.sock "
        "(no such socket file)\n"
    )


def test_a_socket_that_never_answers_is_one_line_and_exit_2(sock_dir: str) -> None:
    """A socket that accepts and never answers: a timeout line naming it, exit code 2."""
    path = f"{sock_dir}/mute.sock"
    mute = socket.socket(socket.AF_UNIX)
    mute.bind(path)
    mute.listen()  # connections complete in the backlog; nothing ever reads or answers
    try:
        result = monitor(path, "--once", "--timeout", "0.3")
    finally:
        mute.close()
    assert result.returncode == 2
    assert (
        result.stderr == f"python -m supervisor monitor: no answer from unix:{path} within 0.3s\n"
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["monitor", "1", "--interval", "0"], "argument --interval: must be > 0 (got '0')"),
        (["monitor", "1", "--timeout", "x"], "must be a number of seconds (got 'x')"),
        (["monitor", "1", "--once", "--json"], "not allowed with argument"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_options_exit_2(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad options exit with code 2 and say which option and value."""
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert error in capsys.readouterr().err


def test_demo_passes_the_rest_of_argv_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """`demo ARGS...` imports supervisor.app._demo only then and hands it ARGS unparsed."""
    seen: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 7

    fake = types.ModuleType("supervisor.app._demo")
    fake.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "supervisor.app._demo", fake)
    assert main(["demo", "--speed", "3", "monitor"]) == 7
    assert seen == [["--speed", "3", "monitor"]]


def test_demo_missing_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a demo module, `demo` says so on stderr and exits 2."""
    monkeypatch.setitem(sys.modules, "supervisor.app._demo", None)
    assert main(["demo"]) == 2
    assert capsys.readouterr().err == (
        "python -m supervisor demo: the demo is not available in this build\n"
    )


@pytest.mark.parametrize("columns", [80, 140])
def test_once_with_watch_prints_one_service(
    served: tuple[str, subprocess.Popen[bytes]], columns: int
) -> None:
    """`--once --watch NAME` prints the watch view of that service and exits 0."""
    path, _ = served
    result = monitor(path, "--once", "--watch", "payments", columns=columns)
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[1].startswith("Watching backend/payments  parked  breaker open")
    assert [line.split()[0] for line in lines[2:5]] == ["calls/s", "p99", "errors"]
    assert "Breaker transitions" in result.stdout
    assert "Latest events of payments" in result.stdout
    assert max(len(line) for line in lines) <= columns


def test_watch_of_an_unknown_service_or_with_json_exits_2(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    """`--watch` of a service the program does not have, or with `--json`, is one line on
    stderr and exit code 2."""
    path, _ = served
    unknown = monitor(path, "--once", "--watch", "nope")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith(
        "python -m supervisor monitor: no service named 'nope' (services: backend/payments,"
    )
    as_json = monitor(path, "--json", "--watch", "payments")
    assert as_json.returncode == 2
    assert "--watch" in as_json.stderr
