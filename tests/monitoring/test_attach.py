"""Snapshots over a local socket: addresses, the server, the client and its clear errors."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing
from rich.console import Console

from supervisor import ConfigError
from supervisor.console._attach import (
    AddressError,
    AttachError,
    AttachTimeout,
    TcpAddress,
    UnixAddress,
    fetch_snapshot,
    parse_address,
    serve_snapshots,
)
from supervisor.console._feed import FeedState
from supervisor.console._monitor import Monitor
from supervisor.observe._snapshot import NodeSnapshot, SystemSnapshot, snapshot_from_json

SAMPLE = snapshot_from_json((Path(__file__).parent / "expected" / "sample.json").read_text())


def snap(at: float = 1.0) -> SystemSnapshot:
    """A minimal snapshot taken at `at`."""
    root = NodeSnapshot(path="app", name="app", kind="supervisor", state="running")
    return SystemSnapshot(at=at, name="app", tree=root)


@pytest.fixture
def sock_dir() -> Iterator[str]:
    """A short private directory for socket files (Unix socket paths are limited to ~107 bytes)."""
    path = tempfile.mkdtemp(prefix="sv-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def raw_server(
    path: str, handler: Callable[[trio.SocketStream], Awaitable[None]]
) -> AsyncIterator[None]:
    """A Unix socket server at `path` running `handler` on each connection (a misbehaving peer)."""
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen()
    listener = trio.SocketListener(sock)
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handler, [listener])
        yield
        nursery.cancel_scope.cancel()


# -- addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unix:/run/app.sock", UnixAddress(path="/run/app.sock")),
        ("unix:app.sock", UnixAddress(path="app.sock")),
        ("/tmp/app.sock", UnixAddress(path="/tmp/app.sock")),
        ("./app.sock", UnixAddress(path="./app.sock")),
        ("8765", TcpAddress(port=8765)),
        ("127.0.0.1:8765", TcpAddress(host="127.0.0.1", port=8765)),
        ("localhost:1", TcpAddress(host="localhost", port=1)),
        ("[::1]:8765", TcpAddress(host="::1", port=8765)),
        (" 0 ", TcpAddress(port=0)),
    ],
)
def test_parse_address(text: str, expected: object) -> None:
    """`unix:` or a '/' is a Unix socket; HOST:PORT or PORT is TCP, on 127.0.0.1 by default."""
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected unix:/path"),
        ("unix:", "the Unix socket path is empty"),
        ("app.sock", "the port must be an integer from 0 to 65535"),
        ("127.0.0.1:http", "the port must be an integer from 0 to 65535"),
        ("127.0.0.1:70000", "the port must be an integer from 0 to 65535"),
        (":8765", "the host is empty"),
        ("-1", "the port must be an integer"),
    ],
)
def test_bad_address_syntax(text: str, reason: str) -> None:
    """Bad syntax raises AddressError (a ValueError) quoting the address and saying why."""
    with pytest.raises(AddressError) as info:
        parse_address(text)
    assert isinstance(info.value, ValueError)
    assert f"bad address {text!r}: " in str(info.value)
    assert reason in str(info.value)
    assert info.value.address == text


def test_address_text_round_trips() -> None:
    """An address prints in the syntax parse_address reads."""
    for text in ("unix:/run/app.sock", "127.0.0.1:8765", "[::1]:8765"):
        assert str(parse_address(text)) == text


# -- serving and fetching ----------------------------------------------------------------------


async def test_serve_and_fetch_over_a_unix_socket(sock_dir: str) -> None:
    """A snapshot fetched over a Unix socket equals the one served; its file is 0o600, removed."""
    path = f"{sock_dir}/app.sock"
    async with serve_snapshots(lambda: SAMPLE, f"unix:{path}") as server:
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
        assert await fetch_snapshot(f"unix:{path}") == SAMPLE
        assert await fetch_snapshot(path, timeout=1.0) == SAMPLE
        stats = server.statistics()
        assert (stats.connections, stats.served, stats.errors) == (2, 2, 0)
        assert repr(server).startswith(f"<SnapshotServer unix:{path}, ")
    assert not Path(path).exists()  # noqa: ASYNC240 - a stat of a local file, after the fact


async def test_serve_and_fetch_over_loopback_tcp() -> None:
    """Port 0 picks a free loopback port, shown in server.address; HOST:PORT and PORT reach it."""
    async with serve_snapshots(lambda: SAMPLE, "127.0.0.1:0") as server:
        address = server.address
        assert isinstance(address, TcpAddress)
        assert address.port > 0
        assert await fetch_snapshot(f"127.0.0.1:{address.port}") == SAMPLE
        assert await fetch_snapshot(str(address.port)) == SAMPLE


async def test_a_tree_like_object_and_an_async_source_can_be_served(sock_dir: str) -> None:
    """The source may be anything with snapshot(), or a callable returning an awaitable."""

    class TreeLike:
        async def snapshot(self) -> SystemSnapshot:
            await trio.lowlevel.checkpoint()
            return snap(7.0)

    async with serve_snapshots(TreeLike(), f"{sock_dir}/a.sock"):
        assert (await fetch_snapshot(f"{sock_dir}/a.sock")).at == 7.0


async def test_many_concurrent_clients(sock_dir: str) -> None:
    """100 clients fetching at once each get the snapshot."""
    path = f"{sock_dir}/app.sock"
    results: list[SystemSnapshot] = []

    async def one() -> None:
        results.append(await fetch_snapshot(path))

    async with serve_snapshots(lambda: SAMPLE, path) as server:
        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(one)
        assert server.statistics().served == 100
    assert results == [SAMPLE] * 100


async def test_one_connection_carries_many_requests_and_unknown_ones_get_an_error(
    sock_dir: str,
) -> None:
    """Requests on one connection are answered in order; an unknown request gets an error line."""
    path = f"{sock_dir}/app.sock"
    async with serve_snapshots(snap, path) as server:
        stream = await trio.open_unix_socket(path)
        async with stream:
            await stream.send_all(b'{"get": "snapshot"}\n{"get": "logs"}\nnot json\n')
            await stream.send_all(b'{"get": "snapshot"}\n')
            received = b""
            while received.count(b"\n") < 4:
                received += await stream.receive_some()
        lines = received.splitlines()
        assert snapshot_from_json(lines[0]) == snap()
        assert json.loads(lines[1]) == {"error": 'unknown request; send {"get": "snapshot"}'}
        assert json.loads(lines[2]) == json.loads(lines[1])
        assert snapshot_from_json(lines[3]) == snap()
        assert server.statistics().errors == 2


async def test_an_over_long_request_ends_the_connection(sock_dir: str) -> None:
    """A request line longer than 4 KiB is answered with an error and the connection closed."""
    path = f"{sock_dir}/app.sock"
    async with serve_snapshots(snap, path):
        stream = await trio.open_unix_socket(path)
        async with stream:
            await stream.send_all(b"x" * 10_000)
            received = b""
            while chunk := await stream.receive_some():
                received += chunk
        assert json.loads(received) == {"error": "request line too long"}


async def test_a_source_that_raises_is_answered_with_an_error(sock_dir: str) -> None:
    """A source that raises gives the client a clear AttachError; the server carries on."""
    path = f"{sock_dir}/app.sock"
    calls = 0

    def source() -> SystemSnapshot:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("tree not started")
        return snap()

    async with serve_snapshots(source, path):
        with pytest.raises(AttachError) as info:
            await fetch_snapshot(path)
        assert str(info.value) == (
            f"unix:{path} answered with an error: "
            "the snapshot failed: RuntimeError: tree not started"
        )
        assert await fetch_snapshot(path) == snap()


async def test_an_idle_connection_is_closed(
    sock_dir: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A connection that sends nothing for `idle_timeout` seconds is closed by the server."""
    path = f"{sock_dir}/app.sock"
    async with serve_snapshots(snap, path, idle_timeout=3.0) as server:
        stream = await trio.open_unix_socket(path)
        start = trio.current_time()
        async with stream:
            assert await stream.receive_some() == b""
        assert trio.current_time() - start == pytest.approx(3.0)
        await trio.testing.wait_all_tasks_blocked()
        assert server.statistics().open_connections == 0


