"""The timeout budget's pure core: how much of a total is left at a given time."""

from __future__ import annotations

import attrs

from .._config import DURATION
from .._errors import ConfigError, shown


def _check_fraction(fraction: object) -> float:
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or not 0 < fraction <= 1  # also refuses NaN, inf and an integer of any size
    ):
        raise ConfigError(
            f"`fraction` must be a number in (0, 1] (got {shown(fraction)})", field="fraction"
        )
    return float(fraction)


@attrs.frozen(kw_only=True)
class BudgetCore:
    """The pure arithmetic of a time budget: ``total`` seconds from ``started_at``."""

    total: float = attrs.field(validator=lambda _, a, v: DURATION.check(a.name, v))
    """The whole budget in seconds (``> 0``)."""
    started_at: float
    """The time the budget started."""

    @property
    def deadline(self) -> float:
        """The time the budget is spent: ``started_at + total``."""
        return self.started_at + self.total

    def remaining(self, now: float) -> float:
        """Seconds left at ``now``; ``0.0`` (never negative) from the deadline on."""
        return max(0.0, self.deadline - now)

    def share(self, fraction: float, now: float) -> float:
        """``min(remaining(now), total * fraction)``.

        Raises:
            ConfigError: ``fraction`` is not a number in ``(0, 1]``.
        """
        return min(self.remaining(now), self.total * _check_fraction(fraction))
