"""Every ask gets exactly one outcome, whatever happens around it (hypothesis)."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from actor_helpers import Hook
from hypothesis import given
from hypothesis import strategies as st

import actors


class Flaky(Exception):
    """The error a crashing handler raises."""


class Worker(actors.Actor[Any]):
    async def receive(self, message: Any) -> Any:
        kind, seconds = message
        await trio.sleep(seconds)
        if kind == "crash":
            raise Flaky(seconds)
        return message


asks = st.tuples(
    st.just("ask"),
    st.floats(0, 5),  # when
    st.sampled_from(["ok", "crash"]),
    st.sampled_from([0, 0, 0.5, 3]),  # handler duration
    st.none() | st.floats(0, 4),  # timeout
    st.none() | st.floats(0, 4),  # caller cancelled after
)
controls = st.tuples(st.sampled_from(["stop", "restart"]), st.floats(0, 8), st.sampled_from([0, 1]))
scenarios = st.lists(st.one_of(asks, asks, asks, controls), max_size=25)

ALLOWED = (Flaky, actors.AskTimeout, actors.ActorStopped, actors.MailboxFull)


@given(
    ops=scenarios,
    supervised=st.booleans(),
    overflow=st.sampled_from(list(actors.Overflow)),
    mailbox_size=st.integers(1, 4),
)
def test_every_ask_gets_exactly_one_outcome(
    ops: list[tuple[Any, ...]], supervised: bool, overflow: actors.Overflow, mailbox_size: int
) -> None:
    """Random asks (crashing, slow, timed out, cancelled), stops and restarts: one outcome each."""
    outcomes: dict[int, list[Any]] = {}

    async def main() -> None:
        with trio.fail_after(1000):
            async with actors.ActorSystem(shutdown_grace=1) as system:
                hook = Hook() if supervised else None
                ref = await system.spawn(
                    Worker, supervisor=hook, mailbox_size=mailbox_size, overflow=overflow
                )

                async def ask(i: int, when: float, kind: str, seconds: float, *rest: Any) -> None:
                    timeout, cancel_after = rest
                    await trio.sleep(when)
                    got = outcomes.setdefault(i, [])
                    with trio.CancelScope() as scope:
                        if cancel_after is not None:
                            scope.deadline = trio.current_time() + cancel_after
                        try:
                            got.append(await ref.ask((kind, seconds), timeout=timeout))
                        except ALLOWED as exc:
                            got.append(exc)
                    if scope.cancelled_caught:
                        got.append("cancelled")

                async def control(kind: str, when: float, grace: float) -> None:
                    await trio.sleep(when)
                    try:
                        if kind == "stop":
                            await system.stop(ref, grace=grace)
                        else:
                            await system.restart(ref, grace=grace)
                    except (actors.ActorStopped, Flaky):
                        pass

                async def auto_restart() -> None:
                    # A minimal supervisor: restart a suspended child after a short backoff.
                    while hook is not None and ref.is_alive:
                        await trio.sleep(0.25)
                        if ref.statistics().state is actors.ActorState.SUSPENDED:
                            try:
                                await system.restart(ref)
                            except actors.ActorStopped:
                                return

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(auto_restart)
                    for i, op in enumerate(ops):
                        if op[0] == "ask":
                            nursery.start_soon(ask, i, *op[1:])
                        else:
                            nursery.start_soon(control, *op)
                    await trio.sleep(20)
                    if ref.is_alive:
                        await system.stop(ref)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    expected = {i for i, op in enumerate(ops) if op[0] == "ask"}
    assert set(outcomes) == expected
    for i in expected:
        assert len(outcomes[i]) == 1, (ops[i], outcomes[i])
        result = outcomes[i][0]
        kind, seconds = ops[i][2], ops[i][3]
        if not isinstance(result, (*ALLOWED, str)):
            assert result == (kind, seconds)
        if isinstance(result, Flaky):
            assert kind == "crash"
