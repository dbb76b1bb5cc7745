"""A hostile client of the attach server ends at worst its own connection: the served tree keeps
answering, the server keeps serving, and its memory and descriptors stay bounded."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import actors
from supervisor import ConfigError
from supervisor.console._attach import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    REQUEST,
    SnapshotServer,
    fetch_snapshot,
    serve_snapshots,
)
from supervisor.tree._run import run_tree
from supervisor.tree._specs import ServiceSpec, SupervisorSpec
from supervisor.tree._tree import Tree


class Echo(actors.Actor[Any]):
    """Answers every request with itself."""

    async def receive(self, message: Any) -> Any:
        return message


def spec() -> SupervisorSpec:
    """A root with one guarded service."""
    return SupervisorSpec(name="app", children=(ServiceSpec(name="db", factory=Echo),))


@pytest.fixture
def sock_dir() -> Iterator[str]:
    """A short private directory for socket files."""
    path = tempfile.mkdtemp(prefix="sv-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth + b"\n"


HOSTILE_LINES = [
    pytest.param(b"[" * 3000 + b"\n", id="3000 open brackets"),
    pytest.param(_deep(2000), id="deep array"),
    pytest.param(b'{"get": ' * 450 + b'"snapshot"' + b"}" * 450 + b"\n", id="deep object"),
    pytest.param(b"\xff\xfe\xfa not utf-8\n", id="not utf-8"),
    pytest.param(b"9" * 4000 + b"\n", id="a number too long to read"),
    pytest.param(b'{"get": "snapshot", "and": 1e999}\n', id="an extra key"),
    pytest.param(b'{"get": ["snapshot"]}\n', id="a list for a string"),
    pytest.param(b"\n", id="an empty line"),
    pytest.param(b"\x00" * 100 + b"\n", id="NUL bytes"),
]


async def _exchange(stream: trio.SocketStream, payload: bytes) -> list[bytes]:
    """Send ``payload`` then a valid request; return the reply lines until the snapshot's."""
    await stream.send_all(payload + REQUEST)
    replies: list[bytes] = []
    buffer = b""
    with trio.fail_after(5):
        while len(replies) < 2:
            chunk = await stream.receive_some(1 << 20)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            replies += lines
    return replies


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (at most 5 s) until ``condition()`` holds; the server works on real sockets."""
    with trio.fail_after(5):
        while not condition():  # noqa: ASYNC110 -- polling a statistic, no event to wait on
            await trio.sleep(0.001)


async def _tree_answers(tree: Tree) -> None:
    assert await tree.service("db").call("still here", timeout=5) == "still here"


@pytest.mark.parametrize("line", HOSTILE_LINES)
async def test_a_hostile_line_is_answered_with_an_error_and_the_tree_runs_on(
    sock_dir: str, line: bytes
) -> None:
    """Garbage, deep nesting and bytes that are not UTF-8 get one error line each; the same
    connection is then served, and the tree keeps answering calls."""
    path = os.path.join(sock_dir, "a.sock")
    async with run_tree(spec()) as tree, serve_snapshots(tree, path) as server:
        stream = await trio.open_unix_socket(path)
        async with stream:
            replies = await _exchange(stream, line)
        assert json.loads(replies[0]) == {"error": 'unknown request; send {"get": "snapshot"}'}
        assert json.loads(replies[1])["name"] == "app"
        await _tree_answers(tree)
        assert (await fetch_snapshot(path)).name == "app"
        assert server.statistics().errors == 1


async def test_deep_nesting_over_loopback_tcp_does_not_reach_the_tree() -> None:
    """The one-line attack of the report, over 127.0.0.1: the tree is unharmed."""
    async with run_tree(spec()) as tree, serve_snapshots(tree, "127.0.0.1:0") as server:
        port = server.address.port  # type: ignore[union-attr]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            replies = await _exchange(stream, b"[" * 3000 + b"\n")
        assert "error" in json.loads(replies[0])
        await _tree_answers(tree)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"x" * 5000 + b"\n", id="a huge line"),
        pytest.param(b"[" * 100_000, id="an endless line"),
    ],
)
async def test_an_over_long_line_ends_its_connection_only(sock_dir: str, payload: bytes) -> None:
    """A line over 4 KiB is answered with an error and its connection closed (a client still
    sending may see the close as a reset instead); other connections go on."""
    path = os.path.join(sock_dir, "a.sock")
    async with run_tree(spec()) as tree, serve_snapshots(tree, path):
        bystander = await trio.open_unix_socket(path)
        stream = await trio.open_unix_socket(path)
        async with stream, bystander:
            received = b""
            with trio.fail_after(5):
                with contextlib.suppress(trio.BrokenResourceError):
                    await stream.send_all(payload)  # the server may close while we still send
                try:
                    while chunk := await stream.receive_some(65536):
                        received += chunk
                except trio.BrokenResourceError:
                    pass  # closed with our bytes unread: the reset may overtake the error line
            assert received in (b"", b'{"error": "request line too long"}\n')
            if len(payload) < 65536:
                assert json.loads(received) == {"error": "request line too long"}
            await bystander.send_all(REQUEST)
            with trio.fail_after(5):
                assert b"app" in await bystander.receive_some(65536)
        await _tree_answers(tree)


class Raising:
    """A snapshot source whose error cannot even be printed."""

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    def snapshot(self) -> Any:
        raise self.Unprintable


async def test_a_source_whose_error_cannot_be_printed_is_still_answered(sock_dir: str) -> None:
    """The error line names the type; the connection and the server carry on."""
    path = os.path.join(sock_dir, "a.sock")
    async with serve_snapshots(Raising(), path):
        stream = await trio.open_unix_socket(path)
        async with stream:
            await stream.send_all(REQUEST)
            with trio.fail_after(5):
                reply = json.loads(await stream.receive_some(65536))
        assert reply["error"].startswith("the snapshot failed: Unprintable: <Unprintable")


async def _receive_all(stream: trio.SocketStream) -> bytes:
    received = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some(65536):
            received += chunk
    return received


async def test_connections_beyond_the_cap_are_refused_at_once(sock_dir: str) -> None:
    """With ``max_connections=4`` four idle clients are served and held; a fifth is told so and
    closed at once; once one leaves, a new client is served again."""
    path = os.path.join(sock_dir, "a.sock")
    async with serve_snapshots(Raising(), path, max_connections=4) as server:
        held = [await trio.open_unix_socket(path) for _ in range(4)]
        await trio.testing.wait_all_tasks_blocked()
        extra = await trio.open_unix_socket(path)
        async with extra:
            reply = await _receive_all(extra)
        assert json.loads(reply) == {"error": "too many connections (at most 4 at once)"}
        stats = server.statistics()
        assert (stats.open_connections, stats.refused, stats.max_connections) == (4, 1, 4)
        await held.pop().aclose()
        await _until(lambda: server.statistics().open_connections < 4)
        again = await trio.open_unix_socket(path)
        async with again:
            await again.send_all(REQUEST)
            with trio.fail_after(5):
                assert b"the snapshot failed" in await again.receive_some(65536)
        for stream in held:
            await stream.aclose()


async def test_a_flood_of_idle_connections_holds_at_most_the_cap(sock_dir: str) -> None:
    """300 idle clients (the report opened 1,100 against a 1,024-descriptor limit) hold at most
    ``DEFAULT_MAX_CONNECTIONS`` descriptors of the server; the program can still open files."""
    path = os.path.join(sock_dir, "a.sock")
    async with run_tree(spec()) as tree, serve_snapshots(tree, path) as server:
        clients = [await trio.open_unix_socket(path) for _ in range(300)]
        await _until(lambda: server.statistics().connections == 300)
        stats = server.statistics()
        assert stats.open_connections == DEFAULT_MAX_CONNECTIONS
        assert stats.refused == 300 - DEFAULT_MAX_CONNECTIONS
        assert await trio.Path(os.devnull).read_text() == ""  # the program can still open files
        await _tree_answers(tree)
        for client in clients:
            await client.aclose()


def test_the_documented_defaults() -> None:
    """16 connections at once, closed after 10 idle seconds."""
    assert (DEFAULT_MAX_CONNECTIONS, DEFAULT_IDLE_TIMEOUT) == (16, 10.0)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, 10**400, "4"])
async def test_a_bad_max_connections_is_a_config_error(sock_dir: str, bad: object) -> None:
    """``max_connections`` must be an integer >= 1."""
    path = os.path.join(sock_dir, "a.sock")
    with pytest.raises(ConfigError, match="`max_connections` must be an integer >= 1"):
        async with serve_snapshots(Raising(), path, max_connections=bad):  # type: ignore[arg-type]
            pass


async def test_a_failing_accept_loop_stops_serving_but_not_the_program(
    sock_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If accepting itself fails, the server records why and the body runs on."""

    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(9, "listener broke")

    monkeypatch.setattr(trio, "serve_listeners", broken)
    async with serve_snapshots(Raising(), os.path.join(sock_dir, "a.sock")) as server:
        await trio.testing.wait_all_tasks_blocked()
        assert server.statistics().failure == "OSError: [Errno 9] listener broke"


