"""Waits that drive a running tree in a test: until a service is in a state, until a breaker is
in a state, until events arrived. Each wakes on the tree's events (no polling), and each ends in
at most ``timeout`` seconds of trio time with :class:`WaitTimeout`: a test fails clearly, never
hangs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from ..guards._breaker import CircuitBreaker
from ..observe._snapshot import NodeSnapshot
from ..rules._breaker import CircuitState, CircuitStateChange
from ..tree._children import ChildState
from ..tree._service_ref import ServiceRef
from ._errors import WaitTimeout, check_timeout

if TYPE_CHECKING:
    from ..tree._tree import Tree
    from ._recorder import EventRecorder

__all__ = ["wait_for_breaker", "wait_for_events", "wait_for_service"]


def _state_name(kind: type[ChildState] | type[CircuitState], state: object, field: str) -> str:
    if isinstance(state, kind):
        return str(state.value)
    choices = [str(member.value) for member in kind]
    if state in choices or (state == "failed" and kind is ChildState):
        return str(state)
    raise ValueError(f"`{field}` {state!r} is not one of {', '.join(choices)}")


def _nodes(node: NodeSnapshot) -> list[NodeSnapshot]:
    found = [node]
    for child in node.children:
        found.extend(_nodes(child))
    return found


def _find(tree: Tree, name: str) -> NodeSnapshot | None:
    nodes = _nodes(tree.nodes())
    exact = [node for node in nodes if node.path == name]
    if exact:
        return exact[0]
    if "/" in name:
        return None
    named = [node for node in nodes if node.name == name]
    if len(named) > 1:
        paths = ", ".join(node.path for node in named)
        raise LookupError(f"{name!r} is ambiguous: {paths}; give the full path")
    return named[0] if named else None


async def _until(
    bus_listen: Callable[[Callable[[object], object]], Callable[[], None]],
    check: Callable[[], tuple[bool, float]],
    timeout: float,  # noqa: ASYNC109 - a test's wait must end by itself: the timeout is its point
) -> bool:
    """Re-run ``check`` after every event (and at the time it asks for) until it says done or
    ``timeout`` passes; whether it was done."""
    wakeup = trio.Event()

    def listener(_event: object) -> None:
        wakeup.set()

    remove = bus_listen(listener)
    try:
        with trio.move_on_after(timeout):
            while True:
                done, recheck_at = check()
                if done:
                    return True
                with trio.move_on_at(recheck_at):
                    await wakeup.wait()
                wakeup = trio.Event()
        return check()[0]
    finally:
        remove()


async def wait_for_service(
    tree: Tree,
    name: str,
    state: ChildState | str,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - a test's wait must end by itself: the timeout is its point
) -> NodeSnapshot:
    """Wait until the node ``name`` of ``tree`` (a path, or the name of a single node) is in
    ``state`` (a :class:`~supervisor.ChildState` or its value; also ``"failed"`` for the root),
    and return its snapshot. Returns at once if it already is.

    Raises:
        WaitTimeout: it was not within ``timeout`` seconds (trio time); the message says the
            state it is in instead, and the state of every node.
        ValueError: a bad ``state`` or ``timeout``.
        LookupError: a bare name matches several nodes.
    """
    wanted = _state_name(ChildState, state, "state")
    seconds = check_timeout(timeout)
    seen: list[NodeSnapshot | None] = [None]

    def check() -> tuple[bool, float]:
        node = _find(tree, name)
        seen[0] = node
        return node is not None and node.state == wanted, math.inf

    def listen(listener: Callable[[object], object]) -> Callable[[], None]:
        tree.events.add_listener(listener)
        return lambda: tree.events.remove_listener(listener)

    if await _until(listen, check, seconds):
        node = seen[0]
        if node is not None:
            return node
    node = seen[0]
    now = "absent" if node is None else node.state
    everyone = ", ".join(f"{n.path}={n.state}" for n in _nodes(tree.nodes()))
    raise WaitTimeout(
        f"waited {seconds:g}s for {name!r} to be {wanted}; it is {now} (tree: {everyone})"
    )


async def wait_for_breaker(
    breaker: CircuitBreaker | ServiceRef,
    state: CircuitState | str,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - a test's wait must end by itself: the timeout is its point
) -> None:
    """Wait until ``breaker`` (a :class:`~supervisor.CircuitBreaker`, or a guarded service's
    :class:`~supervisor.ServiceRef`, whose breaker is meant) is in ``state``. Wakes on every
    state change, and at the moment an open breaker turns half-open by itself (which no call
    need notice). Returns at once if it already is.

    Raises:
        WaitTimeout: it was not within ``timeout`` seconds (trio time); the message says the
            state it is in instead.
        TypeError: a service without a breaker (or not a breaker at all).
        ValueError: a bad ``state`` or ``timeout``.
    """
    target = breaker.breaker if isinstance(breaker, ServiceRef) else breaker
    if not isinstance(target, CircuitBreaker):
        raise TypeError(f"{breaker!r} has no circuit breaker")
    wanted = CircuitState(_state_name(CircuitState, state, "state"))
    seconds = check_timeout(timeout)

    def check() -> tuple[bool, float]:
        current = target.state  # applies a due half-open change
        core = target.core
        due = math.inf
        if current is CircuitState.OPEN and not core.forced_open and core.opened_at is not None:
            due = core.opened_at + core.timeout
        return current is wanted, due

    def listen(listener: Callable[[object], object]) -> Callable[[], None]:
        def on_change(change: CircuitStateChange) -> None:
            listener(change)

        target.add_listener(on_change)
        return lambda: target.remove_listener(on_change)

    if await _until(listen, check, seconds):
        return
    raise WaitTimeout(
        f"waited {seconds:g}s for breaker {target.name!r} to be {wanted.value}; "
        f"it is {target.state.value}"
    )


async def wait_for_events(
    recorder: EventRecorder,
    kind: type[Any] | tuple[type[Any], ...],
    count: int = 1,
    *,
    path: str | None = None,
    where: Callable[[Any], object] | None = None,
    timeout: float = 5.0,  # noqa: ASYNC109 - a test's wait must end by itself: the timeout is its point
) -> list[Any]:
    """Wait until ``recorder`` holds at least ``count`` events of ``kind`` (at ``path``, and
    passing ``where``, where given) and return them: :meth:`EventRecorder.wait_for`.

    Raises:
        WaitTimeout: fewer arrived within ``timeout`` seconds (trio time).
    """
    return await recorder.wait_for(kind, count, path=path, where=where, timeout=timeout)
