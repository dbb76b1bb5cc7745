"""Where a snapshot server's Unix socket may live, and making it there safely.

A socket file is only as private as the directory that holds it: in a directory another user can
write to (without the sticky bit) or owns, that user can delete our socket and put their own in its
place, and the monitor of whoever attaches then shows what they like. So before binding,
:func:`unix_listener` checks the directory, replaces a stale socket file only where it can, and
makes the file with mode ``0o600`` before it listens. :func:`default_socket_path` gives a path in a
directory only the current user can enter.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from typing import Final

import trio

from .._errors import shown
from ._attach_errors import AttachError

__all__ = ["default_socket_path", "remove_own_socket", "socket_directory_problem", "unix_listener"]

_PRIVATE: Final = 0o700


def socket_directory_problem(directory: str, *, uid: int | None = None) -> str | None:
    """Why ``directory`` is unsafe for a socket of user ``uid`` (default: the effective uid), or
    ``None`` when it is safe.

    Unsafe: it is owned by a user other than ``uid`` and root, or it is writable by its group or
    by others without the sticky bit (so they could replace the socket), or it cannot be read.
    """
    uid = os.geteuid() if uid is None else uid
    try:
        info = os.stat(directory)
    except OSError as exc:
        return f"its directory {directory} cannot be examined: {exc.strerror or exc}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{directory} is not a directory"
    if info.st_uid not in (uid, 0):
        return f"its directory {directory} is owned by another user (uid {info.st_uid})"
    shared = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if shared and not info.st_mode & stat.S_ISVTX:
        mode = stat.S_IMODE(info.st_mode)
        return (
            f"its directory {directory} is writable by other users without the sticky bit "
            f"(mode {mode:#o}), so they could replace the socket"
        )
    return None


def default_socket_path(name: str = "app") -> str:
    """A per-user path for the socket of program ``name``: ``$XDG_RUNTIME_DIR/<name>.sock`` when
    that variable names a safe directory, else ``<tempdir>/trio-supervisor-<uid>/<name>.sock``, the
    directory created with mode ``0o700`` if missing.

    Raises:
        ValueError: ``name`` is empty or contains ``/`` or a NUL.
        OSError: the fallback directory cannot be created, or exists but is not a directory of
            ours with mode ``0o700`` (it is never loosened or taken over).
    """
    if not isinstance(name, str) or not name or "/" in name or "\0" in name:
        raise ValueError(f"`name` must be a non-empty file name without '/' (got {shown(name)})")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and socket_directory_problem(runtime) is None:
        return os.path.join(runtime, f"{name}.sock")
    uid = os.geteuid()
    directory = os.path.join(tempfile.gettempdir(), f"trio-supervisor-{uid}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, _PRIVATE)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or stat.S_IMODE(info.st_mode) & 0o077:
        raise OSError(
            f"{directory} exists but is not a private directory of uid {uid} "
            f"(mode {stat.S_IMODE(info.st_mode):#o}, owner {info.st_uid}); remove it or set "
            "XDG_RUNTIME_DIR"
        )
    return os.path.join(directory, f"{name}.sock")


def _check_directory(address: object, path: str) -> None:
    problem = socket_directory_problem(os.path.dirname(os.path.abspath(path)))
    if problem is not None:
        raise AttachError(address, f"refusing to serve on {address}: {problem}")


async def _replace_stale(address: object, path: str) -> None:
    """Remove the socket file at ``path`` if nobody listens on it; refuse anything else."""
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AttachError(address, f"cannot serve on {address}: {exc}") from exc
    if not stat.S_ISSOCK(existing.st_mode):
        raise AttachError(address, f"cannot serve on {address}: {path} exists, not a socket")
    try:
        probe = await trio.open_unix_socket(path)
    except ConnectionRefusedError:
        try:
            os.unlink(path)  # a stale socket file: nobody listens on it
        except FileNotFoundError:
            pass
        except OSError as exc:  # e.g. another user's file in a sticky directory
            raise AttachError(
                address, f"cannot serve on {address}: a stale socket there cannot be removed: {exc}"
            ) from exc
    except OSError as exc:  # e.g. another user's socket: never removed
        raise AttachError(address, f"cannot serve on {address}: {exc}") from exc
    else:
        await probe.aclose()
        raise AttachError(address, f"cannot serve on {address}: something already listens")


async def unix_listener(address: object, path: str) -> tuple[trio.SocketListener, os.stat_result]:
    """A listener on a new socket file at ``path`` (mode ``0o600``) and the file's stat, to remove
    exactly that file later (:func:`remove_own_socket`).

    Raises:
        AttachError: the directory is unsafe (:func:`socket_directory_problem`), the path exists
            and is not a stale socket we may remove, or the socket cannot be made.
    """
    _check_directory(address, path)
    await _replace_stale(address, path)
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


def remove_own_socket(path: str, created: os.stat_result) -> None:
    """Remove ``path`` if it is still the file made at ``created`` (never someone else's)."""
    with contextlib.suppress(OSError):
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) == (created.st_dev, created.st_ino):
            os.unlink(path)