# -- a live server in a thread, fed by hypothesis ------------------------------------------------


class LiveServer:
    """A tree and its snapshot server running in their own trio run on another thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.tree: Tree | None = None
        self.server: SnapshotServer | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.stop: trio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("the live server did not start")

    def _run(self) -> None:
        async def main() -> None:
            async with run_tree(spec()) as tree, serve_snapshots(tree, self.path) as server:
                self.tree, self.server = tree, server
                self.token, self.stop = trio.lowlevel.current_trio_token(), trio.Event()
                self.ready.set()
                await self.stop.wait()

        try:
            trio.run(main)
        except BaseException as exc:  # reported by the test, never lost
            self.error = exc
            self.ready.set()

    def call(self, request: Any) -> Any:
        tree = self.tree
        assert tree is not None
        return trio.from_thread.run(
            lambda: tree.service("db").call(request, timeout=5), trio_token=self.token
        )

    def open_connections(self) -> int:
        server = self.server
        assert server is not None
        return trio.from_thread.run_sync(
            lambda: server.statistics().open_connections, trio_token=self.token
        )

    def close(self) -> None:
        stop = self.stop
        if stop is not None:
            trio.from_thread.run_sync(stop.set, trio_token=self.token)
        self.thread.join(10)


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    """One live server for all the hypothesis examples of this module."""
    directory = tempfile.mkdtemp(prefix="sv-", dir="/tmp")
    server = LiveServer(os.path.join(directory, "live.sock"))
    yield server
    server.close()
    shutil.rmtree(directory, ignore_errors=True)
    assert server.error is None, f"the served program failed: {server.error!r}"


def _send(path: str, payload: bytes) -> list[bytes]:
    """Send ``payload``, close our side, and return every line the server answered."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(path)
        try:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed an over-long line while we were sending it
        received = b""
        try:
            while chunk := client.recv(1 << 20):
                received += chunk
        except ConnectionResetError:
            pass
    return [line for line in received.split(b"\n") if line]


