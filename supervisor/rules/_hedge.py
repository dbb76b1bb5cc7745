"""Hedging's pure core: when to send another attempt of a slow call, and who won; no trio.

A hedged call starts with one attempt (the *primary*, attempt 0). If it has not answered
``delay`` seconds after the latest attempt was launched, a *hedge* (attempt 1, 2, ...) is
launched beside it, at most ``max_hedges`` of them. The first attempt to succeed wins and every
other attempt still running is cancelled. An attempt that fails launches the next hedge at once
(if any is left); the call fails only when every launched attempt failed and no hedge is left.
This is Polly's hedging strategy (``MaxHedgedAttempts``, ``Delay``) and resilience4j's ``Hedge``.

The delay is fixed, or (``percentile`` given) the ``percentile`` of the latencies of recent
winning attempts (each measured from its own launch), nearest rank, over the last ``samples``
of them; until ``min_samples`` are recorded the fixed ``delay`` is used.

:class:`HedgeCore` holds the delay and the totals; :class:`HedgeRun` is one call's state. Times
are passed in; nothing here reads a clock.
"""

from __future__ import annotations

import collections
import enum
import math

import attrs

from .._config import COUNT, NON_NEGATIVE
from .._errors import ConfigError, shown

__all__ = ["HedgeCore", "HedgeLaunched", "HedgeRun", "HedgeSettled", "HedgeStatistics", "Verdict"]

_INF = math.inf


class Verdict(enum.Enum):
    """What :meth:`HedgeRun.failed` says to do after an attempt failed."""

    LAUNCH = "launch"
    """Launch the next hedge now."""
    WAIT = "wait"
    """Other attempts are still running: wait for them."""
    GIVE_UP = "give_up"
    """Nothing runs and no hedge is left: the call fails with this failure."""


@attrs.frozen(kw_only=True)
class HedgeLaunched:
    """A hedge was launched for a slow (or failed) call."""

    name: str
    """The hedge's name (for a guarded service: its path)."""
    at: float
    """Trio time of the launch."""
    hedge: int
    """Which hedge (1 for the first; the primary attempt is 0)."""
    after: float
    """Seconds since the call started."""
    reason: str
    """``"delay"`` (no answer within the hedging delay) or ``"failure"`` (an attempt failed)."""


@attrs.frozen(kw_only=True)
class HedgeSettled:
    """A call that launched at least one hedge reached its outcome."""

    name: str
    """The hedge's name (for a guarded service: its path)."""
    at: float
    """Trio time of the outcome."""
    hedges: int
    """Hedges launched for the call."""
    winner: int | None
    """The attempt that answered (0: the primary), or ``None`` when every attempt failed."""
    cancelled: int
    """Attempts cancelled because another answered first."""
    failed: int
    """Attempts that failed."""


@attrs.frozen(kw_only=True)
class HedgeStatistics:
    """Totals of a :class:`HedgeCore`."""

    calls: int
    """Calls started."""
    hedged_calls: int
    """Calls that launched at least one hedge."""
    hedges: int
    """Hedges launched."""
    hedge_wins: int
    """Calls answered by a hedge rather than the primary."""
    cancelled: int
    """Attempts cancelled as losers."""
    skipped: int
    """Hedges due but not launched (the shell could not admit them)."""
    delay: float
    """The hedging delay now, in seconds."""


