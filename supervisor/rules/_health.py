"""The pure health window of one service and the frozen values it produces."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence

import attrs

from .._config import COUNT
from ._counts import ERROR_TYPES_KEPT, TopCounts

TIMEOUT_ERROR_NAME = "TimeoutError"
"""The ``errors_by_type`` key under which checks that ran past ``check_timeout`` are counted."""


@attrs.frozen(kw_only=True)
class ServiceStatus:
    """The health of one service, as of its last check or recorded call.

    "Outcomes" are the results of health checks and of calls given to ``record_call``. The
    *recent window* is the last ``window_size`` outcomes (100 by default).
    """

    name: str
    """The service's name."""
    healthy: bool
    """``False`` from the ``failure_threshold``-th failed check in a row until a check passes;
    ``True`` before the first check. Only checks decide it."""
    health_score: float
    """``100 * passed / total`` over the recent window (100.0 when it is empty): 100 when every
    recent check and recorded call succeeded, 0 when all failed."""
    avg_latency: float
    """Mean latency over the recent window, in milliseconds (0.0 when empty)."""
    p99_latency: float
    """99th percentile latency over the recent window (nearest rank), in milliseconds (0.0 when
    empty)."""
    error_rate: float
    """Failed outcomes / outcomes over the recent window, from 0 to 1 (0.0 when empty)."""
    availability: float
    """Percent of all outcomes since registration that succeeded (100.0 when none)."""
    consecutive_failures: int
    """Failed checks in a row (recorded calls do not count)."""
    errors_by_type: Mapping[str, int]
    """Failures since registration by exception type name (``"TimeoutError"`` for a check that
    ran past ``check_timeout``; a check that returned ``False`` adds no entry). At most the
    ``ERROR_TYPES_KEPT`` (20) most frequent names are kept, the rest counted under ``"other"``
    (see :class:`~supervisor.cores.TopCounts`)."""
    last_checked: float | None
    """Trio time at which the last check finished; ``None`` before the first check."""
    checks: int = 0
    """Checks run since registration."""
    calls: int = 0
    """Calls recorded since registration."""


@attrs.frozen(kw_only=True)
class HealthChange:
    """Published when a service turns unhealthy, or healthy again."""

    name: str
    """The service's name."""
    healthy: bool
    """The new value of ``healthy``."""
    at: float
    """Trio time of the check that caused the change."""
    status: ServiceStatus
    """The status right after the change."""


class HealthWindow:
    """Pure health bookkeeping for one service.

    Feed it with :meth:`record_check` and :meth:`record_call`; read it with :meth:`status`. Only
    checks move ``consecutive_failures`` and ``healthy``: the service turns unhealthy when the run
    of failed checks reaches ``failure_threshold`` and healthy again at the next passing check.

    Raises:
        ConfigError: ``failure_threshold`` or ``window_size`` not an integer >= 1.
    """

    __slots__ = (
        "_errors",
        "_recent",
        "calls",
        "checks",
        "consecutive_failures",
        "failure_threshold",
        "healthy",
        "last_checked",
        "name",
        "passed",
        "total",
    )

    def __init__(self, name: str, *, failure_threshold: int, window_size: int = 100) -> None:
        self.name = name
        self.failure_threshold = int(COUNT.check("failure_threshold", failure_threshold))
        self._recent: deque[tuple[bool, float]] = deque(
            maxlen=int(COUNT.check("window_size", window_size))
        )
        self._errors = TopCounts(ERROR_TYPES_KEPT)
        self.healthy = True
        self.consecutive_failures = 0
        self.last_checked: float | None = None
        self.total = 0
        self.passed = 0
        self.checks = 0
        self.calls = 0

    def _record(self, ok: bool, latency: float, error_type: str | None) -> None:
        self._recent.append((ok, latency))
        self.total += 1
        if ok:
            self.passed += 1
        elif error_type is not None:
            self._errors.add(error_type)

    def record_call(self, *, ok: bool, latency: float, error_type: str | None = None) -> None:
        """Count one call (``latency`` in seconds); it never changes ``healthy``."""
        self.calls += 1
        self._record(ok, latency, error_type)

    def call_succeeded(self, latency: float) -> None:
        """``record_call(ok=True, latency=latency)``, for feeds that record one per request."""
        self.calls += 1
        self._recent.append((True, latency))
        self.total += 1
        self.passed += 1

    def calls_succeeded(self, latencies: Sequence[float]) -> None:
        """:meth:`call_succeeded` of each of ``latencies``, oldest first."""
        count = len(latencies)
        self.calls += count
        self._recent.extend([(True, latency) for latency in latencies])
        self.total += count
        self.passed += count

    def record_check(
        self, *, ok: bool, latency: float, error_type: str | None, now: float
    ) -> bool | None:
        """Count one check that finished at ``now``.

        Returns:
            The new ``healthy`` value if this check changed it, else ``None``.
        """
        self.checks += 1
        self.last_checked = now
        self._record(ok, latency, error_type)
        if ok:
            self.consecutive_failures = 0
            if not self.healthy:
                self.healthy = True
                return True
            return None
        self.consecutive_failures += 1
        if self.healthy and self.consecutive_failures >= self.failure_threshold:
            self.healthy = False
            return False
        return None

    def status(self) -> ServiceStatus:
        """The :class:`ServiceStatus` now (see its fields for the formulas)."""
        recent = self._recent
        n = len(recent)
        if n:
            good = sum(1 for ok, _ in recent if ok)
            latencies = sorted(latency for _, latency in recent)
            score = 100.0 * good / n
            error_rate = (n - good) / n
            avg = 1000.0 * math.fsum(latencies) / n
            p99 = 1000.0 * latencies[max(0, math.ceil(0.99 * n) - 1)]
        else:
            score, error_rate, avg, p99 = 100.0, 0.0, 0.0, 0.0
        return ServiceStatus(
            name=self.name,
            healthy=self.healthy,
            health_score=score,
            avg_latency=avg,
            p99_latency=p99,
            error_rate=error_rate,
            availability=100.0 * self.passed / self.total if self.total else 100.0,
            consecutive_failures=self.consecutive_failures,
            errors_by_type=self._errors.as_dict(),
            last_checked=self.last_checked,
            checks=self.checks,
            calls=self.calls,
        )