# -- where the server may listen ----------------------------------------------------------------


@pytest.mark.parametrize("address", ["0.0.0.0:0", "10.1.2.3:8765", "example.com:8765"])
async def test_serving_off_loopback_is_refused(address: str) -> None:
    """A host that is not loopback is refused unless expose_beyond_loopback=True, and says so."""
    with pytest.raises(AddressError, match="expose_beyond_loopback=True"):
        async with serve_snapshots(snap, address):
            pytest.fail("must not serve")


async def test_expose_beyond_loopback_allows_any_interface() -> None:
    """With expose_beyond_loopback=True the server binds the host given."""
    async with serve_snapshots(snap, "0.0.0.0:0", expose_beyond_loopback=True) as server:
        assert isinstance(server.address, TcpAddress)
        assert await fetch_snapshot(f"127.0.0.1:{server.address.port}") == snap()


async def test_a_stale_socket_file_is_replaced(sock_dir: str) -> None:
    """A socket file nobody listens on (a crashed program's) is replaced."""
    path = f"{sock_dir}/app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    async with serve_snapshots(snap, path):
        assert await fetch_snapshot(path) == snap()


async def test_a_path_that_is_not_a_socket_or_already_served_is_refused(sock_dir: str) -> None:
    """A regular file is never replaced; a socket someone listens on is not taken over."""
    regular = Path(sock_dir) / "file"
    regular.write_text("keep me")
    with pytest.raises(AttachError, match=r"exists, not a socket"):
        async with serve_snapshots(snap, str(regular)):
            pytest.fail("must not serve")
    assert regular.read_text() == "keep me"
    path = f"{sock_dir}/app.sock"
    async with serve_snapshots(snap, path):
        with pytest.raises(AttachError, match="something already listens"):
            async with serve_snapshots(snap, path):
                pytest.fail("must not serve")
        assert await fetch_snapshot(path) == snap()


