"""The supervision hook: the seam a supervisor outside this package plugs into."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._ref import ActorRef

__all__ = ["SupervisorHook"]


class SupervisorHook(Protocol):
    """What ``spawn(..., supervisor=hook)`` expects of ``hook``.

    See the :mod:`actors` module docstring for the full contract.
    """

    def child_failed(self, ref: ActorRef[Any], error: Exception) -> None:
        """Called synchronously, in the child's task, when ``receive`` raised ``error``.

        By then the child is ``SUSPENDED``: its instance is gone, its user messages stay queued,
        and it waits for ``await system.restart(ref)`` or ``await system.stop(ref)``. The method
        must not block (it is not async); schedule the decision, e.g. by ``tell`` to the
        supervisor's own actor or by a memory channel. If it raises an ``Exception``, the child
        is stopped with that exception as its stop reason. For a child spawned with
        ``max_concurrency`` > 1 it is called once the child's other handlers in flight have
        finished, with the first error. It is not called for a crash while a stop, restart or
        suspension of the child is already pending.
        """
        ...
