"""The basic surface: spawn, ask, tell, lookup, names, reprs, statistics, input errors."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
from actor_helpers import Echo

import actors


class Greeter(actors.Actor[str]):
    async def receive(self, message: str) -> str:
        return f"hello {message}"


async def test_the_fixed_minimal_shape() -> None:
    """The minimal shape of the design works as written."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Greeter, name="greeter")
        assert await ref.ask("world", timeout=1.0) == "hello world"
        ref.tell("fire and forget")
        assert system.lookup("greeter") == ref


async def test_spawn_passes_args_and_kwargs_to_the_factory() -> None:
    """Positional and keyword arguments reach the factory; spawn options do not."""
    log: list[Any] = []
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Echo, log=log, mailbox_size=5)
        await ref.ask(1)
        assert log == [1]
        assert ref.statistics().mailbox_size == 5


async def test_context_gives_ref_name_and_system() -> None:
    """Inside an actor, self.context gives its own ref, name and system."""

    class Introspect(actors.Actor[None]):
        async def receive(self, message: None) -> Any:
            ctx = self.context
            return ctx.self_ref, ctx.name, ctx.system

    async with actors.ActorSystem() as system:
        ref = await system.spawn(Introspect, name="me")
        assert await ref.ask(None) == (ref, "me", system)
        assert "me" in repr(ref._cell.context)


def test_context_is_refused_in_init() -> None:
    """Reading self.context before the runtime made the instance raises RuntimeError."""
    with pytest.raises(RuntimeError, match="on_start"):
        _ = Greeter().context


async def test_generated_names_are_unique_and_lookup_fails_by_name() -> None:
    """Names default to '<factory>-<n>'; lookup of an unknown name raises ActorNotFound."""
    async with actors.ActorSystem() as system:
        a = await system.spawn(Echo)
        b = await system.spawn(Echo)
        assert (a.name, b.name) == ("echo-1", "echo-2")
        with pytest.raises(actors.ActorNotFound, match="'nobody'") as info:
            system.lookup("nobody")
        assert isinstance(info.value, KeyError)
        assert info.value.name == "nobody"


async def test_name_taken_and_freed_on_stop() -> None:
    """A live name cannot be reused; once stopped it is free again."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Echo, name="x")
        with pytest.raises(actors.NameTaken, match="'x'") as info:
            await system.spawn(Echo, name="x")
        assert isinstance(info.value, ValueError)
        await system.stop(ref)
        with pytest.raises(actors.ActorNotFound):
            system.lookup("x")
        again = await system.spawn(Echo, name="x")
        assert again != ref
        assert system.lookup("x") is again


async def test_ref_repr_and_statistics() -> None:
    """The ref's repr names the actor, its state and its queue; statistics count messages."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Echo, name="greeter")
        for i in range(3):
            ref.tell(i)
        assert repr(ref) == "<ActorRef 'greeter' running, 3 queued>"
        assert await ref.ask("x") == "x"
        stats = ref.statistics()
        assert stats.name == "greeter"
        assert stats.state is actors.ActorState.RUNNING
        assert (stats.queued, stats.in_flight, stats.processed) == (0, 0, 4)
        assert (stats.failures, stats.restarts, stats.stop_reason) == (0, 0, None)
        assert ref.is_alive
        assert hash(ref) == hash(system.lookup("greeter"))
        assert "1 actors" in repr(system)
        sys_stats = system.statistics()
        assert sys_stats.live == 1
        assert sys_stats.by_state == {actors.ActorState.RUNNING: 1}
        assert sys_stats.spawned == 1
        assert not sys_stats.closed
    assert repr(ref) == "<ActorRef 'greeter' stopped, 0 queued>"
    assert not ref.is_alive
    assert system.statistics().closed


