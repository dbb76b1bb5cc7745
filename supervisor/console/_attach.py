"""Attach to a running program: snapshots served on a local socket, and the client fetching them.

The protocol is newline-delimited JSON and has one request. The client sends::

    {"get": "snapshot"}\\n

and the server answers one line: the snapshot as written by
:func:`~supervisor.snapshot_to_json`, or ``{"error": "..."}`` when it cannot (a request
it does not know, or a source that raised). A connection may carry any number of requests.

Who can connect: on a Unix socket, whoever the file permissions allow; the server creates the socket
file with mode ``0o600`` (owner only) before it listens. On a TCP port, which is bound to the
loopback interface only, any user of the same machine. Any other interface is refused unless
``expose_beyond_loopback=True`` is passed: snapshots carry paths, error messages and metrics.

Address syntax (:func:`parse_address`): ``unix:/path/to/sock`` or any text containing ``/`` is a
Unix socket; ``HOST:PORT`` or a bare ``PORT`` is TCP (a bare port means ``127.0.0.1``).
"""

from __future__ import annotations

import contextlib
import inspect
import ipaddress
import json
import math
import os
import stat
from collections.abc import AsyncIterator
from typing import Final, TypeAlias

import attrs
import trio

from .._errors import ConfigError, ResilienceError
from ..observe._snapshot import SystemSnapshot, snapshot_from_json, snapshot_to_json
from ..observe._source import SnapshotSource, SupportsSnapshot, as_snapshot_source

__all__ = [
    "REQUEST",
    "Address",
    "AddressError",
    "AttachError",
    "AttachTimeout",
    "SnapshotServer",
    "SnapshotServerStatistics",
    "TcpAddress",
    "UnixAddress",
    "fetch_snapshot",
    "parse_address",
    "serve_snapshots",
]

REQUEST: Final = b'{"get": "snapshot"}\n'
"""The one request of the protocol, as sent on the wire."""

_MAX_REQUEST: Final = 4096  # bytes in one request line; a longer one ends the connection
_MAX_REPLY: Final = 64 * 1024 * 1024  # bytes in one snapshot line the client accepts
_IDLE_TIMEOUT: Final = 60.0
_LOOPBACK: Final = "127.0.0.1"
_SYNTAX: Final = "expected unix:/path, a path containing '/', HOST:PORT or PORT"


# -- errors --------------------------------------------------------------------------------------


class AttachError(ResilienceError):
    """Attaching to a running program failed; the message names the address and the reason.

    Attributes:
        address: the address as given (text) or parsed.
    """

    def __init__(self, address: object, message: str) -> None:
        self.address = address
        super().__init__(message)


class AddressError(AttachError, ValueError):
    """The address is not valid syntax, or names a host that may not be served."""


