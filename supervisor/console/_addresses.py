"""Addresses of a snapshot server: a Unix socket path or a TCP host and port."""

from __future__ import annotations

import ipaddress
from typing import Final, TypeAlias

import attrs

from .._errors import shown
from ._attach_errors import AddressError

__all__ = ["LOOPBACK", "Address", "TcpAddress", "UnixAddress", "parse_address"]

LOOPBACK: Final = "127.0.0.1"
_SYNTAX: Final = "expected unix:/path, a path containing '/', HOST:PORT or PORT"


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

    host: str = LOOPBACK
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
        raise AddressError(address, f"bad address {shown(address)}: {_SYNTAX}")
    if text.startswith("unix:") or "/" in text:
        path = text.removeprefix("unix:")
        if not path:
            raise AddressError(
                address, f"bad address {shown(address)}: the Unix socket path is empty"
            )
        return UnixAddress(path=path)
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = LOOPBACK
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or any(char.isspace() for char in host):
        raise AddressError(address, f"bad address {shown(address)}: the host is empty; {_SYNTAX}")
    # ASCII digits only, at most 5: str.isdigit() also admits '²', which int() refuses.
    if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5) or not (
        0 <= int(port_text) <= 65535
    ):
        raise AddressError(
            address,
            f"bad address {shown(address)}: the port must be an integer from 0 to 65535; {_SYNTAX}",
        )
    return TcpAddress(host=host, port=int(port_text))
