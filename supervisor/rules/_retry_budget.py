"""A retry budget (Finagle's ``RetryBudget``, Envoy's retry budgets): retries are allowed only
while they stay under a share of recent first attempts, so a struggling dependency is not
buried under a retry storm.

:class:`RetryBudget` is the pure core: the owner tells it of each first attempt and asks it
before each retry, passing the time. One budget may be shared by several callers (a service, a
decorated function, or anything holding the same object).
"""

from __future__ import annotations

import collections
from typing import Any

import attrs

from .._config import DURATION, NON_NEGATIVE
from .._errors import ConfigError, shown

__all__ = ["RetryBudget", "RetryBudgetConfig", "RetryBudgetStatistics"]


def _ratio(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.0 <= value <= 1.0  # also false for NaN; no float() of a huge integer
    ):
        raise ConfigError(
            f"`{attribute.name}` must be a number in [0, 1] (got {shown(value)})",
            field=attribute.name,
        )


@attrs.frozen(kw_only=True)
class RetryBudgetConfig:
    """The settings of a retry budget: within any ``window`` seconds, retries stay at most
    ``ratio`` times the first attempts of the same window plus ``min_per_second * window``.

    Raises:
        ConfigError: ``ratio`` outside [0, 1], ``min_per_second`` < 0, ``window`` not > 0.
    """

    ratio: float = attrs.field(default=0.2, validator=_ratio)
    """Retries allowed per first attempt (Finagle's ``percentCanRetry``; 0.2 = 20%)."""
    min_per_second: float = attrs.field(
        default=3.0, validator=lambda _s, a, v: NON_NEGATIVE.check(a.name, v)
    )
    """The floor: retries allowed per second of the window even with no traffic
    (Finagle's ``minRetriesPerSec``), so a quiet service can still retry."""
    window: float = attrs.field(default=10.0, validator=lambda _s, a, v: DURATION.check(a.name, v))
    """The window in seconds (Finagle's ``ttl``); half-open: an attempt exactly ``window`` ago
    is out."""

    @property
    def floor(self) -> float:
        """Retries allowed per window with no first attempts: ``min_per_second * window``."""
        return self.min_per_second * self.window


@attrs.frozen(kw_only=True)
class RetryBudgetStatistics:
    """A snapshot of a retry budget (see :meth:`RetryBudget.statistics`)."""

    first_attempts: int
    """First attempts within the window."""
    retries: int
    """Retries within the window."""
    allowance: float
    """Retries still allowed now: ``ratio * first_attempts + floor - retries`` (>= 0)."""
    refused: int
    """Retries refused for want of budget, in total."""
    spent: int
    """Retries allowed, in total."""


class _Counts:
    """Times of events within a window, exact, with equal times sharing one entry."""

    __slots__ = ("_entries", "count")

    def __init__(self) -> None:
        self._entries: collections.deque[list[float]] = collections.deque()
        self.count = 0

    def add(self, now: float) -> None:
        entries = self._entries
        if entries and entries[-1][0] == now:
            entries[-1][1] += 1
        else:
            entries.append([now, 1])
        self.count += 1

    def expire(self, horizon: float) -> None:
        entries = self._entries
        while entries and entries[0][0] <= horizon:
            self.count -= int(entries.popleft()[1])


class RetryBudget:
    """The pure core of a retry budget (see :class:`RetryBudgetConfig` for the rule).

    Protocol: :meth:`record_first` for every first attempt (a call, not a retry), then
    :meth:`try_retry` before each retry: true spends one retry, false refuses it (counted in
    ``refused``). A retry is allowed at ``now`` when, counting the attempts of the window
    ``(now - window, now]``, ``retries + 1 <= ratio * first_attempts + floor``. So in every
    window of ``window`` seconds that ends at a retry, the retries are at most ``ratio`` times
    the first attempts of that window plus the floor.

    Memory is one entry per distinct time of an attempt within the window.

    Raises:
        ConfigError: a bad setting (see :class:`RetryBudgetConfig`).
        TypeError: ``config`` is given with keyword settings too, or is not a config.
    """

    __slots__ = ("_firsts", "_retries", "config", "refused", "spent")

    def __init__(
        self,
        config: RetryBudgetConfig | None = None,
        *,
        ratio: float | None = None,
        min_per_second: float | None = None,
        window: float | None = None,
    ) -> None:
        given = {
            name: value
            for name, value in (
                ("ratio", ratio),
                ("min_per_second", min_per_second),
                ("window", window),
            )
            if value is not None
        }
        if config is not None:
            if not isinstance(config, RetryBudgetConfig):
                raise TypeError(f"`config` must be a RetryBudgetConfig (got {shown(config)})")
            if given:
                raise TypeError(f"give `config` or settings, not both (got {sorted(given)})")
        self.config = config if config is not None else RetryBudgetConfig(**given)
        """The settings."""
        self._firsts = _Counts()
        self._retries = _Counts()
        self.refused = 0
        """Retries refused for want of budget, in total."""
        self.spent = 0
        """Retries allowed, in total."""

    def _expire(self, now: float) -> None:
        horizon = now - self.config.window
        self._firsts.expire(horizon)
        self._retries.expire(horizon)

    def allowance(self, now: float) -> float:
        """Retries still allowed at ``now`` (0 when none)."""
        self._expire(now)
        config = self.config
        left = config.ratio * self._firsts.count + config.floor - self._retries.count
        return left if left > 0.0 else 0.0

    def record_first(self, now: float) -> None:
        """A first attempt (not a retry) started at ``now``."""
        firsts = self._firsts
        firsts.expire(now - self.config.window)
        firsts.add(now)

    def try_retry(self, now: float) -> bool:
        """Whether a retry may start at ``now``; true spends it, false counts a refusal."""
        self._expire(now)
        config = self.config
        if self._retries.count + 1 <= config.ratio * self._firsts.count + config.floor:
            self._retries.add(now)
            self.spent += 1
            return True
        self.refused += 1
        return False

    def statistics(self, now: float) -> RetryBudgetStatistics:
        """A snapshot at ``now``."""
        allowance = self.allowance(now)
        return RetryBudgetStatistics(
            first_attempts=self._firsts.count,
            retries=self._retries.count,
            allowance=allowance,
            refused=self.refused,
            spent=self.spent,
        )

    def __repr__(self) -> str:
        config = self.config
        return (
            f"<RetryBudget {config.ratio:.0%} of first attempts + {config.min_per_second}/s "
            f"over {config.window}s: {self._retries.count} retries, "
            f"{self._firsts.count} first attempts>"
        )
