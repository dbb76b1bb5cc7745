"""The errors of a store: raised when it is opened, never on a request path."""

from __future__ import annotations

from .._errors import ResilienceError

__all__ = ["StoreAuthError", "StoreConnectionError", "StoreError"]


class StoreError(ResilienceError):
    """A store could not be opened.

    Attributes:
        url: the server's URL, without its password.
    """

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(message)


class StoreConnectionError(StoreError, ConnectionError):
    """The server did not answer: refused, unreachable, or too slow to answer a ``PING``."""


class StoreAuthError(StoreError, PermissionError):
    """The server refused the credentials (or asked for some that the URL does not give)."""
