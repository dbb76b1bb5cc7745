"""One service's recent history, from the snapshots a monitor receives (pure, bounded)."""

from __future__ import annotations

import collections
import math
from typing import Final

import attrs

from .._errors import ConfigError
from ..observe._snapshot import ServiceSnapshot, SystemSnapshot

WINDOW: Final = 60
"""Seconds of history kept: one sample per second of trio time, the last one of that second."""

_TRANSITION: Final = "CircuitStateChange"


@attrs.frozen(kw_only=True)
class Sample:
    """What one snapshot said of the watched service."""

    at: float
    """Trio time of the snapshot."""
    calls_per_second: float
    """Its ``calls_per_second``."""
    p99: float
    """Its 99th percentile latency, milliseconds."""
    error_rate: float
    """Its ``error_rate`` (0 to 1)."""


@attrs.frozen(kw_only=True)
class Transition:
    """A change of the watched service's breaker, as the events said it."""

    at: float
    """Trio time of the change."""
    detail: str
    """The event's detail (``breaker closed -> open (failure_threshold)``)."""


def resolve(name: str, snapshot: SystemSnapshot) -> ServiceSnapshot | str:
    """The service of ``snapshot`` that ``name`` designates (its path, its path below the root,
    or its last part if only one service has it), else the reason none does, as text."""
    prefix = f"{snapshot.tree.path}/"
    matches = [
        service
        for service in snapshot.services
        if name in (service.path, service.path.removeprefix(prefix))
    ]
    if not matches:
        matches = [s for s in snapshot.services if s.path.rpartition("/")[2] == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        paths = ", ".join(service.path for service in matches)
        return f"{name!r} is ambiguous: {paths}; give the path"
    known = ", ".join(s.path.removeprefix(prefix) for s in snapshot.services) or "none"
    return f"no service named {name!r} (services: {known})"


class ServiceHistory:
    """The last :data:`WINDOW` seconds of one service: a ring of one sample per second and the
    last ``max_transitions`` changes of its breaker (memory bounded whatever the run length).

    Args:
        name: the service to watch (see :func:`resolve`).
        max_transitions: breaker changes kept (>= 1).

    Raises:
        ConfigError: ``name`` is empty, or ``max_transitions`` < 1.

    Pure: fed snapshots by :meth:`record`, it reads no clock; time is each snapshot's ``at``.
    """

    def __init__(self, name: str, *, max_transitions: int = 10) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"`watch` must name a service (got {name!r})")
        if isinstance(max_transitions, bool) or not isinstance(max_transitions, int):
            raise ConfigError(
                f"`max_transitions` must be an integer >= 1 (got {max_transitions!r})"
            )
        if max_transitions < 1:
            raise ConfigError(f"`max_transitions` must be >= 1 (got {max_transitions})")
        self.name = name
        self.path: str | None = None
        """The watched service's path, once a snapshot had it."""
        self.problem: str | None = None
        """Why the last snapshot had no such service (``None`` when it had)."""
        self.current: ServiceSnapshot | None = None
        """The service in the last snapshot that had it."""
        self._slots: dict[int, Sample] = {}
        self._transitions: collections.deque[Transition] = collections.deque(maxlen=max_transitions)
        self._now = -math.inf

    def __repr__(self) -> str:
        return (
            f"<ServiceHistory {self.name!r} {len(self._slots)} samples, "
            f"{len(self._transitions)} transitions>"
        )

    def record(self, snapshot: SystemSnapshot) -> bool:
        """Take the watched service's numbers and new breaker changes from ``snapshot``;
        ``False`` (and :attr:`problem` set) when it has no such service, or its time is not
        finite (a server's JSON may say ``NaN``). A snapshot older than
        one already recorded is ignored (``True``)."""
        found = resolve(self.name, snapshot)
        if isinstance(found, str):
            self.problem = found
            return False
        if not math.isfinite(snapshot.at):  # a server's JSON may say NaN or Infinity
            self.problem = f"the snapshot's time is not a finite number ({snapshot.at!r})"
            return False
        self.problem = None
        if snapshot.at < self._now:
            return True
        self._now = snapshot.at
        if found.path != self.path:  # a first snapshot, or the name now means another one
            self.path = found.path
            self._slots.clear()
            self._transitions.clear()
        self.current = found
        second = math.floor(snapshot.at)
        self._slots[second] = Sample(
            at=snapshot.at,
            calls_per_second=found.calls_per_second,
            p99=found.latency.p99,
            error_rate=found.error_rate,
        )
        for old in [slot for slot in self._slots if slot <= second - WINDOW]:
            del self._slots[old]
        newest = self._transitions[-1] if self._transitions else None
        for event in snapshot.events:
            if event.kind != _TRANSITION or event.path != found.path:
                continue
            change = Transition(at=event.at, detail=event.detail)
            if newest is not None and (change.at < newest.at or change in self._transitions):
                continue
            self._transitions.append(change)
        return True

    def samples(self) -> tuple[Sample | None, ...]:
        """:data:`WINDOW` slots, oldest first, ending with the second of the last snapshot;
        ``None`` where no snapshot fell in that second."""
        if not self._slots:
            return (None,) * WINDOW
        last = math.floor(self._now)
        return tuple(self._slots.get(second) for second in range(last - WINDOW + 1, last + 1))

    @property
    def transitions(self) -> tuple[Transition, ...]:
        """The last breaker changes seen, oldest first."""
        return tuple(self._transitions)