def _check_replies(replies: list[bytes]) -> None:
    for reply in replies:
        data = json.loads(reply)
        assert isinstance(data, dict)
        assert set(data) == {"error"} or data["name"] == "app"


def _still_serving(live: LiveServer) -> None:
    assert live.error is None
    assert live.call("ping") == "ping"
    replies = _send(live.path, REQUEST)
    assert json.loads(replies[0])["name"] == "app"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=8), children, max_size=8)
    ),
    max_leaves=40,
)
nested = st.integers(min_value=1, max_value=6000).map(lambda n: ("[" * n + "]" * n).encode())
huge_numbers = st.integers(min_value=300, max_value=8000).map(lambda n: b"9" * n)


@settings(max_examples=40)
@given(payload=st.binary(max_size=9000) | st.binary(max_size=200).map(lambda b: b + b"\n"))
def test_arbitrary_bytes_never_reach_the_tree(live: LiveServer, payload: bytes) -> None:
    """Whatever bytes a client sends, every reply is a JSON error or a snapshot, the connection
    ends, and the tree keeps answering."""
    _check_replies(_send(live.path, payload))
    _still_serving(live)


@settings(max_examples=40)
@given(
    document=json_values.map(lambda v: json.dumps(v).encode()) | nested | huge_numbers,
    repeat=st.integers(min_value=1, max_value=3),
)
def test_arbitrary_json_never_reaches_the_tree(
    live: LiveServer, document: bytes, repeat: int
) -> None:
    """Arbitrary JSON (deep, wide, huge numbers) on one connection, several lines of it: one
    error line per line that is not the request (or the connection closed for a long one)."""
    replies = _send(live.path, (document + b"\n") * repeat)
    _check_replies(replies)
    if len(document) < 4096:
        assert len(replies) == repeat
    _still_serving(live)


def test_memory_and_connections_stay_bounded(live: LiveServer) -> None:
    """An endless line of 16 MiB and 200 hostile connections in turn leave the server holding
    nothing: its connections go back to 0 and traced memory grows by well under a megabyte."""
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(live.path)
            chunk = b"[" * 65536
            try:
                for _ in range(256):
                    client.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed by the server once the line passed 4 KiB
        for _ in range(200):
            _send(live.path, b"[" * 4000 + b"\n" + b"\xff" * 100 + b"\n")
        _still_serving(live)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert live.open_connections() <= 1  # at most the last, closing
    assert current - baseline < 1_000_000
    assert peak - baseline < 4_000_000
