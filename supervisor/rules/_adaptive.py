"""The adaptive concurrency limit's pure core: a limit that follows observed latency, no trio.

:class:`AdaptiveLimitCore` is fed one sample per finished call (its latency, whether it failed, and
how many calls were in flight) and answers the concurrency limit to use from now on. Two
algorithms, after Netflix's concurrency-limits:

* ``"gradient"`` (Netflix ``GradientLimit`` / ``Gradient2Limit``): the limit is multiplied by the
  *gradient* ``clamp(tolerance * baseline / short, 0.5, 1.0)`` and ``queue_size`` is added, the
  result smoothed: ``estimate += smoothing * (estimate * gradient + queue_size - estimate)``. While
  latency stays at its baseline the gradient is 1 and the limit grows by ``smoothing *
  queue_size`` per sample; once latency rises above ``tolerance`` times the baseline it shrinks.
  For a backend whose latency grows in proportion to the concurrency beyond a knee ``K``, the
  limit settles near ``tolerance * K + queue_size``.
* ``"aimd"`` (Netflix ``AIMDLimit``): additive increase, multiplicative decrease. A sample after
  which the recent average latency exceeds ``tolerance`` times the baseline multiplies the limit
  by ``backoff_ratio``; any other adds 1. It settles where latency crosses ``tolerance`` times
  the baseline: near ``tolerance * K`` for the backend above.

``tolerance`` (>= 1) defaults to 1.2 for ``"gradient"`` and 1.5 for ``"aimd"``
(:data:`DEFAULT_TOLERANCE`); 1.0 puts the gradient limit closest to the knee of a backend with
steady latencies, while a higher one keeps noise from being read as queueing.

Both: a failed call multiplies the limit by ``backoff_ratio`` (its latency is not a measurement of
the service); a sample taken while fewer than half the limit were in flight does not raise the
limit (the caller, not the service, was the bottleneck: growing would only let a later burst
through); the limit is always an integer from ``min_limit`` to ``max_limit``.

Latencies: ``short`` is an exponential average of the last ``short_window`` (default 10) samples;
``baseline`` is the lowest ``short`` seen, the latency of the service without queueing. Each
adjustment made by a sample is divided by the limit, so that one limit's worth of samples (about
one round trip of every slot) moves the limit as much as one adjustment would: the limit follows
round trips, not the number of callers.

Probes (Netflix's): every ``probe_interval`` samples (default 1000; ``None``: never) the limit
drops to ``max(min_limit, queue_size)``; the samples of the calls already in flight at that moment
are skipped (their latency is that of the old limit), the baseline and the average are forgotten
and measured again over the next ``short_window`` samples, taken with few calls in flight, and the
limit returns to where it was (less any failures meanwhile). So a service that became slower for
good is not held to its old baseline.
"""

from __future__ import annotations

import enum
import math
from typing import Final

import attrs

from .._config import COUNT, DURATION, FACTOR
from .._errors import ConfigError, shown

__all__ = ["DEFAULT_TOLERANCE", "AdaptiveLimitCore", "LimitAlgorithm", "LimitStatistics"]


class LimitAlgorithm(enum.Enum):
    """How an :class:`AdaptiveLimitCore` moves its limit."""

    GRADIENT = "gradient"
    """Multiply by ``tolerance * baseline / latency`` (at most 1), add a small queue."""
    AIMD = "aimd"
    """Add 1 per good sample; multiply by ``backoff_ratio`` per slow or failed one."""


DEFAULT_TOLERANCE: Final = {LimitAlgorithm.GRADIENT: 1.2, LimitAlgorithm.AIMD: 1.5}
"""The ``tolerance`` of each algorithm when none is given: above 1, so that latency noise is not
read as queueing (AIMD compares the noisier average, not a ratio, so it needs more room)."""


def limit_algorithm(value: object) -> LimitAlgorithm:
    """``value`` as a :class:`LimitAlgorithm` (a member or its value), else :class:`ConfigError`."""
    if isinstance(value, LimitAlgorithm):
        return value
    for member in LimitAlgorithm:
        if value == member.value:
            return member
    raise ConfigError(
        f'`algorithm` must be "gradient" or "aimd" (got {shown(value)})', field="algorithm"
    )