class HedgeCore:
    """The hedging policy and its totals (see the module doc).

    Raises:
        ConfigError: ``delay`` not a number >= 0, ``max_hedges``, ``min_samples`` or ``samples``
            not an integer >= 1, or ``percentile`` not in (0, 1).
    """

    __slots__ = (
        "_latencies",
        "calls",
        "cancelled",
        "delay",
        "hedge_wins",
        "hedged_calls",
        "hedges",
        "max_hedges",
        "min_samples",
        "percentile",
        "skipped",
    )

    def __init__(
        self,
        *,
        delay: float,
        max_hedges: int = 1,
        percentile: float | None = None,
        min_samples: int = 20,
        samples: int = 100,
    ) -> None:
        self.delay = float(NON_NEGATIVE.check("delay", delay))
        self.max_hedges = int(COUNT.check("max_hedges", max_hedges))
        if percentile is not None and (
            isinstance(percentile, bool)
            or not isinstance(percentile, int | float)
            or not 0.0 < percentile < 1.0
        ):
            raise ConfigError(
                f"`percentile` must be a number > 0 and < 1 (got {shown(percentile)})",
                field="percentile",
            )
        self.percentile = percentile
        self.min_samples = int(COUNT.check("min_samples", min_samples))
        maxlen = int(COUNT.check("samples", samples))
        self._latencies: collections.deque[float] = collections.deque(maxlen=maxlen)
        self.calls = 0
        self.hedged_calls = 0
        self.hedges = 0
        self.hedge_wins = 0
        self.cancelled = 0
        self.skipped = 0

    def hedge_delay(self) -> float:
        """Seconds after an attempt's launch at which the next hedge is due: ``delay``, or the
        observed ``percentile`` once ``min_samples`` latencies are recorded."""
        percentile = self.percentile
        latencies = self._latencies
        if percentile is None or len(latencies) < self.min_samples:
            return self.delay
        ordered = sorted(latencies)
        return ordered[max(0, math.ceil(percentile * len(ordered)) - 1)]

    def record(self, latency: float) -> None:
        """Record a winning attempt's latency (seconds >= 0, from its own launch)."""
        self._latencies.append(NON_NEGATIVE.check("latency", latency))

    def start(self, now: float, *, deadline: float = _INF) -> HedgeRun:
        """A new call, whose primary attempt launches at ``now``; no hedge is due at or after
        ``deadline`` (the call's own deadline; ``inf``: none)."""
        self.calls += 1
        return HedgeRun(self, now, deadline)

    def statistics(self) -> HedgeStatistics:
        """The totals, and the delay now."""
        return HedgeStatistics(
            calls=self.calls,
            hedged_calls=self.hedged_calls,
            hedges=self.hedges,
            hedge_wins=self.hedge_wins,
            cancelled=self.cancelled,
            skipped=self.skipped,
            delay=self.hedge_delay(),
        )

    def __repr__(self) -> str:
        mode = "fixed" if self.percentile is None else f"p{self.percentile * 100:g}"
        return (
            f"<HedgeCore {mode} delay {self.hedge_delay()}s, up to {self.max_hedges} hedges, "
            f"{self.hedges} launched>"
        )


