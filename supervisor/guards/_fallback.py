"""Fallbacks: answer a failed call with a default value, a cached result, or a degraded handler.

All four decorators work on ``async def`` functions, methods and plain ``def`` functions. Only
``Exception`` s that are instances of ``exceptions`` are replaced; ``trio.Cancelled``,
``KeyboardInterrupt``, ``SystemExit`` and every other ``BaseException`` always propagate.

The cache of :func:`cache_fallback` is a pure core, :class:`TtlLruCache`, driven with the current
time passed in; the supervision tree uses the same core for a service's last good value.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final, ParamSpec, TypeVar

import trio

from .._config import COUNT, DURATION, UNSET, Unset
from .._errors import shown
from ..rules._cache import MISS, CacheStatistics, TtlLruCache
from ._decorate import decorate, is_async_callable
from ._generators import Refused, generator_kind

P = ParamSpec("P")
R = TypeVar("R")

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


def _exception_types(exceptions: object) -> tuple[type[BaseException], ...]:
    """Normalise ``exceptions`` to a tuple of exception classes; raise :class:`TypeError`."""
    items = exceptions if isinstance(exceptions, tuple) else (exceptions,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(
                "`exceptions` must be an exception class or a tuple of them "
                f"(got {shown(exceptions)})"
            )
    return items


_NO_GENERATORS: Final = Refused(
    "items already handed out cannot be taken back, so a failure while iterating has nothing to "
    "fall back to; decorate a function that returns the collected items"
)

# --------------------------------------------------------------------------------------------------
# fallback / default_fallback


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "<required unless default_factory>"


_MISSING = _Missing.MISSING


def fallback(
    default_value: Any = _MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    exceptions: ExceptionTypes = (Exception,),
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """On a failure in ``exceptions``, return ``default_value`` (or ``default_factory()``).

    ``default_factory`` is called anew for each failure (so a mutable default is never shared).
    Exceptions not in ``exceptions``, and every ``BaseException`` that is not an ``Exception``
    (``trio.Cancelled``, ``KeyboardInterrupt``, ...), propagate unchanged.

    Raises:
        TypeError: when ``fallback(...)`` is called with both a default value and a factory, with
            neither (``default_factory=None`` counts as not given), with a factory that is not
            callable, or with ``exceptions`` that are not exception classes.
    """
    if default_value is not _MISSING and default_factory is not None:
        raise TypeError("fallback() takes a default value or a `default_factory`, not both")
    if default_value is _MISSING and default_factory is None:
        raise TypeError("fallback() needs a default value or a `default_factory`")
    if default_factory is not None and not callable(default_factory):
        raise TypeError(f"`default_factory` must be callable (got {shown(default_factory)})")
    types = _exception_types(exceptions)

    def produce() -> Any:
        return default_factory() if default_factory is not None else default_value

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        async def around_async(call: Callable[[], Awaitable[Any]]) -> Any:
            try:
                return await call()
            except Exception as exc:
                if isinstance(exc, types):
                    return produce()
                raise

        def around_sync(call: Callable[[], Any]) -> Any:
            try:
                return call()
            except Exception as exc:
                if isinstance(exc, types):
                    return produce()
                raise

        return decorate(
            fn,
            rule="fallback",
            around_async=around_async,
            around_sync=around_sync,
            generators=_NO_GENERATORS,
        )

    return decorator


def default_fallback(value: Any) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The same as ``fallback(default_value=value)``: on any ``Exception``, return ``value``."""
    return fallback(default_value=value)


# --------------------------------------------------------------------------------------------------
# degraded_fallback


