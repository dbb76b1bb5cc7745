"""A guarded service's hedged attempts (``ServiceSpec.hedge``): the attempt of a request, and
hedges of it, raced with :func:`~supervisor.guards._hedge.race`.

Each hedge is admitted as an attempt of its own, without a refusal: it needs the breaker closed
(a half-open breaker's trial slots are not spent on hedges) and a free bulkhead slot (a hedge
never queues: queued behind others it could not be faster). A hedge that cannot be admitted when
due is skipped. Every attempt's outcome feeds the breaker once, when it ends: the winner's
success, each failure; a loser, cancelled or answering after the winner, counts as nothing (its
slot and permit are given back). The request's own events (one
``RequestCompleted``, or ``RequestFailed`` with the last failure) are published by the request
path as for any attempt; the hedges add :class:`~supervisor.cores.HedgeLaunched` and one
:class:`~supervisor.cores.HedgeSettled`, on the tree's bus, with the service's path as ``name``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from ..guards._hedge import race
from ..rules._hedge import HedgeLaunched
from ._limits import wait_within_limit

if TYPE_CHECKING:
    from ..rules._breaker import Permit
    from ._request_path import RequestPath


class _AttemptFailed(Exception):
    """Carries one attempt's failure through the race (the failure itself is never re-raised
    from another task, so its traceback stays its own)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def _admit_hedge(service: RequestPath, now: float) -> Permit | bool | None:
    # A permit (or None without a breaker) and a running slot, or False: skip this hedge.
    core = service._core
    permit = None
    if core is not None:
        permit = core.free_permit
        if permit is None:
            return False
    if not service._bulkhead.try_enter():
        return False
    return permit


async def hedged_attempt(
    service: RequestPath,
    request: Any,
    *,
    now: float,
    deadline: float,
    permit: Permit | None,
    ticket: trio.lowlevel.Task | None,
) -> tuple[bool, Any]:
    """One attempt of ``request`` (already admitted: ``permit``, ``ticket``) and its hedges.

    Returns ``(True, reply)`` from the first attempt answered, or ``(False, error)`` with the
    last failure when every attempt failed; every attempt's slot is given back and its outcome
    already counted on the breaker. Cancellation: every attempt is cancelled (counting nothing)
    and ``trio.Cancelled`` propagates.
    """
    hedge = service._hedge
    if hedge is None:  # pragma: no cover - the request path checks first
        return await service._ask_holding(request, now, deadline, permit, ticket)
    if ticket is not None and service._adaptive is not None:
        # Queued behind an adaptive limit: wait for the slot here, where the ticket (this task)
        # is parked and woken, before the first attempt starts in a task of its own.
        try:
            expired = await wait_within_limit(service, ticket, now=now, deadline=deadline)
        except BaseException:
            if permit is not None:
                service._core.release(permit)  # type: ignore[union-attr]
            raise
        if expired is not None:
            service._failed(permit, expired, trio.current_time())  # counted here, as any attempt
            return False, expired
        ticket = None
        now = trio.current_time()
    run = hedge.start(now, deadline=deadline)
    path = service.path
    bus = service._bus

    def attempt(
        held: Permit | None, place: trio.lowlevel.Task | None
    ) -> Callable[[], Awaitable[Any]]:
        async def one() -> Any:
            ok, outcome = await service._ask_holding(
                request, trio.current_time(), deadline, held, place
            )
            at = trio.current_time()
            if ok:
                # The race makes this attempt the winner, with no checkpoint in between, unless
                # another already won: a late answer is a loser, and counts nothing.
                if run.winner is None:
                    service._count_success(held, at, outcome)
                elif held is not None:
                    service._core.release(held)  # type: ignore[union-attr]
                return outcome
            service._failed(held, outcome, at)
            raise _AttemptFailed(outcome)

        return one

    def admit(number: int) -> Callable[[], Awaitable[Any]] | None:
        if number == 0:
            return attempt(permit, ticket)
        held = _admit_hedge(service, trio.current_time())
        return None if held is False else attempt(held, None)  # type: ignore[arg-type]

    def launched(number: int, at: float, reason: str) -> None:
        bus.publish(HedgeLaunched(name=path, at=at, hedge=number, after=at - now, reason=reason))

    try:
        result = await race(
            run, admit, counts=lambda exc: isinstance(exc, _AttemptFailed), launched=launched
        )
    except _AttemptFailed as failed:
        outcome: tuple[bool, Any] = (False, failed.error)
    else:
        outcome = (True, result)
    settled = run.settle(path, trio.current_time())
    if settled is not None:
        bus.publish(settled)
    return outcome
