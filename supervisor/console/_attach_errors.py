"""The errors of attaching to a running program (server and client alike)."""

from __future__ import annotations

from .._errors import ResilienceError

__all__ = ["AddressError", "AttachError", "AttachTimeout"]


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