def degraded_fallback(
    alternative: Callable[..., Any],
    *,
    exceptions: ExceptionTypes = (Exception,),
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """On a failure in ``exceptions``, return ``alternative(*args, **kwargs)`` (same arguments).

    ``alternative`` may be plain or async for an ``async def`` function (an awaitable result is
    awaited); for a plain function it must be plain. An exception raised by ``alternative``
    propagates (with the original failure as its ``__context__``).

    Raises:
        TypeError: ``alternative`` is not callable or ``exceptions`` are not exception classes
            (when ``degraded_fallback(...)`` is called); an async ``alternative`` for a plain
            function (at decoration time).
    """
    if not callable(alternative):
        raise TypeError(f"`alternative` must be callable (got {shown(alternative)})")
    types = _exception_types(exceptions)

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        async def around_async(call: Callable[[], Awaitable[Any]]) -> Any:
            try:
                return await call()
            except Exception as exc:
                if not isinstance(exc, types):
                    raise
            args, kwargs = _arguments(call, fn)
            result = alternative(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        def around_sync(call: Callable[[], Any]) -> Any:
            try:
                return call()
            except Exception as exc:
                if not isinstance(exc, types):
                    raise
            args, kwargs = _arguments(call, fn)
            return alternative(*args, **kwargs)

        if (
            generator_kind(fn) is None
            and not is_async_callable(fn)
            and is_async_callable(alternative)
        ):
            raise TypeError(
                f"degraded_fallback: the alternative {shown(alternative)} is async but "
                f"{getattr(fn, '__qualname__', fn)!r} is a plain function"
            )
        return decorate(
            fn,
            rule="degraded_fallback",
            around_async=around_async,
            around_sync=around_sync,
            generators=_NO_GENERATORS,
        )

    return decorator


def _arguments(call: Callable[..., Any], fn: object) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The caller's arguments, read from the zero-argument partial that :func:`decorate` hands a
    rule (``functools.partial`` flattens a decorated partial ``fn``: its own arguments are
    removed again)."""
    if not isinstance(call, functools.partial):
        return (), {}
    args, kwargs = call.args, dict(call.keywords)
    if isinstance(fn, functools.partial):
        args = args[len(fn.args) :]
        for name, value in fn.keywords.items():
            if kwargs.get(name, _MISSING) is value:
                del kwargs[name]
    return args, kwargs


_KWARGS_MARK = object()


def _default_key(*args: Any, **kwargs: Any) -> Hashable:
    if not kwargs:
        return args
    return (*args, _KWARGS_MARK, *sorted(kwargs.items()))


class _CacheShell:
    """Per-decorated-function cache state: the core plus trio time and run tracking."""

    __slots__ = ("_clock", "_key", "_run", "cache", "fn", "missed", "served")

    def __init__(
        self,
        fn: object,
        ttl: float,
        maxsize: int,
        key: Callable[..., Hashable] | None,
        clock: Callable[[], float] | None,
    ) -> None:
        self.fn = fn
        self.cache: TtlLruCache[Hashable, Any] = TtlLruCache(ttl, maxsize)
        self._key = key if key is not None else _default_key
        self._clock = clock
        self._run: object = None
        self.served = 0
        self.missed = 0

    def now(self) -> float:
        if self._clock is not None:
            return self._clock()
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            token = None
        if token is not self._run:
            # trio times of different runs are unrelated: never serve across runs.
            self._run = token
            self.cache.clear()
        return trio.current_time() if token is not None else 0.0

    def key_of(self, call: Callable[..., Any]) -> Hashable | None:
        args, kwargs = _arguments(call, self.fn)
        key = self._key(*args, **kwargs)
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def store(self, call: Callable[..., Any], value: Any) -> None:
        key = self.key_of(call)
        if key is not None:
            self.cache.put(key, value, self.now())

    def lookup(self, call: Callable[..., Any]) -> Any:
        key = self.key_of(call)
        if key is None:
            self.missed += 1
            return MISS
        value = self.cache.get(key, self.now())
        if value is MISS:
            self.missed += 1
        else:
            self.served += 1
        return value

    def statistics(self) -> CacheStatistics:
        return CacheStatistics(
            size=len(self.cache),
            maxsize=self.cache.maxsize,
            ttl=self.cache.ttl,
            served=self.served,
            missed=self.missed,
        )


def cache_fallback(
    ttl: float | Unset = UNSET,
    *,
    maxsize: int | Unset = UNSET,
    key: Callable[..., Hashable] | None = None,
    exceptions: ExceptionTypes = (Exception,),
    clock: Callable[[], float] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Serve the last good result when a call fails.

    Every success stores its result under a key made from the call's arguments (positional
    arguments plus sorted keyword arguments; ``self`` included for a method), or under
    ``key(*args, **kwargs)`` when ``key`` is given. On a failure in ``exceptions``, the value
    stored under the call's key is returned if it is at most ``ttl`` (default 300) seconds old (a
    value exactly ``ttl`` old is still served), else the failure is re-raised. At most ``maxsize``
    (default 1024) entries are kept per decorated function; the least recently used go first.

    Ages are trio times (:func:`trio.current_time`); values are never served across separate
    ``trio.run`` calls, whose clocks are unrelated. A plain function called outside ``trio.run``
    has no trio clock: pass ``clock`` (a function returning seconds) to measure ages there;
    without it such values never expire by age (``maxsize`` still bounds the cache). A call whose
    key is not hashable is not cached (its failures propagate). The decorated function exposes
    ``fn.cache_statistics()``.

    Raises:
        ConfigError: at once, for ``ttl`` not > 0 or ``maxsize`` not an integer >= 1.
        TypeError: at once, for a ``key`` or ``clock`` that is not callable or ``exceptions``
            that are not exception classes.
    """
    resolved_ttl = DURATION.resolve("ttl", ttl, env=None, default=300.0)
    resolved_size = COUNT.resolve_int("maxsize", maxsize, env=None, default=1024)
    if key is not None and not callable(key):
        raise TypeError(f"`key` must be callable (got {shown(key)})")
    if clock is not None and not callable(clock):
        raise TypeError(f"`clock` must be callable (got {shown(clock)})")
    types = _exception_types(exceptions)

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        shell = _CacheShell(fn, resolved_ttl, resolved_size, key, clock)

        def recover(error: Exception, call: Callable[..., Any]) -> Any:
            # The stored answer to ``call``'s arguments, else ``error`` goes on.
            if not isinstance(error, types):
                raise error
            value = shell.lookup(call)
            if value is MISS:
                raise error
            return value

        async def around_async(call: Callable[[], Awaitable[Any]]) -> Any:
            try:
                result = await call()
            except Exception as exc:
                return recover(exc, call)
            shell.store(call, result)
            return result

        def around_sync(call: Callable[[], Any]) -> Any:
            try:
                result = call()
            except Exception as exc:
                return recover(exc, call)
            shell.store(call, result)
            return result

        return decorate(
            fn,
            rule="cache_fallback",
            around_async=around_async,
            around_sync=around_sync,
            extra={"cache_statistics": shell.statistics},
            generators=_NO_GENERATORS,
        )

    return decorator
