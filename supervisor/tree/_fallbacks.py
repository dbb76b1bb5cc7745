"""A guarded service's fallback (step 7 of the request path): the answer to a refusal or to the
last failure, by a default, the cache of earlier replies, or a degraded handler."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import trio

from ..observe._events import FallbackUsed
from ..rules._cache import MISS

if TYPE_CHECKING:
    from ._request_path import RequestPath

__all__ = ["answer_by_fallback"]


async def answer_by_fallback(service: RequestPath, request: Any, cause: Exception) -> Any:
    """The fallback's answer to ``request``, which failed or was refused with ``cause``, counted
    and published as :class:`~supervisor.observe._events.FallbackUsed`; ``MISS`` when there is
    nothing to answer with (no fallback, or a cache without a fresh reply to an equal request).

    Called while ``cause`` is being handled, so that an error of the degraded handler has it as
    its ``__context__`` (and propagates, unchanged).
    """
    fallback = service._fallback
    if fallback is None:  # pragma: no cover - the path checks first
        return MISS
    cache = service._cache
    if fallback.has_default:
        kind = "default"
        answer = fallback.default
    elif cache is not None:
        kind = "cache"
        try:
            answer = cache.get(request, trio.current_time())
        except TypeError:  # an unhashable request was never cached
            answer = MISS
        if answer is MISS:
            return MISS
    else:
        kind = "degraded"
        answer = fallback.degraded(request)  # type: ignore[misc]
        if inspect.isawaitable(answer):
            answer = await answer
    service.fallbacks += 1
    service._publish(
        FallbackUsed(path=service.path, at=trio.current_time(), kind=kind, cause=cause)
    )
    return answer
