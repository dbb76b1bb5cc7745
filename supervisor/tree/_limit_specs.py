"""Specs of a guarded service's hedging (:class:`HedgeSpec`, ``ServiceSpec.hedge``) and of its
adaptive concurrency limit (:class:`AdaptiveLimitSpec`, ``BulkheadSpec.adaptive``).

Each is validated by building the pure core it configures once, so the rules on its numbers are
written in one place (the core) and the errors name the field and the value.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._config import COUNT
from .._errors import ConfigError, shown
from ..rules._adaptive import AdaptiveLimitCore, LimitAlgorithm, limit_algorithm
from ..rules._hedge import HedgeCore


def _algorithm(value: object) -> LimitAlgorithm:
    """Converter: a :class:`~supervisor.cores.LimitAlgorithm` or its value (``"aimd"``)."""
    return limit_algorithm(value)


@attrs.frozen(kw_only=True)
class HedgeSpec:
    """A service's hedging (the semantics of :class:`~supervisor.Hedge`): when an attempt has not
    been answered ``delay`` seconds after it was sent, another is sent beside it, at most
    ``max_hedges``; the first answer wins and the others are cancelled.

    Each hedge is admitted by the service's own rules as an attempt of its own: a breaker permit
    and a *free* bulkhead slot (a hedge never queues); a hedge the rules would refuse is skipped,
    not refused (the call goes on with the attempts it has). Every attempt's outcome feeds the
    breaker once; a cancelled loser counts as nothing.
    """

    delay: float = attrs.field()
    """Seconds after an attempt was sent at which the next hedge is due (>= 0); with
    ``percentile``, the delay used until ``min_samples`` answers were seen."""
    max_hedges: int = attrs.field(default=1)
    """Hedges at most per attempt of a request (a retry hedges anew)."""
    percentile: float | None = attrs.field(default=None)
    """When given (in (0, 1), e.g. 0.95): hedge after that percentile of the latencies of the
    service's recent answers instead of the fixed ``delay``."""
    min_samples: int = attrs.field(default=20)
    """Answers needed before ``percentile`` is used."""
    samples: int = attrs.field(default=100)
    """Answers the percentile is computed over (the most recent)."""

    def __attrs_post_init__(self) -> None:
        self.core()  # validates every field, with the core's messages

    def core(self) -> HedgeCore:
        """A new :class:`~supervisor.cores.HedgeCore` with these settings."""
        return HedgeCore(
            delay=self.delay,
            max_hedges=self.max_hedges,
            percentile=self.percentile,
            min_samples=self.min_samples,
            samples=self.samples,
        )


@attrs.frozen(kw_only=True)
class AdaptiveLimitSpec:
    """An adaptive concurrency limit for a service's bulkhead (the semantics of
    :class:`~supervisor.AdaptiveBulkhead`): instead of a fixed ``max_concurrent``, the requests
    running at once follow observed latency, from ``min_limit`` up to the bulkhead's
    ``max_concurrent`` (the hard cap, and the actor's concurrency). Requests beyond the limit wait
    on the caller's side, up to the bulkhead's ``max_queued``, in arrival order."""

    algorithm: LimitAlgorithm = attrs.field(default=LimitAlgorithm.GRADIENT, converter=_algorithm)
    """``"gradient"`` or ``"aimd"`` (see :class:`~supervisor.cores.AdaptiveLimitCore`)."""
    initial_limit: int = attrs.field(default=10)
    """The limit at start (at most the bulkhead's ``max_concurrent``)."""
    min_limit: int = attrs.field(default=1)
    """The limit never goes below this."""
    tolerance: float | None = attrs.field(default=None)
    """Latency above ``tolerance`` times the no-load latency shrinks the limit (>= 1; ``None``:
    1.2 for gradient, 1.5 for AIMD)."""
    backoff_ratio: float = attrs.field(default=0.9)
    """Multiplies the limit per failed request (and, for AIMD, per slow one)."""
    smoothing: float = attrs.field(default=0.2)
    """How fast the gradient limit moves toward its target, in (0, 1]."""
    queue_size: int = attrs.field(default=4)
    """What the gradient limit adds: how far past the knee it probes."""
    probe_interval: int | None = attrs.field(default=1000)
    """Samples between probes that re-measure the no-load latency (``None``: never)."""

    def __attrs_post_init__(self) -> None:
        # Every field is checked by the core; the cap is the bulkhead's, checked by BulkheadSpec.
        given = [v for v in (self.initial_limit, self.min_limit) if _int(v) and COUNT.admits(v)]
        self.core(max([1, *given]))

    def core(self, max_limit: int) -> AdaptiveLimitCore:
        """A new :class:`~supervisor.cores.AdaptiveLimitCore` with these settings, capped at
        ``max_limit``.

        Raises:
            ConfigError: a bad setting, or ``initial_limit`` above ``max_limit``.
        """
        return AdaptiveLimitCore(**self.options(), max_limit=max_limit)

    def options(self) -> dict[str, Any]:
        """These settings as keyword options of :class:`~supervisor.AdaptiveBulkhead`."""
        return {
            "algorithm": self.algorithm,
            "initial_limit": self.initial_limit,
            "min_limit": self.min_limit,
            "tolerance": self.tolerance,
            "backoff_ratio": self.backoff_ratio,
            "smoothing": self.smoothing,
            "queue_size": self.queue_size,
            "probe_interval": self.probe_interval,
        }


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_adaptive(adaptive: object, max_concurrent: int) -> None:
    """The checks ``BulkheadSpec`` makes of its ``adaptive`` field.

    Raises:
        ConfigError: ``adaptive`` is not an :class:`AdaptiveLimitSpec` or ``None``, or its
            ``initial_limit`` or ``min_limit`` is above ``max_concurrent``.
    """
    if adaptive is None:
        return
    if not isinstance(adaptive, AdaptiveLimitSpec):
        raise ConfigError(
            f"`adaptive` must be an AdaptiveLimitSpec (got {shown(adaptive)})", field="adaptive"
        )
    for field in ("min_limit", "initial_limit"):
        value = getattr(adaptive, field)
        if value > max_concurrent:
            raise ConfigError(
                f"`{field}` must be at most the bulkhead's `max_concurrent` ({max_concurrent}) "
                f"(got {shown(value)})",
                field=f"adaptive.{field}",
            )
