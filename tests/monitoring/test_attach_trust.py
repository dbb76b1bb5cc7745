"""The attach client trusts no server, and the server trusts no directory: every malformed reply is
an AttachError, and a socket is only made where no other user can replace it."""

from __future__ import annotations

import math
import os
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from supervisor.app._cli import main
from supervisor.console._attach import (
    AddressError,
    AttachError,
    default_socket_path,
    fetch_snapshot,
    parse_address,
    serve_snapshots,
)
from supervisor.console._history import ServiceHistory
from supervisor.console._placement import socket_directory_problem
from supervisor.observe._snapshot import (
    NodeSnapshot,
    ServiceSnapshot,
    SystemSnapshot,
    snapshot_from_json,
)


def snap() -> SystemSnapshot:
    """A minimal snapshot."""
    return SystemSnapshot(
        at=1.0, name="app", tree=NodeSnapshot(path="app", name="app", kind="supervisor", state="x")
    )


@pytest.fixture
def sock_dir() -> Iterator[str]:
    """A short private directory for socket files."""
    path = tempfile.mkdtemp(prefix="sv-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _deep_tree(depth: int) -> bytes:
    """A snapshot whose tree nests ``depth`` supervisors (written by hand: ``json.dumps`` itself
    gives up on deep nesting)."""
    opening = b'{"path": "a", "name": "a", "kind": "supervisor", "state": "x", "children": ['
    leaf = b'{"path": "a", "name": "a", "kind": "worker", "state": "running"}'
    tree = opening * depth + leaf + b"]}" * depth
    return b'{"at": 1.0, "name": "app", "tree": ' + tree + b"}\n"


HOSTILE_REPLIES = [
    pytest.param(b"[" * 100_000 + b"\n", "JSON nested too deeply", id="deep array"),
    pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"\n", "nested too deeply", id="deep"),
    pytest.param(_deep_tree(900), "nested too deeply", id="a tree too deep to rebuild"),
    pytest.param(b"9" * 5000 + b"\n", "did not answer with a snapshot", id="a huge number"),
    pytest.param(b"\xff\xfe\xfd\n", "did not answer with a snapshot", id="not utf-8"),
    pytest.param(b'{"error": 5}\n', "answered with an error: 5", id="an error that is a number"),
    pytest.param(
        b'{"error": ' + b"[" * 900 + b"]" * 900 + b"}\n",
        "answered with an error: [[[[...]]]]",
        id="a deeply nested error",
    ),
    pytest.param(b'{"error": "' + b"e" * 10_000 + b'"}\n', "e...", id="a huge error message"),
    pytest.param(
        b'{"at": 1e999, "name": [], "tree": null}\n',
        "did not answer with a snapshot: not a valid snapshot",
        id="wrong types",
    ),
]


@asynccontextmanager
async def replying(path: str, reply: bytes) -> AsyncIterator[None]:
    """A server at ``path`` that answers any request with ``reply``."""

    async def handler(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.receive_some()
            await stream.send_all(reply)

    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen()
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handler, [trio.SocketListener(sock)])
        yield
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("reply", "message"), HOSTILE_REPLIES)
async def test_every_malformed_reply_is_an_attach_error(
    sock_dir: str, reply: bytes, message: str
) -> None:
    """Deep nesting, huge numbers, bad bytes and odd error values: AttachError naming the address,
    never a bare RecursionError or ValueError."""
    path = f"{sock_dir}/evil.sock"
    async with replying(path, reply):
        with pytest.raises(AttachError) as info:
            await fetch_snapshot(path)
    text = str(info.value)
    assert text.startswith(f"unix:{path} ")
    assert message in text
    assert len(text) < 1000