class AttachTimeout(AttachError, TimeoutError):
    """Nothing answered within the timeout (a socket that accepts and never answers).

    Attributes:
        timeout: the timeout, in seconds.
    """

    def __init__(self, address: object, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(address, f"no answer from {address} within {timeout:g}s")


# -- addresses -----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class UnixAddress:
    """A Unix socket at ``path``."""

    path: str
    """The socket file's path."""

    def __str__(self) -> str:
        return f"unix:{self.path}"


@attrs.frozen(kw_only=True)
class TcpAddress:
    """A TCP port on ``host`` (``127.0.0.1`` unless given)."""

    host: str = _LOOPBACK
    """The host name or IP address."""
    port: int
    """The port (0 asks the server to pick a free one)."""

    @property
    def is_loopback(self) -> bool:
        """Whether ``host`` is ``localhost`` or a loopback IP address."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


Address: TypeAlias = UnixAddress | TcpAddress


def parse_address(address: str | Address) -> Address:
    """The :class:`UnixAddress` or :class:`TcpAddress` that ``address`` names.

    ``unix:/path`` or any text containing ``/`` is a Unix socket; ``HOST:PORT`` (``[::1]:PORT``
    for IPv6) or a bare ``PORT`` is TCP, a bare port on ``127.0.0.1``. An address object is
    returned as is.

    Raises:
        AddressError: empty text, an empty Unix path, a port that is not an integer from 0 to
            65535, or an empty host; the message quotes the address.
    """
    if isinstance(address, UnixAddress | TcpAddress):
        return address
    text = address.strip()
    if not text:
        raise AddressError(address, f"bad address {address!r}: {_SYNTAX}")
    if text.startswith("unix:") or "/" in text:
        path = text.removeprefix("unix:")
        if not path:
            raise AddressError(address, f"bad address {address!r}: the Unix socket path is empty")
        return UnixAddress(path=path)
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = _LOOPBACK
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or any(char.isspace() for char in host):
        raise AddressError(address, f"bad address {address!r}: the host is empty; {_SYNTAX}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise AddressError(
            address,
            f"bad address {address!r}: the port must be an integer from 0 to 65535; {_SYNTAX}",
        )
    return TcpAddress(host=host, port=int(port_text))


# -- reading lines ---------------------------------------------------------------------------------


class _LineTooLong(Exception):
    pass


async def _read_line(stream: trio.abc.ReceiveStream, buffer: bytearray, limit: int) -> bytes | None:
    """The next line (without its newline), or None at end of stream; keeps the rest in buffer."""
    while True:
        end = buffer.find(b"\n")
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


class SnapshotServer:
    """A running snapshot server (made by :func:`serve_snapshots`).

    Attributes:
        address: where it listens; for TCP port 0, the port that was picked.
    """

    def __init__(self, source: SnapshotSource, address: Address, idle_timeout: float) -> None:
        self._source = source
        self.address: Address = address
        self._idle_timeout = idle_timeout
        self._connections = 0
        self._open = 0
        self._served = 0
        self._errors = 0

    def __repr__(self) -> str:
        return (
            f"<SnapshotServer {self.address}, {self._open} connections open, "
            f"{self._served} snapshots served>"
        )

    def statistics(self) -> SnapshotServerStatistics:
        """Connections and requests so far."""
        return SnapshotServerStatistics(
            address=self.address,
            connections=self._connections,
            open_connections=self._open,
            served=self._served,
            errors=self._errors,
        )

    async def _answer(self, line: bytes) -> bytes:
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        if request != {"get": "snapshot"}:
            self._errors += 1
            return _error_line('unknown request; send {"get": "snapshot"}')
        try:
            result = self._source()
            snapshot = await result if inspect.isawaitable(result) else result
            text = snapshot_to_json(snapshot)
        except Exception as exc:  # the client is told; the program being watched carries on
            self._errors += 1
            return _error_line(f"the snapshot failed: {type(exc).__name__}: {exc}")
        self._served += 1
        return text.encode() + b"\n"

    async def _handle(self, stream: trio.SocketStream) -> None:
        self._connections += 1
        self._open += 1
        buffer = bytearray()
        try:
            async with stream:
                while True:
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
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the client went away
        finally:
            self._open -= 1


def _error_line(message: str) -> bytes:
    return json.dumps({"error": message}).encode() + b"\n"


async def _unix_listener(address: UnixAddress) -> tuple[trio.SocketListener, os.stat_result]:
    path = address.path
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(existing.st_mode):
            raise AttachError(address, f"cannot serve on {address}: {path} exists, not a socket")
        try:
            probe = await trio.open_unix_socket(path)
        except ConnectionRefusedError:
            os.unlink(path)  # a stale socket file: nobody listens on it
        except OSError as exc:  # e.g. another user's socket: never removed
            raise AttachError(address, f"cannot serve on {address}: {exc}") from exc
        else:
            await probe.aclose()
            raise AttachError(address, f"cannot serve on {address}: something already listens")
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        # Owner only, before listen(): until then every connect() is refused, so no other user
        # can slip in between the bind and the chmod.
        os.chmod(path, 0o600)
        sock.listen()
        created = os.lstat(path)
    except OSError as exc:
        sock.close()
        raise AttachError(address, f"cannot serve on {address}: {exc}") from exc
    return trio.SocketListener(sock), created


@contextlib.asynccontextmanager
async def serve_snapshots(
    source: SupportsSnapshot | SnapshotSource,
    address: str | Address,
    *,
    expose_beyond_loopback: bool = False,
    idle_timeout: float = _IDLE_TIMEOUT,
) -> AsyncIterator[SnapshotServer]:
    """Serve ``source``'s snapshots on ``address`` for the body of ``async with``.

    ``source`` is a running tree (anything with ``snapshot()``) or a callable returning a
    :class:`SystemSnapshot`, directly or as an awaitable; it is called once per request. A Unix
    socket file is created with mode ``0o600`` (replacing a stale socket file nobody listens on)
    and removed on exit. A TCP address must be on the loopback interface (``127.0.0.1``, ``::1``,
    ``localhost``) unless ``expose_beyond_loopback=True``; port 0 picks a free port, which
    :attr:`SnapshotServer.address` then shows. A connection idle for ``idle_timeout`` seconds is
    closed.

    A source that raises an ``Exception`` is answered with an error line; the server carries on.
    Leaving the block (normally, by an exception or by cancellation) closes every connection.

    Raises:
        AddressError: a bad address, or a host off the loopback without ``expose_beyond_loopback``.
        AttachError: the socket cannot be made (a path that is not a socket or is already served,
            a path too long, a port in use).
        ConfigError: ``idle_timeout`` is not > 0.
        TypeError: ``source`` has no ``snapshot()`` and is not callable.
    """
    fetch = as_snapshot_source(source)
    if not (math.isfinite(idle_timeout) and idle_timeout > 0):
        raise ConfigError(f"`idle_timeout` must be a finite number > 0 (got {idle_timeout!r})")
    where = parse_address(address)
    created: os.stat_result | None = None
    listeners: list[trio.SocketListener]
    if isinstance(where, UnixAddress):
        listener, created = await _unix_listener(where)
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
    server = SnapshotServer(fetch, where, idle_timeout)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, server._handle, listeners)
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
        if created is not None and isinstance(where, UnixAddress):
            _remove_own_socket(where.path, created)


def _remove_own_socket(path: str, created: os.stat_result) -> None:
    with contextlib.suppress(FileNotFoundError):
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) == (created.st_dev, created.st_ino):
            os.unlink(path)


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
    if not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"`timeout` must be a finite number > 0 (got {timeout!r})")
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
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise AttachError(address, f"{address} did not answer with a snapshot: {exc}") from exc
    if isinstance(data, dict) and set(data) == {"error"}:
        raise AttachError(address, f"{address} answered with an error: {data['error']}")
    try:
        return snapshot_from_json(line)
    except ValueError as exc:
        raise AttachError(address, f"{address} did not answer with a snapshot: {exc}") from exc