def _fraction(param: str, value: object, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
        raise ConfigError(
            f"`{param}` must be a number > {low} and <= {high} (got {shown(value)})", field=param
        )
    return float(value)


@attrs.frozen(kw_only=True)
class LimitStatistics:
    """A snapshot of an :class:`AdaptiveLimitCore`."""

    algorithm: LimitAlgorithm
    limit: int
    """The concurrency limit now."""
    estimate: float
    """The unrounded limit the algorithm keeps."""
    min_limit: int
    max_limit: int
    baseline: float | None
    """The no-load latency estimate, in seconds (``None`` before the first sample or after a
    probe)."""
    short: float | None
    """The recent average latency, in seconds."""
    samples: int
    """Latency samples taken (failures not included)."""
    failures: int
    """Failed calls recorded."""
    increases: int
    """Samples that raised the integer limit."""
    decreases: int
    """Samples (or failures) that lowered it."""


class AdaptiveLimitCore:
    """A concurrency limit that follows latency (see the module doc for the exact rules).

    Raises:
        ConfigError: ``initial_limit``, ``min_limit``, ``max_limit``, ``queue_size``,
            ``short_window`` or ``probe_interval`` not an integer >= 1; not ``min_limit <=
            initial_limit <= max_limit``; ``tolerance`` not >= 1; ``backoff_ratio`` or
            ``smoothing`` not in (0, 1]; ``algorithm`` not ``"gradient"`` or ``"aimd"``.
    """

    __slots__ = (
        "_alpha",
        "_measure",
        "_resume",
        "_since_probe",
        "_skip",
        "algorithm",
        "backoff_ratio",
        "baseline",
        "decreases",
        "estimate",
        "failures",
        "increases",
        "limit",
        "max_limit",
        "min_limit",
        "probe_interval",
        "queue_size",
        "samples",
        "short",
        "short_window",
        "smoothing",
        "tolerance",
    )

    def __init__(
        self,
        *,
        algorithm: str | LimitAlgorithm = LimitAlgorithm.GRADIENT,
        initial_limit: int = 10,
        min_limit: int = 1,
        max_limit: int = 200,
        tolerance: float | None = None,
        backoff_ratio: float = 0.9,
        smoothing: float = 0.2,
        queue_size: int = 4,
        short_window: int = 10,
        probe_interval: int | None = 1000,
    ) -> None:
        self.algorithm = limit_algorithm(algorithm)
        self.min_limit = int(COUNT.check("min_limit", min_limit))
        self.max_limit = int(COUNT.check("max_limit", max_limit))
        initial = int(COUNT.check("initial_limit", initial_limit))
        if not self.min_limit <= initial <= self.max_limit:
            raise ConfigError(
                "`min_limit` <= `initial_limit` <= `max_limit` must hold "
                f"(got {self.min_limit}, {initial}, {self.max_limit})",
                field="initial_limit",
            )
        if tolerance is None:
            tolerance = DEFAULT_TOLERANCE[self.algorithm]
        self.tolerance = float(FACTOR.check("tolerance", tolerance))
        self.backoff_ratio = _fraction("backoff_ratio", backoff_ratio, low=0.0, high=1.0)
        self.smoothing = _fraction("smoothing", smoothing, low=0.0, high=1.0)
        self.queue_size = int(COUNT.check("queue_size", queue_size))
        self.short_window = int(COUNT.check("short_window", short_window))
        self.probe_interval = (
            None if probe_interval is None else int(COUNT.check("probe_interval", probe_interval))
        )
        self._alpha = 2.0 / (self.short_window + 1)
        self.estimate = float(initial)
        self.limit = initial
        """The concurrency limit now: an integer from ``min_limit`` to ``max_limit``."""
        self.baseline: float | None = None
        """The no-load latency estimate (seconds), or ``None`` until measured."""
        self.short: float | None = None
        """The recent average latency (seconds), or ``None`` until measured."""
        self.samples = 0
        self.failures = 0
        self.increases = 0
        self.decreases = 0
        self._since_probe = 0
        self._resume: float | None = None
        self._skip = 0
        self._measure = 0

    def _set(self, estimate: float) -> int:
        estimate = min(float(self.max_limit), max(float(self.min_limit), estimate))
        self.estimate = estimate
        limit = min(self.max_limit, max(self.min_limit, math.floor(estimate)))
        if limit > self.limit:
            self.increases += 1
        elif limit < self.limit:
            self.decreases += 1
        self.limit = limit
        return limit

    @property
    def probing(self) -> bool:
        """Whether a probe is under way (the limit is held low while the baseline is
        measured again)."""
        return self._resume is not None

    def _probe_step(self) -> int:
        # Measuring the baseline again, with few calls in flight; then back to the old limit.
        self._measure -= 1
        if self._measure > 0:
            return self.limit
        resume = self._resume
        self._resume = None
        return self._set(resume)  # type: ignore[arg-type]

    def on_failure(self) -> int:
        """A call failed: multiply the limit by ``backoff_ratio`` (during a probe, the limit it
        returns to); return the new limit."""
        self.failures += 1
        if self._resume is not None:
            self._resume = max(float(self.min_limit), self._resume * self.backoff_ratio)
            return self.limit
        return self._set(self.estimate * self.backoff_ratio)

    def on_sample(self, latency: float, *, in_flight: int) -> int:
        """A call succeeded after ``latency`` seconds with ``in_flight`` calls running (itself
        included); return the new limit.

        Raises:
            ConfigError: ``latency`` is not a number > 0 (a zero latency carries no
                information, and is refused rather than silently ignored) or ``in_flight`` not
                an integer >= 0.
        """
        latency = DURATION.check("latency", latency)
        if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 0:
            raise ConfigError(
                f"`in_flight` must be an integer >= 0 (got {shown(in_flight)})", field="in_flight"
            )
        self.samples += 1
        if self._resume is not None and self._skip > 0:
            self._skip -= 1
            if self._skip == 0:
                self.short = self.baseline = None
            return self.limit
        short = self.short
        short = latency if short is None else short + self._alpha * (latency - short)
        self.short = short
        baseline = self.baseline
        baseline = short if baseline is None or short < baseline else baseline
        self.baseline = baseline
        if self._resume is not None:
            return self._probe_step()
        self._since_probe += 1
        if self.probe_interval is not None and self._since_probe >= self.probe_interval:
            self._since_probe = 0
            self._resume = self.estimate
            self._skip = in_flight - 1  # calls started before the drop: their latency is stale
            self._measure = self.short_window
            return self._set(float(max(self.min_limit, self.queue_size)))
        estimate = self.estimate
        app_limited = in_flight * 2 < estimate
        if self.algorithm is LimitAlgorithm.GRADIENT:
            gradient = max(0.5, min(1.0, self.tolerance * baseline / short))
            target = estimate * gradient + self.queue_size
            if app_limited and target > estimate:
                return self.limit
            return self._set(estimate + self.smoothing * (target - estimate) / estimate)
        if short > self.tolerance * baseline:
            return self._set(estimate * self.backoff_ratio ** (1.0 / estimate))
        if app_limited:
            return self.limit
        return self._set(estimate + 1.0 / estimate)

    def statistics(self) -> LimitStatistics:
        """A snapshot of the limit and the latencies it follows."""
        return LimitStatistics(
            algorithm=self.algorithm,
            limit=self.limit,
            estimate=self.estimate,
            min_limit=self.min_limit,
            max_limit=self.max_limit,
            baseline=self.baseline,
            short=self.short,
            samples=self.samples,
            failures=self.failures,
            increases=self.increases,
            decreases=self.decreases,
        )

    def __repr__(self) -> str:
        return (
            f"<AdaptiveLimitCore {self.algorithm.value} limit {self.limit} "
            f"({self.min_limit}..{self.max_limit}), {self.samples} samples>"
        )