async def test_calls_on_a_stopped_ref_raise_actor_stopped_at_once() -> None:
    """tell, send and ask on a stopped actor raise ActorStopped naming it."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Echo, name="gone")
        await system.stop(ref)
        await system.stop(ref)  # idempotent
        with pytest.raises(actors.ActorStopped, match="'gone'") as info:
            ref.tell(1)
        assert info.value.name == "gone"
        assert info.value.reason is None
        with pytest.raises(actors.ActorStopped):
            await ref.send(1)
        with pytest.raises(actors.ActorStopped):
            await ref.ask(1)
        with pytest.raises(actors.ActorStopped):
            await system.restart(ref)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"mailbox_size": 0}, ValueError, r"`mailbox_size` must be >= 1 \(got 0\)"),
        ({"mailbox_size": 1.5}, TypeError, r"`mailbox_size` must be an int \(got 1.5\)"),
        ({"mailbox_size": True}, TypeError, r"`mailbox_size` must be an int \(got True\)"),
        ({"overflow": "sometimes"}, ValueError, r"'wait', 'reject', 'drop_oldest' \(got 'so"),
        ({"overflow": "WAIT"}, ValueError, r"\(got 'WAIT'\)"),
        ({"name": ""}, ValueError, r"`name` must not be empty"),
        ({"name": 3}, TypeError, r"`name` must be a str or None \(got 3\)"),
        ({"supervisor": object()}, TypeError, r"`supervisor` must have a child_failed"),
    ],
)
async def test_bad_spawn_options_name_the_value(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Bad spawn options raise TypeError/ValueError naming the parameter and the value."""
    async with actors.ActorSystem() as system:
        with pytest.raises(error, match=match):
            await system.spawn(Echo, **options)
        assert system.statistics().live == 0


async def test_bad_factories_are_refused() -> None:
    """A non-callable factory, or one that returns no Actor, raises TypeError."""
    async with actors.ActorSystem() as system:
        with pytest.raises(TypeError, match=r"`factory` must be callable \(got 42\)"):
            await system.spawn(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"must return an Actor instance \(got dict\)"):
            await system.spawn(dict)  # type: ignore[arg-type]
        with pytest.raises(actors.ActorNotFound):
            system.lookup("dict-1")


async def test_overflow_strings_are_converted() -> None:
    """The lowercase strings are converted to the Overflow enum."""
    async with actors.ActorSystem() as system:
        for text, member in [
            ("wait", actors.Overflow.WAIT),
            ("reject", actors.Overflow.REJECT),
            ("drop_oldest", actors.Overflow.DROP_OLDEST),
        ]:
            ref = await system.spawn(Echo, overflow=text)
            assert ref.statistics().overflow is member


@pytest.mark.parametrize(
    ("timeout", "error", "match"),
    [
        (-1, ValueError, r"`timeout` must be >= 0 \(got -1\)"),
        (math.nan, ValueError, r"`timeout` must be >= 0 \(got nan\)"),
        ("1", TypeError, r"`timeout` must be a number of seconds or None \(got '1'\)"),
    ],
)
async def test_bad_ask_timeout_names_the_value(
    timeout: Any,  # noqa: ASYNC109 - a parametrized value under test, not a deadline
    error: type[Exception],
    match: str,
) -> None:
    """ask(timeout=...) with a bad value raises naming the parameter and the value."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Echo)
        with pytest.raises(error, match=match):
            await ref.ask(1, timeout=timeout)
        assert ref.statistics().queued == 0


async def test_bad_grace_names_the_value() -> None:
    """stop/restart with a negative grace raise ValueError naming it."""
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Echo)
        with pytest.raises(ValueError, match=r"`grace` must be >= 0 \(got -2\)"):
            await system.stop(ref, grace=-2)
        with pytest.raises(TypeError, match=r"`grace` must be a number"):
            await system.restart(ref, grace="x")  # type: ignore[arg-type]


async def test_spawn_outside_an_open_system_is_refused() -> None:
    """spawn before entering or after leaving the system raises RuntimeError."""
    system = actors.ActorSystem()
    with pytest.raises(RuntimeError, match="not open"):
        await system.spawn(Echo)
    async with system:
        pass
    with pytest.raises(RuntimeError, match="not open"):
        await system.spawn(Echo)
    with pytest.raises(RuntimeError, match="only once"):
        await system.__aenter__()


def test_run_runs_main_in_a_fresh_system() -> None:
    """actors.run calls main(system, *args) inside trio.run and returns its result."""

    async def main(system: actors.ActorSystem, word: str) -> str:
        ref = await system.spawn(Greeter)
        result: str = await ref.ask(word)
        return result

    assert actors.run(main, "run") == "hello run"


def test_all_is_complete_and_public() -> None:
    """actors.__all__ lists every public name and nothing private."""
    public = {name for name in vars(actors) if not name.startswith("_")}
    modules = {name for name in public if isinstance(getattr(actors, name), type(trio))}
    assert set(actors.__all__) == public - modules
    assert all(not name.startswith("_") for name in actors.__all__)
    assert sorted(actors.__all__) == actors.__all__
    for name in actors.__all__:
        assert getattr(actors, name).__module__.startswith("actors")
    assert issubclass(actors.AskTimeout, TimeoutError)
    for error in (actors.MailboxFull, actors.ActorStopped, actors.AskTimeout, actors.NameTaken):
        assert issubclass(error, actors.ActorError)
