"""The ``logging`` exporter: a bus listener that logs each event with structured ``extra``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._describe import describe_event

if TYPE_CHECKING:
    pass


class EventLogger:
    """A bus listener that logs each event at ``level`` (default INFO) on ``logger`` (default
    the ``"supervisor.events"`` logger), as ``"<kind> <path>: <detail>"``.

    The record's ``extra`` carries ``event_kind``, ``event_path``, ``event_at`` and
    ``event_detail`` (the :class:`EventSnapshot` fields) and ``event`` (the event object itself),
    for structured log handlers. Add it with ``tree.events.add_listener(EventLogger())``.
    """

    __slots__ = ("level", "logger")

    def __init__(self, logger: logging.Logger | None = None, *, level: int = logging.INFO) -> None:
        self.logger = logger if logger is not None else logging.getLogger("supervisor.events")
        self.level = level

    def __repr__(self) -> str:
        return f"<EventLogger {self.logger.name!r} at {logging.getLevelName(self.level)}>"

    def __call__(self, event: object) -> None:
        """Log ``event`` (only if the logger is enabled for the level)."""
        if not self.logger.isEnabledFor(self.level):
            return
        text = describe_event(event)
        self.logger.log(
            self.level,
            "%s %s: %s",
            text.kind,
            text.path,
            text.detail,
            extra={
                "event_kind": text.kind,
                "event_path": text.path,
                "event_at": text.at,
                "event_detail": text.detail,
                "event": event,
            },
        )
