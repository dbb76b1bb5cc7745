"""The Redis store's connection basics: its URL, its prefix, coredis, and what "unreachable" is.

Parses and checks the URL a :class:`~supervisor.store.RedisStore` connects to (and shows it
without its password), checks the key prefix, imports the optional coredis extra on first use,
and tells an outage (the server refused, reset, timed out) from any other error, also inside the
exception groups coredis raises.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, Final

import trio

from .._errors import ConfigError
from .._errors import shown as show_value
from .._groups import leaves

__all__ = ["URL_ENV", "redact_url"]

URL_ENV: Final = "SUPERVISOR_REDIS_URL"
"""The environment variable that gives :meth:`RedisStore.connect` its default URL."""

_SCHEMES: Final = ("redis", "rediss", "unix")
_EXTRA_HINT: Final = "RedisStore needs coredis: pip install 'trio-supervisor[redis]'"


def _coredis() -> Any:
    """The coredis module, imported on first use; ImportError naming the extra without it."""
    try:
        import coredis  # noqa: PLC0415 - the optional extra, imported only when it is used
        import coredis.exceptions  # noqa: PLC0415
        import coredis.retry  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(_EXTRA_HINT) from exc
    return coredis


def _outage_types() -> tuple[type[BaseException], ...]:
    return (_coredis().exceptions.RedisError, OSError, TimeoutError, trio.TooSlowError)


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, fit to show in a message."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "<unparsable URL>"


def _resolve_url(url: str | None) -> tuple[str, str]:
    # The URL to connect to and the one to show; ConfigError naming the source and the value.
    source = "`url`"
    if url is None:
        source = f"environment variable {URL_ENV}"
        url = os.environ.get(URL_ENV)
        if not url:
            raise ConfigError(f"`url` was not given and environment variable {URL_ENV} is not set")
    if not isinstance(url, str):
        raise ConfigError(f"`url` must be a redis:// URL string (got {show_value(url)})")
    shown = redact_url(url)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{source} must be a valid redis:// URL (got {shown!r}: {exc})") from exc
    if parts.scheme not in _SCHEMES:
        raise ConfigError(f"{source} must be a redis://, rediss:// or unix:// URL (got {shown!r})")
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigError(f"{source} must name a socket path (got {shown!r})")
        return url, shown
    if not parts.hostname:
        raise ConfigError(f"{source} must name a host (got {shown!r})")
    if port == 0:
        raise ConfigError(f"{source} must name a port from 1 to 65535 (got {shown!r})")
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        raise ConfigError(f"{source} must end in a database number, if any (got {shown!r})")
    return url, shown


def _check_prefix(prefix: object) -> str:
    bad = set("{}*?[]\\ ")
    if not isinstance(prefix, str) or not prefix or bad & set(prefix):
        raise ConfigError(
            "`prefix` must be a non-empty string without braces, spaces or glob characters "
            f"(got {show_value(prefix)})"
        )
    return prefix


def _is_outage(error: BaseException) -> bool:
    """Whether ``error`` (or every exception of a group) says the server cannot be reached."""
    outages = _outage_types()
    return all(isinstance(leaf, outages) for leaf in leaves(error))


def _describe(error: BaseException) -> BaseException:
    found = leaves(error)
    return found[0] if found else error