def test_monitor_once_on_a_deeply_nested_reply_is_one_line_and_exit_2(
    sock_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m supervisor monitor --once`` against a hostile server: exit 2, one line."""
    path = f"{sock_dir}/evil.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()

    def serve_one() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(4096)
            connection.sendall(b"[" * 100_000 + b"\n")

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        assert main(["monitor", path, "--once"]) == 2
    finally:
        thread.join(10)
        listener.close()
    err = capsys.readouterr().err
    assert err == (
        f"python -m supervisor monitor: unix:{path} did not answer with a snapshot: "
        "JSON nested too deeply\n"
    )


# -- where the socket may live -----------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722, 0o702])
async def test_a_directory_others_can_write_without_the_sticky_bit_is_refused(
    sock_dir: str, mode: int
) -> None:
    """Group- or world-writable without the sticky bit: AttachError naming the path and mode."""
    shared = Path(sock_dir) / "shared"
    shared.mkdir()
    shared.chmod(mode)
    path = f"{shared}/app.sock"
    with pytest.raises(AttachError) as info:
        async with serve_snapshots(snap, path):
            pytest.fail("must not serve")
    assert str(info.value) == (
        f"refusing to serve on unix:{path}: its directory {shared} is writable by other users "
        f"without the sticky bit (mode {mode:#o}), so they could replace the socket"
    )
    assert not await trio.Path(path).exists()


async def test_a_sticky_shared_directory_is_accepted(sock_dir: str) -> None:
    """Like /tmp: world-writable with the sticky bit, so nobody else can remove our socket."""
    shared = Path(sock_dir) / "sticky"
    shared.mkdir()
    shared.chmod(0o1777)
    path = f"{shared}/app.sock"
    async with serve_snapshots(snap, path):
        assert await fetch_snapshot(path) == snap()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a directory to another user")
async def test_a_directory_owned_by_another_user_is_refused(sock_dir: str) -> None:
    """Even mode 0o700: its owner could replace the socket."""
    theirs = Path(sock_dir) / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 4242, 4242)
    path = f"{theirs}/app.sock"
    with pytest.raises(AttachError) as info:
        async with serve_snapshots(snap, path):
            pytest.fail("must not serve")
    assert str(info.value) == (
        f"refusing to serve on unix:{path}: its directory {theirs} is owned by another user "
        "(uid 4242)"
    )


def test_the_directory_check_trusts_the_owner_and_root(sock_dir: str) -> None:
    """Our private directory is fine for us; a root-owned one (``/``) is fine for anyone; a
    directory that cannot be examined is refused."""
    assert socket_directory_problem(sock_dir) is None
    assert socket_directory_problem("/", uid=4242) is None
    assert "cannot be examined" in str(socket_directory_problem(f"{sock_dir}/missing"))
    assert socket_directory_problem(__file__) == f"{__file__} is not a directory"


async def test_a_stale_socket_that_cannot_be_removed_is_an_attach_error(
    sock_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user's stale socket in a sticky directory cannot be unlinked: AttachError."""
    path = f"{sock_dir}/app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()

    def refuse(_path: str) -> None:
        raise PermissionError(1, "Operation not permitted", _path)

    monkeypatch.setattr(os, "unlink", refuse)
    with pytest.raises(AttachError) as info:
        async with serve_snapshots(snap, path):
            pytest.fail("must not serve")
    assert str(info.value) == (
        f"cannot serve on unix:{path}: a stale socket there cannot be removed: "
        f"[Errno 1] Operation not permitted: '{path}'"
    )


def test_default_socket_path_prefers_xdg_runtime_dir(
    sock_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``$XDG_RUNTIME_DIR/<name>.sock`` when it is a safe directory."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", sock_dir)
    assert default_socket_path("shop") == f"{sock_dir}/shop.sock"


def test_default_socket_path_falls_back_to_a_private_directory(
    sock_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a usable ``$XDG_RUNTIME_DIR``: a 0o700 directory of ours in the temp dir."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", sock_dir)
    path = default_socket_path()
    directory = Path(path).parent
    assert path == f"{sock_dir}/trio-supervisor-{os.geteuid()}/app.sock"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert default_socket_path() == path  # the directory exists now: reused
    shared = Path(sock_dir) / "open"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    assert default_socket_path() == path  # an unsafe runtime dir is not used
    directory.chmod(0o755)
    with pytest.raises(OSError, match="is not a private directory"):
        default_socket_path()


@pytest.mark.parametrize("name", ["", "a/b", "x\0y", 5])
def test_default_socket_path_refuses_a_bad_name(name: object) -> None:
    """The name is one file name."""
    with pytest.raises(ValueError, match="`name` must be a non-empty file name"):
        default_socket_path(name)  # type: ignore[arg-type]


async def test_serving_on_the_default_path(sock_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented way: ``serve_snapshots(tree, default_socket_path("shop"))``."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", sock_dir)
    async with serve_snapshots(snap, default_socket_path("shop")):
        assert await fetch_snapshot(f"{sock_dir}/shop.sock") == snap()


@pytest.mark.parametrize("text", ["127.0.0.1:²", "9" * 5000, "١٢٣", "localhost:00000080"])
def test_odd_digits_in_a_port_are_an_address_error(text: str) -> None:
    """``str.isdigit`` admits '²' and Arabic-Indic digits, and int() refuses 5,000 digits: all
    of them are AddressError, never a bare ValueError."""
    with pytest.raises(AddressError, match="the port must be an integer from 0 to 65535"):
        parse_address(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(b"[" * 100_000, "not a JSON snapshot: nested too deeply", id="deep json"),
        pytest.param(b"\xff", "not a JSON snapshot: 'utf-8' codec can't decode", id="not utf-8"),
        pytest.param(b"9" * 5000, "not a JSON snapshot: Exceeds the limit", id="huge number"),
        # 900 levels: json.loads or cattrs gives up first, depending on the stack already in use
        pytest.param(_deep_tree(900), "not a .* snapshot: nested too deeply", id="deep tree"),
    ],
)
def test_snapshot_from_json_raises_only_value_error(text: bytes, message: str) -> None:
    """Its contract says ValueError; deep nesting is one too, not a RecursionError."""
    with pytest.raises(ValueError, match="^" + message) as info:
        snapshot_from_json(text)
    assert type(info.value) is ValueError


@pytest.mark.parametrize("at", [math.nan, math.inf, -math.inf])
def test_the_watch_history_ignores_a_snapshot_whose_time_is_not_finite(at: float) -> None:
    """JSON from a server may carry NaN or Infinity for ``at``: the watch view reports it as a
    problem instead of raising from ``math.floor``."""
    service = ServiceSnapshot(path="app/db")
    root = NodeSnapshot(path="app", name="app", kind="supervisor", state="running")
    history = ServiceHistory("db")
    assert history.record(SystemSnapshot(at=1.0, name="app", tree=root, services=(service,)))
    assert not history.record(SystemSnapshot(at=at, name="app", tree=root, services=(service,)))
    assert history.problem == f"the snapshot's time is not a finite number ({at!r})"
    assert history.record(SystemSnapshot(at=2.0, name="app", tree=root, services=(service,)))
