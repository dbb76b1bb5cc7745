"""A service's request errors: failed requests that do not crash (or restart) its actor."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from test_tree_support import Recorder

import actors
from supervisor import (
    BreakerSpec,
    CircuitOpenError,
    CircuitState,
    ConfigError,
    FallbackSpec,
    RequestError,
    RetrySpec,
    ServiceSpec,
    SupervisorSpec,
    load_tree,
)
from supervisor.observe._events import ChildCrashed, RequestFailed
from supervisor.tree._run import run_tree


class BackendError(RequestError):
    """A 500 from the backend: a failed request, not a broken client."""


class Client(actors.Actor[Any]):
    """A service wrapping a client: each instance has its own pool (its ``opened`` serial)."""

    opened = 0

    async def on_start(self) -> None:
        Client.opened += 1
        self.pool = Client.opened

    async def receive(self, message: Any) -> Any:
        if message == "500":
            raise BackendError("backend said 500")
        if message == "missing":
            raise KeyError(message)
        if message == "bug":
            raise RuntimeError("a bug in the client")
        return ("ok", self.pool)


def tree_of(**options: Any) -> SupervisorSpec:
    return SupervisorSpec(name="app", children=[ServiceSpec(name="api", factory=Client, **options)])


async def test_a_request_error_fails_the_call_without_a_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """By default a RequestError reaches the caller and the actor keeps its instance (its pool):
    no crash, no restart; any other error is still a crash."""
    rec = Recorder()
    async with run_tree(tree_of(), events=rec.bus) as tree:
        api = tree.service("api")
        _, pool = await api.call("hello")
        with pytest.raises(BackendError, match="500"):
            await api.call("500")
        assert await api.call("hello") == ("ok", pool)
        assert rec.of(ChildCrashed) == []
        assert [type(e.error) for e in rec.of(RequestFailed)] == [BackendError]
        with pytest.raises(RuntimeError):
            await api.call("bug")
        await trio.testing.wait_all_tasks_blocked()
        assert await api.call("hello") == ("ok", pool + 1)
        assert [type(e.error) for e in rec.of(ChildCrashed)] == [RuntimeError]


async def test_request_errors_count_for_the_breaker_retry_and_fallback(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A request error is retried, counted by the breaker (which opens) and answered by the
    fallback, like any failed request; the actor is never restarted."""
    rec = Recorder()
    spec = tree_of(
        breaker=BreakerSpec(failure_threshold=2, timeout=10.0),
        retry=RetrySpec(max_attempts=2, initial_delay=0.0),
        fallback=FallbackSpec(default="later"),
    )
    async with run_tree(spec, events=rec.bus) as tree:
        api = tree.service("api")
        assert await api.call("500") == "later"
        assert api.breaker is not None
        assert api.breaker.state is CircuitState.OPEN
        assert len(rec.of(RequestFailed)) == 2
        assert rec.of(ChildCrashed) == []
        assert await api.call("hello") == "later"  # refused by the open breaker


async def test_request_errors_name_their_own_types_or_none(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """`request_errors=(KeyError,)` answers KeyError without a crash (and RequestError then
    crashes); `()` makes every error a crash."""
    rec = Recorder()
    async with run_tree(tree_of(request_errors=(KeyError,)), events=rec.bus) as tree:
        api = tree.service("api")
        with pytest.raises(KeyError):
            await api.call("missing")
        assert rec.of(ChildCrashed) == []
        with pytest.raises(BackendError):
            await api.call("500")
        await trio.testing.wait_all_tasks_blocked()
        assert [type(e.error) for e in rec.of(ChildCrashed)] == [BackendError]
    rec = Recorder()
    async with run_tree(tree_of(request_errors=()), events=rec.bus) as tree:
        with pytest.raises(BackendError):
            await tree.service("api").call("500")
        await trio.testing.wait_all_tasks_blocked()
        assert [type(e.error) for e in rec.of(ChildCrashed)] == [BackendError]


async def test_an_open_breaker_is_not_affected_by_the_actor_staying_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With a breaker of threshold 1, one request error opens it and the next call is refused
    on the caller's side, with the actor still running its first instance."""
    async with run_tree(tree_of(breaker=BreakerSpec(failure_threshold=1))) as tree:
        api = tree.service("api")
        with pytest.raises(BackendError):
            await api.call("500")
        with pytest.raises(CircuitOpenError):
            await api.call("hello")
        assert tree.lookup("api").statistics().restarts == 0


def test_request_errors_load_from_data_and_are_checked() -> None:
    """`request_errors` loads from TOML-like data as "module:Name" strings (an empty list is
    allowed) and a class that is not an Exception is a ConfigError naming the path."""
    spec = load_tree(
        {
            "name": "app",
            "children": [
                {
                    "name": "a",
                    "factory": "test_tree_support:Worker",
                    "request_errors": ["builtins:KeyError"],
                },
                {"name": "b", "factory": "test_tree_support:Worker", "request_errors": []},
            ],
        }
    )
    assert [c.request_errors for c in spec.children] == [(KeyError,), ()]  # type: ignore[union-attr]
    assert ServiceSpec(name="s", factory=Client).request_errors == (RequestError,)
    with pytest.raises(
        ConfigError, match=r"children\[0\].request_errors: `request_errors`: 'builtins:int' is not"
    ):
        load_tree(
            {
                "name": "app",
                "children": [
                    {
                        "name": "a",
                        "factory": "test_tree_support:Worker",
                        "request_errors": ["builtins:int"],
                    }
                ],
            }
        )
