"""A guarded service's adaptive concurrency limit: its bulkhead's slots follow latency.

With ``BulkheadSpec.adaptive`` set, the service's bulkhead core is the one of an
:class:`~supervisor.AdaptiveBulkhead` (named after the service's path) capped at
``max_concurrent``. Admission and refusal stay as for any service (step 4 of the request path);
what changes is that a request admitted to the queue waits *on the caller's side* until a slot
is handed to it (the actor can run up to ``max_concurrent`` at once, but the limit may be lower),
and that every answered or failed request then feeds the limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from actors import AskTimeout

from ..guards._adaptive import AdaptiveBulkhead
from ..guards._bulkhead import wait_for_slot

if TYPE_CHECKING:
    from ..rules._breaker import Permit
    from ._request_path import RequestPath
    from ._rule_specs import BulkheadSpec


def adaptive_bulkhead_for(spec: BulkheadSpec, path: str) -> AdaptiveBulkhead | None:
    """The adaptive bulkhead of a service whose bulkhead spec asks for one, else ``None``."""
    adaptive = spec.adaptive
    if adaptive is None:
        return None
    return AdaptiveBulkhead(
        path, max_limit=spec.max_concurrent, max_queued=spec.max_queued, **adaptive.options()
    )


async def wait_within_limit(
    service: RequestPath, ticket: trio.lowlevel.Task, *, now: float, deadline: float
) -> AskTimeout | None:
    """Wait, queued as ``ticket`` (the current task), until the adaptive bulkhead hands this
    request a slot; ``None`` once it holds one, or the :class:`~actors.AskTimeout` to fail with
    when the deadline passed first (the ticket is then withdrawn, holding nothing).

    Cancellation: the ticket is withdrawn and ``trio.Cancelled`` propagates.
    """
    adaptive: AdaptiveBulkhead = service._adaptive  # type: ignore[assignment]
    with trio.move_on_at(deadline):
        await wait_for_slot(adaptive.core, ticket)
        return None
    return AskTimeout(service.path, deadline - now)


async def ask_within_limit(
    service: RequestPath,
    request: Any,
    *,
    now: float,
    deadline: float,
    permit: Permit | None,
    ticket: trio.lowlevel.Task | None,
) -> tuple[bool, Any]:
    """Step 5 of a service with an adaptive limit (``RequestPath._ask_holding``'s contract):
    a queued request (``ticket``) first waits for a slot, within the deadline
    (:func:`wait_within_limit`); then it is asked, and its outcome feeds the limit (latency from
    getting the slot to the answer; any failure, the actor's errors and timeouts included,
    shrinks it).

    Returns ``(True, reply)`` or ``(False, error)``, the slot given back, the breaker's
    ``permit`` left to count. A deadline that passes while waiting for a slot is an
    :class:`~actors.AskTimeout`, as it is for a request that expires in a mailbox.

    Cancellation: the request leaves the queue or gives its slot back (counting nothing for the
    limit), the permit is released, and ``trio.Cancelled`` propagates.
    """
    adaptive: AdaptiveBulkhead = service._adaptive  # type: ignore[assignment]
    try:
        if ticket is not None:
            expired = await wait_within_limit(service, ticket, now=now, deadline=deadline)
            if expired is not None:
                return False, expired
        started = trio.current_time()
        try:
            result = await service._ask(request, started, deadline)
        except BaseException as exc:
            adaptive.finish(started, exc)
            if isinstance(exc, Exception):
                return False, exc
            raise
        else:
            adaptive.finish(started, None)
            return True, result
    except BaseException:
        if permit is not None:
            service._core.release(permit)  # type: ignore[union-attr]
        raise
