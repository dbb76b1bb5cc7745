"""The events of a store: its server became unreachable, or reachable again."""

from __future__ import annotations

import attrs

__all__ = ["StoreEvent", "StoreRecovered", "StoreUnavailable"]


@attrs.frozen(kw_only=True)
class StoreUnavailable:
    """The store could not reach its server: every rule of the store now decides locally."""

    url: str
    """The server's URL, without its password."""
    at: float
    """The trio time the failure was seen."""
    error: str
    """What failed (the error's type and message)."""


@attrs.frozen(kw_only=True)
class StoreRecovered:
    """The store reached its server again: its rules follow the fleet again after a resync."""

    url: str
    """The server's URL, without its password."""
    at: float
    """The trio time the server answered again."""
    down_for: float
    """Seconds the server was unreachable."""


StoreEvent = StoreUnavailable | StoreRecovered
"""Any event of a store."""
