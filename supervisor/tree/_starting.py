"""How a supervisor makes a child's instance: the factory with its arguments, ``ignore``, and
the request errors of a service that are answered instead of crashing its actor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import actors

from ._otp import IGNORE, Ignore

__all__ = ["Answered", "instance_factory"]


class Answered:
    """A request error of a service handler, carried back as the ask's value (so the actor does
    not crash); the service's request path raises ``error`` in the caller."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"<Answered {self.error!r}>"


class _Answering(actors.Actor[Any]):
    """A service actor whose handler errors of ``errors`` answer the request instead of
    crashing: it delegates every hook and message to the user's instance."""

    __slots__ = ("_errors", "_inner")

    def __init__(self, inner: actors.Actor[Any], errors: tuple[type[Exception], ...]) -> None:
        self._inner = inner
        self._errors = errors

    def _share_context(self) -> None:
        self._inner._actor_context = self._actor_context

    async def on_start(self) -> None:
        self._share_context()
        await self._inner.on_start()

    async def on_restart(self, error: Exception | None) -> None:
        self._share_context()
        await self._inner.on_restart(error)

    async def on_stop(self, reason: BaseException | None) -> None:
        await self._inner.on_stop(reason)

    async def receive(self, message: Any) -> Any:
        try:
            return await self._inner.receive(message)
        except self._errors as exc:
            return Answered(exc)


def instance_factory(
    factory: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    request_errors: tuple[type[Exception], ...] = (),
) -> Callable[[], Any]:
    """The factory the actor system calls at each start and restart of a child.

    It calls ``factory(*args, **kwargs)``; a result that is :data:`IGNORE` raises
    :class:`Ignore` (so ``spawn`` and ``restart`` raise it, and the supervisor keeps the child
    terminated). With ``request_errors``, the instance is wrapped so that a handler error of those
    types answers its request (as :class:`Answered`) instead of crashing the actor.
    """

    def make() -> Any:
        instance = factory(*args, **kwargs)
        if instance is IGNORE:
            raise Ignore(f"{getattr(factory, '__qualname__', factory)!r} said ignore")
        if request_errors and isinstance(instance, actors.Actor):
            return _Answering(instance, request_errors)
        return instance

    make.__name__ = getattr(factory, "__name__", "factory")
    return make