# -- clear client errors -----------------------------------------------------------------------


async def test_nothing_listening_on_a_missing_socket_file(sock_dir: str) -> None:
    """A socket path that does not exist: AttachError naming the address."""
    path = f"{sock_dir}/none.sock"
    with pytest.raises(AttachError) as info:
        await fetch_snapshot(f"unix:{path}")
    assert str(info.value) == f"nothing listening at unix:{path} (no such socket file)"


async def test_nothing_listening_on_a_dead_socket_or_port(sock_dir: str) -> None:
    """A stale socket file or a closed port: AttachError 'nothing listening ... refused'."""
    path = f"{sock_dir}/dead.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    with pytest.raises(AttachError) as info:
        await fetch_snapshot(path)
    assert str(info.value) == f"nothing listening at unix:{path} (connection refused)"
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(AttachError) as info:
        await fetch_snapshot(str(port))
    assert str(info.value) == f"nothing listening at 127.0.0.1:{port} (connection refused)"


async def test_a_socket_that_accepts_and_never_answers_times_out(
    sock_dir: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A server that accepts and never answers gives AttachTimeout (a TimeoutError) at `timeout`."""
    path = f"{sock_dir}/mute.sock"

    async def mute(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async with raw_server(path, mute):
        start = trio.current_time()
        with pytest.raises(AttachTimeout) as info:
            await fetch_snapshot(path, timeout=2.5)
        assert trio.current_time() - start == pytest.approx(2.5)
    assert isinstance(info.value, TimeoutError)
    assert str(info.value) == f"no answer from unix:{path} within 2.5s"
    assert info.value.timeout == 2.5


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"hello\n", "did not answer with a snapshot: Expecting value"),
        (b'{"x": 1}\n', "did not answer with a snapshot: not a valid snapshot"),
        (b"\xff\xfe\n", "did not answer with a snapshot"),
        (b'{"at": 1.0', "closed the connection without answering"),
        (b"", "closed the connection without answering"),
    ],
)
async def test_garbage_is_a_clear_error(sock_dir: str, reply: bytes, message: str) -> None:
    """An answer that is not a snapshot, or none at all, raises AttachError naming the address."""
    path = f"{sock_dir}/junk.sock"

    async def junk(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.receive_some()
            await stream.send_all(reply)

    async with raw_server(path, junk):
        with pytest.raises(AttachError) as info:
            await fetch_snapshot(path)
    assert str(info.value).startswith(f"unix:{path} ")
    assert message in str(info.value)


async def test_bad_timeout_and_port_zero() -> None:
    """A timeout that is not > 0 raises ConfigError; connecting to port 0 raises AddressError."""
    with pytest.raises(ConfigError, match=r"`timeout` must be a finite number > 0 \(got 0\)"):
        await fetch_snapshot("8765", timeout=0)
    with pytest.raises(AddressError, match="cannot connect to port 0"):
        await fetch_snapshot("0")
    with pytest.raises(AddressError, match="bad address"):
        await fetch_snapshot("nonsense")


# -- the live client loop ----------------------------------------------------------------------


async def test_the_live_monitor_shows_disconnected_and_reconnects(sock_dir: str) -> None:
    """A monitor attached to a program that exits shows disconnected, then picks it up again."""
    path = f"{sock_dir}/app.sock"

    async def fetch() -> SystemSnapshot:
        return await fetch_snapshot(path, timeout=1.0)

    console = Console(width=80, record=True, color_system=None, force_terminal=False)
    shown = Monitor(fetch, console=console)
    async with serve_snapshots(lambda: snap(1.0), path):
        assert await shown.poll() is FeedState.LIVE
    assert await shown.poll() is FeedState.DISCONNECTED
    assert shown.feed.error == f"nothing listening at unix:{path} (no such socket file)"
    shown.draw()
    view = console.export_text()
    assert "disconnected (retrying)" in view
    assert "app  at 1.00s" in view  # the last snapshot stays on screen
    async with serve_snapshots(lambda: snap(2.0), path):
        assert await shown.poll() is FeedState.LIVE
    assert shown.feed.snapshot == snap(2.0)
    assert (shown.feed.received, shown.feed.failed) == (2, 1)
