"""Rules on generator functions: how a decorator guards a generator, or why it cannot.

Calling a generator function runs none of its body: the work (and the failures) happen while it is
iterated. A wrapper that guarded the *call* would settle its outcome when the generator object is
made and guard nothing. So the wrapper of a generator function is itself a generator function (of
the same kind), and each rule says, with one of three values, how it applies:

* :class:`WholeIteration`: one guarded run spans the whole iteration, from the first step to
  exhaustion (a success), an error raised inside (a failure, propagated), or an early close by the
  consumer (``GeneratorExit``: neither). The circuit breaker works this way.
* :class:`UntilFirstItem`: the rule's own ``around`` runs over *starting* the iteration, up to
  the first item; the rest is delegated as is. Retry works this way (a generator that fails before
  its first item is made anew and retried; once an item was handed out, an error propagates, as
  the items cannot be taken back), and so does the throttle (the start of an iteration is what it
  admits).
* :class:`Refused`: decorating a generator function raises ``TypeError`` at decoration time,
  with the rule's reason.

``send``, ``throw`` and ``close`` (``asend``, ``athrow``, ``aclose``) reach the inner generator.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Literal, TypeAlias

import attrs

__all__ = [
    "GeneratorRule",
    "Refused",
    "UntilFirstItem",
    "WholeIteration",
    "generator_kind",
    "wrap_generator",
]

Settle: TypeAlias = Callable[[BaseException | None], None]


@attrs.frozen
class WholeIteration:
    """Guard the whole iteration as one call: ``open()`` is called at the first step (it may
    refuse by raising) and returns ``settle``, called once with the error that ended the
    iteration, or ``None`` when it was exhausted."""

    open: Callable[[], Settle]


@attrs.frozen
class UntilFirstItem:
    """Run the rule's ``around`` over starting the iteration, up to its first item."""


@attrs.frozen
class Refused:
    """The rule cannot guard a generator function; ``reason`` completes the ``TypeError``."""

    reason: str


GeneratorRule: TypeAlias = WholeIteration | UntilFirstItem | Refused


def generator_kind(fn: object) -> Literal["sync", "async"] | None:
    """``"async"`` for an async generator function, ``"sync"`` for a generator function (also
    partials of them and objects whose ``__call__`` is one), else ``None``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    call = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else getattr(fn, "__call__", None)  # noqa: B004 -- we want the bound __call__ itself
    if inspect.isasyncgenfunction(call):
        return "async"
    if inspect.isgeneratorfunction(call):
        return "sync"
    return None


def _nothing(_error: BaseException | None) -> None:
    return None


@attrs.frozen
class _Done:
    """A generator that was exhausted at its start, and the value it returned."""

    value: Any = None


Begin: TypeAlias = Callable[[tuple[Any, ...], dict[str, Any]], Any]


def _sync_wrapper(fn: Callable[..., Any], begin: Begin) -> Callable[..., Any]:
    """A generator function that starts with ``begin(args, kwargs) -> (gen, first, settle)``
    (``first`` a :class:`_Done` when ``gen`` ended at once), then delegates to ``gen`` and calls
    ``settle`` with the error that ended the iteration, or ``None``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        gen, item, settle = begin(args, kwargs)
        try:
            while not isinstance(item, _Done):
                try:
                    step = functools.partial(gen.send, (yield item))
                except GeneratorExit:
                    gen.close()
                    raise
                except BaseException as exc:  # thrown in by the consumer: passed on to gen
                    step = functools.partial(gen.throw, exc)
                try:
                    item = step()
                except StopIteration as stop:
                    item = _Done(stop.value)
        except BaseException as exc:
            settle(exc)
            raise
        settle(None)
        return item.value

    return wrapper


def _async_wrapper(fn: Callable[..., Any], begin: Begin) -> Callable[..., Any]:
    """The async form of :func:`_sync_wrapper` (``begin`` returns an awaitable)."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        agen, item, settle = await begin(args, kwargs)
        try:
            while not isinstance(item, _Done):
                try:
                    step = functools.partial(agen.asend, (yield item))
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as exc:  # thrown in by the consumer: passed on to agen
                    step = functools.partial(agen.athrow, exc)
                try:
                    item = await step()
                except StopAsyncIteration:
                    item = _Done()
        except BaseException as exc:
            settle(exc)
            raise
        settle(None)

    return wrapper


def _first_sync(gen: Generator[Any, Any, Any]) -> Any:
    try:
        return next(gen)
    except StopIteration as stop:
        return _Done(stop.value)


async def _first_async(agen: AsyncGenerator[Any, Any]) -> Any:
    try:
        return await agen.__anext__()
    except StopAsyncIteration:
        return _Done()


def _whole(fn: Callable[..., Any], kind: str, guard: WholeIteration) -> Callable[..., Any]:
    if kind == "async":

        async def begin_async(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            settle = guard.open()
            try:
                agen = fn(*args, **kwargs)
                return agen, await _first_async(agen), settle
            except BaseException as exc:
                settle(exc)
                raise

        return _async_wrapper(fn, begin_async)

    def begin_sync(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        settle = guard.open()
        try:
            gen = fn(*args, **kwargs)
            return gen, _first_sync(gen), settle
        except BaseException as exc:
            settle(exc)
            raise

    return _sync_wrapper(fn, begin_sync)


def _until_first(
    fn: Callable[..., Any], kind: str, around: Callable[..., Any]
) -> Callable[..., Any]:
    if kind == "async":

        async def begin_async(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            async def start() -> tuple[Any, Any]:
                agen = fn(*args, **kwargs)
                return agen, await _first_async(agen)

            agen, first = await around(start)
            return agen, first, _nothing

        return _async_wrapper(fn, begin_async)

    def begin_sync(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        def start() -> tuple[Any, Any]:
            gen = fn(*args, **kwargs)
            return gen, _first_sync(gen)

        gen, first = around(start)
        return gen, first, _nothing

    return _sync_wrapper(fn, begin_sync)


def wrap_generator(
    fn: Callable[..., Any],
    kind: Literal["sync", "async"],
    *,
    rule: str,
    how: GeneratorRule,
    around_async: Callable[..., Any],
    around_sync: Callable[..., Any] | None,
) -> Callable[..., Any]:
    """The generator function (of ``fn``'s kind) that iterates ``fn`` under ``rule``.

    Raises:
        TypeError: ``how`` is :class:`Refused`, or :class:`UntilFirstItem` for a plain generator
            function of a rule that has no plain form (the message says why).
    """
    what = "async generator function" if kind == "async" else "generator function"
    name = getattr(fn, "__qualname__", None) or repr(fn)
    if isinstance(how, Refused):
        raise TypeError(f"@{rule} cannot guard the {what} {name!r}: {how.reason}")
    if isinstance(how, WholeIteration):
        return _whole(fn, kind, how)
    if kind == "async":
        return _until_first(fn, kind, around_async)
    if around_sync is None:
        raise TypeError(
            f"@{rule} cannot guard the {what} {name!r}: it needs trio, so only an async "
            "generator function (`async def` with `yield`)"
        )
    return _until_first(fn, kind, around_sync)
