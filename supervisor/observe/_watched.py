"""What the metrics need of the tree they watch: the tree satisfies these protocols, and the
metrics never import it (as OTP's supervisor reports to ``logger``, which knows nothing of
supervisors)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import attrs

if TYPE_CHECKING:
    from ._bus import EventBus
    from ._snapshot import NodeSnapshot

__all__ = ["ServiceFacts", "ServiceLoad", "WatchedTree"]


@attrs.frozen(kw_only=True)
class ServiceFacts:
    """What :class:`Metrics` needs to know of one guarded service, taken from its spec."""

    has_breaker: bool
    """Whether the service has a circuit breaker (its state then starts CLOSED)."""
    max_queued: int | None
    """The bulkhead's queue size (``None``: unknown)."""
    health_check: Callable[[], Any] | None = None
    """The service's health check, plain or async (``None``: none)."""
    health_interval: float | None = None
    """Seconds between checks (``None``: the default)."""


class ServiceLoad(Protocol):
    """The live load of one service: requests being handled and waiting."""

    @property
    def in_flight(self) -> int: ...

    @property
    def queued(self) -> int: ...

    # Optional: ``concurrency_limit`` (int or None), the adaptive limit, read when present.


class WatchedTree(Protocol):
    """What :class:`Metrics` needs of the tree it watches.

    :class:`~supervisor.Tree` satisfies it; any object with these members can be watched (a test
    double, another runtime). The metrics layer never imports the tree.
    """

    @property
    def events(self) -> EventBus[Any]: ...

    @property
    def name(self) -> str: ...

    @property
    def started_at(self) -> float: ...

    @property
    def failure(self) -> BaseException | None: ...

    def nodes(self) -> NodeSnapshot: ...

    def service_facts(self, path: str) -> ServiceFacts | None:
        """The facts of the service at ``path``, or ``None`` if there is none."""
        ...

    def service_load(self, path: str) -> ServiceLoad | None:
        """The live load of the service at ``path``, or ``None`` if there is none."""
        ...

    def start_background(self, fn: Callable[[], Awaitable[None]], *, name: str) -> None:
        """Run ``fn`` in the tree's nursery until the tree stops."""
        ...
