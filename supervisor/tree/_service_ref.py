"""The handle callers use to reach a guarded service: its request path on the caller's side."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .._config import UNSET, Unset
from ..guards._breaker import CircuitBreaker

if TYPE_CHECKING:
    from ._service import GuardedService, ServiceStatistics


class ServiceRef:
    """The public handle on a guarded service of a supervision tree.

    It stays valid across restarts of the service actor (and of its supervisor): requests always
    go to the live actor.
    """

    __slots__ = ("__weakref__", "_service")

    def __init__(self, service: GuardedService) -> None:
        self._service = service

    @property
    def path(self) -> str:
        """The service's path in the tree, e.g. ``"app/backend/payments"``."""
        return self._service.path

    @property
    def name(self) -> str:
        """The service's name (the last part of its path)."""
        return self._service.spec.name

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The service's :class:`~supervisor.CircuitBreaker` (named after the path), or ``None``.

        Its ``state``, ``add_listener``, ``reset()`` and ``force_open()`` act on the very breaker
        the requests go through.
        """
        return self._service.breaker

    def statistics(self) -> ServiceStatistics:
        """A snapshot: breaker state, requests in flight and queued, and totals."""
        return self._service.statistics()

    def __repr__(self) -> str:
        return f"<ServiceRef {self._service._describe()}>"

    def call(
        self, request: Any, *, timeout: float | Unset | None = UNSET
    ) -> Coroutine[Any, Any, Any]:
        """``await service.call(request, timeout=...)``: send ``request`` to the service through
        its rules and return the answer.

        The path (see the module docstring): throttle, breaker, bulkhead, ask, outcome, retries,
        fallback. With ``bulkhead.adaptive``, a request over the adaptive limit waits on the
        caller's side for a slot (an :class:`~actors.AskTimeout` when the deadline passes
        there); with ``hedge``, a slow attempt gets hedges beside it, each admitted and counted
        on its own, and the first answer wins (see ``docs/rules.md``). ``timeout`` (seconds > 0,
        or ``None`` for no limit; default: the spec's ``timeout``) bounds the whole call:
        throttle waits, queueing, every attempt and every retry delay. No retry delay reaches
        past it.

        Returns:
            The service actor's reply, or the fallback's answer (a ``default``, the cached reply
            to an equal request at most ``cache_ttl`` old, or ``degraded(request)``'s result,
            awaited if it is awaitable), when a rule refused the call or its last attempt failed.

        Raises:
            ConfigError: ``timeout`` is not a number > 0 or ``None`` (a ``ValueError``; nothing
                is admitted).
            RateLimitExceeded: a throttle with ``on_limit="raise"`` refused the call.
            OperationTimeout: a throttle with ``on_limit="wait"`` gave no turn before the
                deadline (a refusal, published as ``RequestRefused`` with ``RATE_LIMITED``).
            CircuitOpenError: the breaker refused the call.
            BulkheadFullError: ``max_concurrent + max_queued`` requests were already admitted.
            Exception: the last attempt's failure, unchanged: the handler's own exception (the
                actor crashed with it), :class:`~actors.AskTimeout` (the deadline passed while
                the request was queued or handled), :class:`~actors.ActorStopped`, ...

            With a fallback, each of these is answered by it instead, except where the cache
            has no fresh answer (the error is raised) or the degraded handler raises (its error
            propagates, with the original one in its ``__context__``). Refusals are never
            retried.

        Cancellation: ``trio.Cancelled`` (and every ``BaseException`` that is not an
        ``Exception``) propagates unchanged, never counted, retried or answered by the fallback;
        the breaker's trial slot, the bulkhead place and the throttle queue place are given back;
        a request still queued in the mailbox is withdrawn (one being handled runs on, its reply
        discarded).
        """
        # A plain function handing back the service's coroutine: one frame less per call.
        return self._service.call(request, timeout)
