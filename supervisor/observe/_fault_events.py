"""The event of an injected fault (see :class:`~supervisor.Fault`), on the tree's bus like every
other transition, so that the monitor, the logs and tests see the chaos beside its effects."""

from __future__ import annotations

import attrs

from ..rules._faults import Fault, FaultKind, FaultPoint
from ._events import TreeEvent

__all__ = ["FaultInjected"]


@attrs.frozen(kw_only=True)
class FaultInjected(TreeEvent):
    """A fault fired in the service at ``path``: one event per fault that fired (a latency fault
    and an error fault firing on the same request are two events)."""

    fault: Fault
    """The fault that fired."""
    point: FaultPoint
    """Where: around a request, or around a start of the service actor."""

    @property
    def kind(self) -> FaultKind:
        """What the fault does (error, latency or result)."""
        return self.fault.kind