class HedgeRun:
    """One hedged call: which attempts run, when the next hedge is due, and the outcome.

    Attempts are numbered in launch order, 0 for the primary. Every launched attempt ends in
    exactly one of :meth:`succeeded` (at most one attempt: the winner), :meth:`failed` or
    :meth:`cancelled`. A failure owes a hedge at once (Polly's rule: a failed attempt is
    replaced without waiting for the delay) while hedges are left and the deadline has not
    passed; the call has failed when nothing runs and no hedge is due (:attr:`gave_up`).

    Raises:
        RuntimeError: an attempt that is not running is reported again, a second winner is
            reported, or a hedge is launched when none is due or left.
    """

    __slots__ = (
        "_core",
        "_deadline",
        "_last_launch",
        "_owed",
        "_skips",
        "cancelled_count",
        "failed_count",
        "launched",
        "running",
        "started",
        "winner",
    )

    def __init__(self, core: HedgeCore, now: float, deadline: float) -> None:
        self._core = core
        self._deadline = deadline
        self.started = now
        """When the call (its primary attempt) started."""
        self.launched: list[float] = [now]
        """Launch time of each attempt, by number."""
        self._last_launch = now
        self.running: set[int] = {0}
        """Attempts launched and not ended."""
        self.winner: int | None = None
        """The attempt that succeeded, once one did."""
        self.failed_count = 0
        self.cancelled_count = 0
        self._skips = 0
        self._owed: float | None = None

    @property
    def hedges(self) -> int:
        """Hedges launched so far."""
        return len(self.launched) - 1

    @property
    def gave_up(self) -> bool:
        """Whether the call has failed: no winner, nothing running, and no hedge due."""
        return self.winner is None and not self.running and self.next_due() == _INF

    def _slots_left(self) -> bool:
        return len(self.launched) - 1 + self._skips < self._core.max_hedges

    @property
    def owed(self) -> bool:
        """Whether an attempt failed and the next hedge is due at once."""
        return self._owed is not None

    def next_due(self) -> float:
        """When the next hedge is due: the time of the failure that owes one, else one delay
        after the latest launch (or skip); ``inf`` when none will be: the call has a winner, no
        hedge is left, nothing runs, or that time is not before the deadline."""
        if self.winner is not None or not self._slots_left():
            return _INF
        if self._owed is not None:
            return self._owed
        if not self.running:
            return _INF
        due = self._last_launch + self._core.hedge_delay()
        return due if due < self._deadline else _INF

    def launch(self, now: float) -> int:
        """Launch the next hedge at ``now``; return its number."""
        if self.winner is not None or not self._slots_left():
            raise RuntimeError("HedgeRun.launch() with no hedge left")
        number = len(self.launched)
        self.launched.append(now)
        self._last_launch = now
        self._owed = None
        self.running.add(number)
        core = self._core
        core.hedges += 1
        if number == 1:
            core.hedged_calls += 1
        return number

    def skip(self, now: float) -> None:
        """A due hedge could not be admitted: it uses up its place, and the next is due one
        delay after ``now`` (or at once, if an earlier failure still owes one: no)."""
        if not self._slots_left():
            raise RuntimeError("HedgeRun.skip() with no hedge left")
        self._skips += 1
        self._last_launch = now
        self._owed = None
        self._core.skipped += 1

    def _end(self, attempt: int) -> None:
        if attempt not in self.running:
            raise RuntimeError(f"attempt {attempt} is not running")
        self.running.discard(attempt)

    def succeeded(self, attempt: int, now: float) -> frozenset[int]:
        """``attempt`` answered at ``now``: it wins; return the attempts to cancel (the others
        still running). Its latency from its own launch is recorded for the delay."""
        if self.winner is not None:
            raise RuntimeError("a hedged call has one winner")
        self._end(attempt)
        self.winner = attempt
        core = self._core
        core.record(max(0.0, now - self.launched[attempt]))
        if attempt > 0:
            core.hedge_wins += 1
        return frozenset(self.running)

    def failed(self, attempt: int, now: float) -> Verdict:
        """``attempt`` failed at ``now``: launch another now (a hedge is left and ``now`` is
        before the deadline), wait for the others, or give up."""
        self._end(attempt)
        self.failed_count += 1
        if self.winner is not None:
            return Verdict.WAIT
        if self._slots_left() and now < self._deadline:
            self._owed = now
            return Verdict.LAUNCH
        return Verdict.WAIT if self.running else Verdict.GIVE_UP

    def cancelled(self, attempt: int) -> None:
        """``attempt`` ended without counting: cancelled as a loser (or with the whole call), or
        answering after another attempt had already won."""
        self._end(attempt)
        self.cancelled_count += 1
        self._core.cancelled += 1

    def settle(self, name: str, now: float) -> HedgeSettled | None:
        """The event of this call's outcome, or ``None`` when no hedge was launched."""
        if self.hedges == 0:
            return None
        return HedgeSettled(
            name=name,
            at=now,
            hedges=self.hedges,
            winner=self.winner,
            cancelled=self.cancelled_count,
            failed=self.failed_count,
        )
