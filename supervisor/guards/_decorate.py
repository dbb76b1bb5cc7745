"""The one way every rule turns itself into a decorator.

A rule supplies how to run *around* a call (an async form, and a sync form where the rule
makes sense for plain functions); :func:`decorate` does the rest once for all of them: it picks
the form that fits the function, keeps :func:`functools.wraps` metadata, and refuses at
decoration time a plain function the rule cannot guard. A generator function (plain or async) is
guarded while it is iterated, as the rule's ``generators`` value says (``_generators.py``), or
refused with the rule's reason.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Final, ParamSpec, Protocol, TypeVar

from .._errors import shown
from ._generators import GeneratorRule, Refused, generator_kind, wrap_generator

__all__ = ["AsyncAround", "SyncAround", "decorate", "is_async_callable", "qualname_of"]

P = ParamSpec("P")
R = TypeVar("R")


class AsyncAround(Protocol):
    """Runs ``call`` (a zero-argument coroutine function) under a rule and returns its result."""

    def __call__(self, call: Callable[[], Awaitable[Any]], /) -> Awaitable[Any]: ...


class SyncAround(Protocol):
    """Runs ``call`` (a zero-argument plain function) under a rule and returns its result."""

    def __call__(self, call: Callable[[], Any], /) -> Any: ...


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns an awaitable we should await (coroutine functions, partials of
    them, and objects whose ``__call__`` is one)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 -- we want the bound __call__ itself
    return call is not None and not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)


_NO_GENERATORS: Final = Refused("this rule does not apply to an iteration")


def decorate(
    fn: Callable[P, R],
    *,
    rule: str,
    around_async: AsyncAround,
    around_sync: SyncAround | None,
    extra: dict[str, object] | None = None,
    generators: GeneratorRule = _NO_GENERATORS,
) -> Callable[P, R]:
    """Wrap ``fn`` so that each call runs under ``around_async`` (or ``around_sync``).

    Args:
        fn: the function or method to guard.
        rule: the rule's name, for the error message.
        around_async: used when ``fn`` is a coroutine function.
        around_sync: used for a plain function; ``None`` where the rule cannot guard one.
        extra: attributes to set on the wrapper (``breaker`` for ``circuit_breaker``, ...).
        generators: how a generator function (plain or async) is guarded: over its whole
            iteration, up to its first item, or refused (see ``_generators.py``). The wrapper of
            a generator function is a generator function of the same kind.

    Raises:
        TypeError: ``fn`` is not callable; a plain function and ``around_sync`` is ``None``; a
            generator function the rule refuses (the message says why).
    """
    if not callable(fn):
        raise TypeError(f"@{rule} decorates a callable (got {shown(fn)})")
    wrapper: Callable[..., Any]
    kind = generator_kind(fn)
    if kind is not None:
        wrapper = wrap_generator(
            fn,
            kind,
            rule=rule,
            how=generators,
            around_async=around_async,
            around_sync=around_sync,
        )
    elif is_async_callable(fn):
        async_fn: Callable[..., Awaitable[Any]] = fn  # type: ignore[assignment]

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await around_async(functools.partial(async_fn, *args, **kwargs))

        wrapper = async_wrapper
    else:
        if around_sync is None:
            raise TypeError(
                f"@{rule} needs an `async def` function; {getattr(fn, '__qualname__', fn)!r} is "
                "a plain function"
            )
        sync_around = around_sync

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            return sync_around(functools.partial(fn, *args, **kwargs))

        wrapper = sync_wrapper
    for attr, value in (extra or {}).items():
        setattr(wrapper, attr, value)
    return wrapper  # type: ignore[return-value]


def qualname_of(fn: object) -> str:
    """The name a per-function rule takes from the function it decorates."""
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))
