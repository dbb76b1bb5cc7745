"""Attach to a running program: snapshots served on a local socket, and the client fetching them.

The protocol is newline-delimited JSON and has one request. The client sends::

    {"get": "snapshot"}\\n

and the server answers one line: the snapshot as written by
:func:`~supervisor.snapshot_to_json`, or ``{"error": "..."}`` when it cannot (a request
it does not know, or a source that raised). A connection may carry any number of requests.

Who can connect: on a Unix socket, whoever the file permissions allow; the server creates the socket
file with mode ``0o600`` (owner only) before it listens, in a directory no other user can write to
(see ``_placement.py``). On a TCP port, which is bound to the loopback interface only, any user of
the same machine. Any other interface is refused unless ``expose_beyond_loopback=True`` is passed:
snapshots carry paths, error messages and metrics.

What a client can make the server do: ask for snapshots, one request at a time per connection, at
most ``max_connections`` connections at once. Whatever it sends (garbage, deep nesting, endless or
huge lines, bytes that are not UTF-8) ends at worst its own connection, with an ``{"error": ...}``
line where one can still be sent; no error of a connection ever reaches the served program.

Address syntax (:func:`parse_address`): ``unix:/path/to/sock`` or any text containing ``/`` is a
Unix socket; ``HOST:PORT`` or a bare ``PORT`` is TCP (a bare port means ``127.0.0.1``).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from collections.abc import AsyncIterator
from typing import Final

import attrs
import trio

from .._config import COUNT, DURATION
from .._errors import ConfigError, shown
from ..observe._snapshot import SystemSnapshot, snapshot_from_json, snapshot_to_json
from ..observe._source import SnapshotSource, SupportsSnapshot, as_snapshot_source
from ._addresses import Address, TcpAddress, UnixAddress, parse_address
from ._attach_errors import AddressError, AttachError, AttachTimeout
from ._placement import default_socket_path, remove_own_socket, unix_listener

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "REQUEST",
    "Address",
    "AddressError",
    "AttachError",
    "AttachTimeout",
    "SnapshotServer",
    "SnapshotServerStatistics",
    "TcpAddress",
    "UnixAddress",
    "default_socket_path",
    "fetch_snapshot",
    "parse_address",
    "serve_snapshots",
]

REQUEST: Final = b'{"get": "snapshot"}\n'
"""The one request of the protocol, as sent on the wire."""

_MAX_REQUEST: Final = 4096  # bytes in one request line; a longer one ends the connection
_MAX_REPLY: Final = 64 * 1024 * 1024  # bytes in one snapshot line the client accepts
DEFAULT_IDLE_TIMEOUT: Final = 10.0
"""Seconds a connection may wait for its next complete request (or for its reply to be read)."""
DEFAULT_MAX_CONNECTIONS: Final = 16
"""Connections served at once; one more is answered with an error line and closed at once."""
_REFUSE_TIMEOUT: Final = 1.0  # seconds to hand a refused connection its error line


# -- reading lines ---------------------------------------------------------------------------------


class _LineTooLong(Exception):
    pass


async def _read_line(stream: trio.abc.ReceiveStream, buffer: bytearray, limit: int) -> bytes | None:
    """The next line (without its newline), or None at end of stream; keeps the rest in buffer."""
    while True:
        end = buffer.find(b"\n")
        if end > limit:
            raise _LineTooLong
        if end >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            return line
        if len(buffer) > limit:
            raise _LineTooLong
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        buffer += chunk


# -- the server ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SnapshotServerStatistics:
    """A snapshot of a :class:`SnapshotServer`."""

    address: Address
    """Where it listens (the real port when 0 was asked)."""
    connections: int
    """Connections accepted in total."""
    open_connections: int
    """Connections open now."""
    served: int
    """Snapshots sent."""
    errors: int
    """Requests answered with an error (unknown request, the source raised, too long)."""
    refused: int = 0
    """Connections closed at once because ``max_connections`` were already open."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """The most connections served at once."""
    failure: str | None = None
    """Why the server stopped accepting connections, if it did (the program runs on)."""


class SnapshotServer:
    """A running snapshot server (made by :func:`serve_snapshots`).

    Attributes:
        address: where it listens; for TCP port 0, the port that was picked.
    """

    def __init__(
        self,
        source: SnapshotSource,
        address: Address,
        idle_timeout: float,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self._source = source
        self.address: Address = address
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._connections = 0
        self._open = 0
        self._served = 0
        self._errors = 0
        self._refused = 0
        self._failure: str | None = None

    def __repr__(self) -> str:
        return (
            f"<SnapshotServer {self.address}, {self._open}/{self._max_connections} connections "
            f"open, {self._served} snapshots served>"
        )

    def statistics(self) -> SnapshotServerStatistics:
        """Connections and requests so far."""
        return SnapshotServerStatistics(
            address=self.address,
            connections=self._connections,
            open_connections=self._open,
            served=self._served,
            errors=self._errors,
            refused=self._refused,
            max_connections=self._max_connections,
            failure=self._failure,
        )

    async def _answer(self, line: bytes) -> bytes:
        try:
            request = json.loads(line)
        except Exception:  # ValueError, and RecursionError for deep nesting: not our request
            request = None
        if not _is_request(request):
            self._errors += 1
            return _error_line('unknown request; send {"get": "snapshot"}')
        try:
            result = self._source()
            snapshot = await result if inspect.isawaitable(result) else result
            text = snapshot_to_json(snapshot)
        except Exception as exc:  # the client is told; the program being watched carries on
            self._errors += 1
            return _error_line(f"the snapshot failed: {type(exc).__name__}: {_text(exc)}")
        self._served += 1
        return text.encode() + b"\n"

    async def _serve(
        self,
        listeners: list[trio.SocketListener],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        # The listeners already listen: connections made from now on wait in the backlog.
        task_status.started()
        try:
            await trio.serve_listeners(self._handle, listeners)
        except Exception as exc:  # monitoring stops; the program runs on
            self._failure = f"{type(exc).__name__}: {_text(exc)}"

    async def _handle(self, stream: trio.SocketStream) -> None:
        self._connections += 1
        if self._open >= self._max_connections:
            self._refused += 1
            with trio.move_on_after(_REFUSE_TIMEOUT):
                await _send_and_close(
                    stream, f"too many connections (at most {self._max_connections} at once)"
                )
            await trio.aclose_forcefully(stream)
            return
        self._open += 1
        try:
            await self._converse(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client went away
        except Exception as exc:  # it ends this connection, and it alone
            self._errors += 1
            with trio.move_on_after(_REFUSE_TIMEOUT):
                await _send_and_close(stream, f"internal error: {type(exc).__name__}")
        finally:
            self._open -= 1
            await trio.aclose_forcefully(stream)

    async def _converse(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        while True:
            # The whole request, and sending its reply, must fit in the idle timeout: a client
            # that trickles bytes or never reads its replies is closed like an idle one.
            with trio.move_on_after(self._idle_timeout):
                try:
                    line = await _read_line(stream, buffer, _MAX_REQUEST)
                except _LineTooLong:
                    self._errors += 1
                    await stream.send_all(_error_line("request line too long"))
                    return
                if line is None:
                    return
                await stream.send_all(await self._answer(line))
                continue
            return  # idle too long: close


def _is_request(request: object) -> bool:
    return (
        isinstance(request, dict)
        and len(request) == 1
        and isinstance(request.get("get"), str)
        and request["get"] == "snapshot"
    )


def _text(exc: BaseException) -> str:
    """``str(exc)``, cut short; never raises (a hostile ``__str__`` is not our failure)."""
    try:
        text = str(exc)
    except Exception:  # any failure to describe the error is replaced
        return f"<{type(exc).__name__} that cannot be shown>"
    return text if len(text) <= 500 else text[:500] + "..."


async def _send_and_close(stream: trio.SocketStream, message: str) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await stream.send_all(_error_line(message))


def _error_line(message: str) -> bytes:
    return json.dumps({"error": message}).encode() + b"\n"


@contextlib.asynccontextmanager
async def serve_snapshots(
    source: SupportsSnapshot | SnapshotSource,
    address: str | Address,
    *,
    expose_beyond_loopback: bool = False,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> AsyncIterator[SnapshotServer]:
    """Serve ``source``'s snapshots on ``address`` for the body of ``async with``.

    ``source`` is a running tree (anything with ``snapshot()``) or a callable returning a
    :class:`SystemSnapshot`, directly or as an awaitable; it is called once per request. A Unix
    socket file is created with mode ``0o600`` (replacing a stale socket file nobody listens on)
    and removed on exit; its directory must be ours or root's and not writable by other users
    without the sticky bit (:func:`default_socket_path` gives a per-user path). A TCP address must
    be on the loopback interface (``127.0.0.1``, ``::1``, ``localhost``) unless
    ``expose_beyond_loopback=True``; port 0 picks a free port, which
    :attr:`SnapshotServer.address` then shows.

    Bounds: at most ``max_connections`` connections (default
    :data:`DEFAULT_MAX_CONNECTIONS`, 16) are served at once; one more is sent
    ``{"error": "too many connections ..."}`` and closed at once, so a client holding idle
    connections cannot use up the program's file descriptors. A connection that does not complete
    its next request line (at most 4 KiB), or does not read its reply, within ``idle_timeout``
    seconds (default :data:`DEFAULT_IDLE_TIMEOUT`, 10) is closed.

    Whatever a client sends ends at worst its own connection: a request that is not ``{"get":
    "snapshot"}`` (garbage, deep nesting, not UTF-8) is answered with an error line; an over-long
    one is answered and the connection closed; any other error in a connection closes it. A source
    that raises an ``Exception`` is answered with an error line; the server carries on. If
    accepting connections itself fails, the server stops serving (``statistics().failure`` says
    why) and the body of ``async with`` runs on. Leaving the block (normally, by an exception or
    by cancellation) closes every connection.

    Raises:
        AddressError: a bad address, or a host off the loopback without ``expose_beyond_loopback``.
        AttachError: the socket cannot be made (a path that is not a socket or is already served,
            an unsafe directory, a stale socket that cannot be removed, a path too long, a port in
            use).
        ConfigError: ``idle_timeout`` is not a finite number > 0, or ``max_connections`` not an
            integer >= 1.
        TypeError: ``source`` has no ``snapshot()`` and is not callable.
    """
    fetch = as_snapshot_source(source)
    DURATION.check("idle_timeout", idle_timeout)
    limit = COUNT.resolve_int("max_connections", max_connections, env=None, default=0)
    where = parse_address(address)
    created: os.stat_result | None = None
    listeners: list[trio.SocketListener]
    if isinstance(where, UnixAddress):
        listener, created = await unix_listener(where, where.path)
        listeners = [listener]
    else:
        if not where.is_loopback and not expose_beyond_loopback:
            raise AddressError(
                address,
                f"refusing to serve snapshots on {where}: not a loopback address "
                "(pass expose_beyond_loopback=True to allow it)",
            )
        try:
            listeners = await trio.open_tcp_listeners(where.port, host=where.host)
        except OSError as exc:
            raise AttachError(address, f"cannot serve on {where}: {exc}") from exc
        port = listeners[0].socket.getsockname()[1]
        where = TcpAddress(host=where.host, port=port)
    server = SnapshotServer(fetch, where, idle_timeout, limit)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(server._serve, listeners)
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
        if created is not None and isinstance(where, UnixAddress):
            remove_own_socket(where.path, created)


# -- the client ------------------------------------------------------------------------------------


async def _connect(address: Address) -> trio.SocketStream:
    try:
        if isinstance(address, UnixAddress):
            return await trio.open_unix_socket(address.path)
        return await trio.open_tcp_stream(address.host, address.port)
    except FileNotFoundError as exc:
        raise AttachError(address, f"nothing listening at {address} (no such socket file)") from exc
    except ConnectionRefusedError as exc:
        raise AttachError(address, f"nothing listening at {address} (connection refused)") from exc
    except PermissionError as exc:
        raise AttachError(address, f"not allowed to connect to {address}: {exc}") from exc
    except OSError as exc:
        # trio.open_tcp_stream reports "all attempts ... failed", the reasons in a group.
        cause = exc.__cause__
        reasons = cause.exceptions if isinstance(cause, BaseExceptionGroup) else ()
        if reasons and all(isinstance(reason, ConnectionRefusedError) for reason in reasons):
            raise AttachError(
                address, f"nothing listening at {address} (connection refused)"
            ) from exc
        raise AttachError(address, f"cannot connect to {address}: {exc}") from exc


async def fetch_snapshot(address: str | Address, timeout: float = 5.0) -> SystemSnapshot:  # noqa: ASYNC109 - the contract's signature; the timeout becomes a typed AttachTimeout naming the address
    """One snapshot from the program serving at ``address`` (see :func:`parse_address`).

    Opens a connection, sends one request, reads one line and closes, all within ``timeout``
    seconds. Cancellation propagates (the connection is closed).

    Raises:
        AddressError: bad address syntax, or TCP port 0.
        AttachError: nothing listens there (no socket file, connection refused), the connection
            broke or closed before an answer, the server answered with an error, or the answer is
            not a snapshot. The message names the address.
        AttachTimeout: no complete answer within ``timeout`` seconds.
        ConfigError: ``timeout`` is not > 0.
    """
    if not DURATION.admits(timeout):
        raise ConfigError(f"`timeout` must be a finite number > 0 (got {shown(timeout)})")
    where = parse_address(address)
    if isinstance(where, TcpAddress) and where.port == 0:
        raise AddressError(address, f"bad address {address!r}: cannot connect to port 0")
    try:
        with trio.fail_after(timeout):
            stream = await _connect(where)
            async with stream:
                await stream.send_all(REQUEST)
                line = await _read_line(stream, bytearray(), _MAX_REPLY)
    except trio.TooSlowError as exc:
        raise AttachTimeout(where, timeout) from exc
    except _LineTooLong as exc:
        raise AttachError(where, f"{where} sent a line longer than {_MAX_REPLY} bytes") from exc
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise AttachError(where, f"the connection to {where} broke: {exc}") from exc
    if line is None:
        raise AttachError(where, f"{where} closed the connection without answering")
    return _decode(where, line)


def _decode(address: Address, line: bytes) -> SystemSnapshot:
    """The snapshot in ``line``; every way it can be malformed is an :class:`AttachError`.

    The server is not trusted: bytes that are not UTF-8, JSON nested too deeply to parse
    (``RecursionError``), numbers too long to read, a tree nested too deeply to rebuild, or any
    other surprise all become ``AttachError`` naming the address and the reason.
    """
    try:
        data = json.loads(line)
    except RecursionError as exc:
        raise AttachError(
            address, f"{address} did not answer with a snapshot: JSON nested too deeply"
        ) from exc
    except ValueError as exc:
        raise AttachError(
            address, f"{address} did not answer with a snapshot: {_text(exc)}"
        ) from exc
    if isinstance(data, dict) and set(data) == {"error"}:
        message = data["error"]
        shown_message = _text(Exception(message)) if isinstance(message, str) else shown(message)
        raise AttachError(address, f"{address} answered with an error: {shown_message}")
    try:
        return snapshot_from_json(line)
    except RecursionError as exc:
        raise AttachError(
            address, f"{address} did not answer with a snapshot: nested too deeply"
        ) from exc
    except Exception as exc:  # ValueError, or whatever else a hostile reply can provoke
        raise AttachError(
            address, f"{address} did not answer with a snapshot: {_text(exc)}"
        ) from exc
