"""The pure side of shared rule state: what a process does with the fleet's decisions.

Nothing here reads a clock, calls trio or talks to Redis. The trio shell of the Redis store
(:mod:`supervisor.store._redis`) reads the time, moves bytes, and drives these objects:

* :class:`FleetBreakerCore` is a :class:`~supervisor.cores.BreakerCore` that also obeys the
  fleet. Its request path is the local one, unchanged (no method of the closed path is
  overridden); the fleet reaches it from outside, through :meth:`FleetBreakerCore.apply`, and
  learns from it through :meth:`FleetBreakerCore.take_counts` and
  :meth:`FleetBreakerCore.take_report`.
* :class:`Availability` is the fallback-to-local state machine of one store: up, or down since
  some time, with the event of each transition.
* :func:`booking_time` is the rule of the fleet's sliding-log throttle, the same formula the Lua
  script applies on Redis's clock, so that it can be checked here with explicit times.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import attrs

from .._errors import ConfigError, shown
from ..rules._breaker import BreakerCore, ChangeReason, CircuitState, Permit, Refusal
from ._events import StoreRecovered, StoreUnavailable

__all__ = [
    "Availability",
    "FleetBreakerCore",
    "FleetState",
    "FleetView",
    "LeaseAction",
    "Report",
    "booking_time",
]

_CLOSED, _OPEN, _HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class FleetState(enum.Enum):
    """The state of one breaker as the fleet (Redis) holds it."""

    CLOSED = "closed"
    """No fleet decision holds: every process follows its own breaker."""
    OPEN = "open"
    """The fleet opened the breaker; it is half-open ``timeout`` after opening, on Redis's clock,
    and then only the holder of the trial lease runs trial calls."""
    FORCED = "forced"
    """``force_open()`` was called in some process: every process refuses until a ``reset()``."""


class Report(enum.Enum):
    """A local change the fleet must hear about (sent by the store's next sync)."""

    CLOSE = "close"
    """The lease holder's trial calls succeeded: close the breaker fleet-wide."""
    REOPEN = "reopen"
    """The lease holder's trial call failed: open the breaker anew fleet-wide."""
    RESET = "reset"
    """``reset()`` was called here: close the breaker fleet-wide, every count cleared."""
    FORCE = "force"
    """``force_open()`` was called here: hold the breaker open fleet-wide."""


class LeaseAction(enum.Enum):
    """What the next sync does with the trial lease of a breaker."""

    ACQUIRE = "acquire"
    """Try to take the lease (``SET ... NX PX``): there is demand here and the fleet is due to
    half-open."""
    RENEW = "renew"
    """Extend the lease held here: trial calls run, or ran within the lease time."""
    RELEASE = "release"
    """Give the lease up: it is held here but no trial ran for a whole lease time, so let a
    process with traffic take it."""


@attrs.frozen(kw_only=True)
class FleetView:
    """The fleet's state of one breaker, as a sync answer or a published message carries it."""

    state: FleetState
    """The fleet's state."""
    epoch: int
    """Counts the fleet's decisions for this breaker; a view with an older epoch than one seen
    before is stale and ignored."""
    generation: str
    """Names the life of the state in Redis: it changes when the state was lost (a Redis
    restart, an eviction), which the epoch alone could not tell."""
    remaining: float
    """Seconds (measured on Redis's clock) until the fleet's half-open, for ``OPEN``; else 0."""
    holder: str
    """The id of the process holding the trial lease, or ``""``."""
    cause: str
    """What made this epoch: ``"open"`` (the fleet's counts), ``"reopen"``, ``"close"``,
    ``"reset"``, ``"force"``, or ``""`` for a state never changed."""


class FleetBreakerCore(BreakerCore):
    """A breaker core that counts locally and obeys the fleet.

    **The request path is the local one.** Nothing on the closed path is overridden: a call
    through a closed fleet breaker costs exactly what a local one costs. The store reads the
    local totals (:meth:`take_counts`) on its own schedule and sends them to Redis, where one
    atomic script decides OPEN from the fleet's counts.

    **The fleet's decisions** arrive through :meth:`apply` (from a published message or from a
    sync answer). A fleet OPEN opens this core too (if it is not open already) and *gates* it:
    from the fleet's half-open time on, this core is HALF_OPEN but gives trial permits only while
    it holds the fleet's trial lease (:attr:`lease_held`); every other process keeps refusing,
    with ``retry_after=0.0`` (a half-open breaker whose trial slots are taken). A refusal while
    gated records :attr:`demand`, so that the store asks for the lease only where calls wait.

    **The local breaker keeps working alongside**: this core opens on its own run of failures
    whatever the fleet says, and a core the fleet did not open half-opens and trials on its own.

    **Local changes the fleet must know** (the lease holder's trials closing or reopening the
    breaker, ``reset()``, ``force_open()``) are kept as one pending :class:`Report`, read with
    :meth:`take_report`; the latest wins.

    **Fallback**: :meth:`go_local` lifts the gate (the store lost Redis): the core goes on as a
    local breaker from the state it is in, so a Redis outage never loses local safety.
    """

    __slots__ = (
        "_applying",
        "_gated",
        "_known",
        "_report",
        "_sent_failures",
        "_sent_successes",
        "_synced_at",
        "demand",
        "holder_id",
        "last_trial_at",
        "lease_held",
    )

    def __init__(self, *, holder_id: str, **settings: object) -> None:
        """Make a closed, ungated core.

        Args:
            holder_id: this process's id among the fleet (the value of a lease it holds).
            settings: the :class:`~supervisor.cores.BreakerCore` settings (``name``,
                ``failure_threshold``, ...).

        Raises:
            ConfigError: a bad setting, as for :class:`~supervisor.cores.BreakerCore`, or an
                empty ``holder_id``.
        """
        if not isinstance(holder_id, str) or not holder_id:
            raise ConfigError(f"`holder_id` must be a non-empty string (got {shown(holder_id)})")
        super().__init__(**settings)  # type: ignore[arg-type]
        self.holder_id = holder_id
        self.lease_held = False
        """Whether this process holds the fleet's trial lease (as Redis last said)."""
        self.demand = False
        """Whether a call was refused here since the fleet opened (so a trial would be used)."""
        self.last_trial_at = -float("inf")
        """When this core last gave a trial permit while holding the lease (or took it)."""
        self._gated = False
        self._applying = False
        self._known: tuple[str, int] | None = None
        self._report: Report | None = None
        self._sent_successes = 0
        self._sent_failures = 0
        self._synced_at = -float("inf")

    # -- inspection ---------------------------------------------------------------------------

    @property
    def gated(self) -> bool:
        """Whether a fleet decision governs this core (trials only with the lease)."""
        return self._gated

    @property
    def known(self) -> tuple[str, int] | None:
        """The ``(generation, epoch)`` of the last fleet view applied, or ``None``."""
        return self._known

    @property
    def half_open_at(self) -> float:
        """When the core turns (or turned) half-open, while OPEN; ``inf`` otherwise or forced."""
        return self._half_open_at

    # -- what the store sends -----------------------------------------------------------------

    def take_counts(self) -> tuple[int, int]:
        """The successes and counted failures since the last call, and forget them."""
        successes = self.successes - self._sent_successes
        failures = self.failures - self._sent_failures
        self._sent_successes = self.successes
        self._sent_failures = self.failures
        return successes, failures

    @property
    def failures_unsent(self) -> int:
        """Counted failures not yet handed over by :meth:`take_counts`."""
        return self.failures - self._sent_failures

    def take_report(self) -> Report | None:
        """The pending local change the fleet must hear about, and forget it."""
        report = self._report
        self._report = None
        return report

    def restore_report(self, report: Report) -> None:
        """Keep ``report`` pending again (its sync failed), unless a newer one is pending."""
        if self._report is None:
            self._report = report

    @property
    def has_report(self) -> bool:
        """Whether a local change waits to be sent."""
        return self._report is not None

    def lease_action(self, now: float, lease: float) -> LeaseAction | None:
        """What the next sync should do with the trial lease at ``now`` (``lease``: the lease
        time in seconds), if anything."""
        if not self._gated or self._forced:
            return None
        state = self._state
        due = state is _HALF_OPEN or (state is _OPEN and now >= self._half_open_at)
        if self.lease_held:
            if not due:
                return None
            if self._trials_in_flight > 0 or now - self.last_trial_at < lease:
                return LeaseAction.RENEW
            return LeaseAction.RELEASE
        if self.demand and due:
            return LeaseAction.ACQUIRE
        return None

    def sync_due(self, now: float, *, resync: float, lease: float) -> bool:
        """Whether the next tick should sync this core: a failure to send, a report, a lease
        action, or ``resync`` seconds since the last sync (successes alone wait for that)."""
        if self.failures != self._sent_failures or self._report is not None:
            return True
        if now - self._synced_at >= resync:
            return True
        return self.lease_action(now, lease) is not None

    def synced(self, now: float) -> None:
        """Record that a sync of this core was answered at ``now``."""
        self._synced_at = now

    # -- what the store receives --------------------------------------------------------------

    def lease_granted(self, now: float) -> None:
        """The lease was taken by this process at ``now`` (Redis said so); it is kept for a
        lease time at least, for the first trial to come."""
        self.lease_held = True
        self.demand = False
        self.last_trial_at = now

    def apply(self, view: FleetView, now: float) -> None:
        """Follow the fleet's ``view`` at ``now`` (a published message or a sync answer).

        A view older than the last one applied changes nothing; one of the same decision only
        updates the lease flag. A view of a
        new generation while a gate held means Redis lost the state: a closed view then lifts the
        gate and leaves the local course alone (no safety is lost); an open one is followed.
        """
        known = self._known
        holds = view.state is FleetState.OPEN and view.holder == self.holder_id
        if known is not None and known[0] == view.generation and view.epoch <= known[1]:
            if view.epoch == known[1]:
                self.lease_held = holds  # a fresh answer about the same decision
            return
        self.lease_held = holds
        self._known = (view.generation, view.epoch)
        lost = known is not None and known[0] != view.generation
        if view.state is FleetState.CLOSED and (known is None or lost):
            # First contact, or the state was lost: a closed fleet says nothing new.
            self._gated = False
            return
        self._applying = True
        try:
            if view.state is FleetState.OPEN:
                self._fleet_open(view, now)
            elif view.state is FleetState.FORCED:
                self._gated = False
                if not self._forced:
                    self.force_open(now)
            elif view.cause == "reset":
                self._gated = False
                self.demand = False
                self.reset(now)
            else:
                self._fleet_closed(now)
        finally:
            self._applying = False

    def resync(self) -> None:
        """Forget the last view seen, so that the next one is applied as news (after a
        reconnection, when published messages may have been lost)."""
        self._known = None

    def go_local(self) -> None:
        """The fleet is unreachable: lift the gate and the lease; the core goes on as a local
        breaker from its current state (an open core half-opens on its own timer and trials
        locally). The next view seen is applied as news."""
        self._gated = False
        self.lease_held = False
        self.demand = False
        self._known = None

    def _fleet_open(self, view: FleetView, now: float) -> None:
        if self._forced:
            return  # a hold by force_open() here is stronger; only reset() lifts it
        half_open_at = now + view.remaining
        self._gated = True
        if self._state is _OPEN:
            if half_open_at > self._half_open_at:
                self._half_open_at = half_open_at
                self._opened_at = half_open_at - self.timeout
            return
        reason = (
            ChangeReason.TRIAL_FAILED if view.cause == "reopen" else ChangeReason.FAILURE_THRESHOLD
        )
        self._move(_OPEN, now, reason)
        self._half_open_at = half_open_at
        self._opened_at = half_open_at - self.timeout

    def _fleet_closed(self, now: float) -> None:
        # The lease holder's trials succeeded (or the fleet was closed some other way). A core the
        # fleet governs follows; one that opened on its own local failures keeps its course.
        if not (self._gated or self._forced):
            return
        self._gated = False
        self.demand = False
        self._forced = False
        if self._state is not _CLOSED:
            self._move(_CLOSED, now, ChangeReason.TRIALS_SUCCEEDED)

    # -- overrides (never on the closed path) -------------------------------------------------

    def try_acquire(self, now: float) -> Permit | Refusal:
        """As :meth:`BreakerCore.try_acquire`; while gated without the lease, a due half-open
        gives no trial permit (``Refusal(0.0)``) and every refusal records :attr:`demand`."""
        if self._gated and not self.lease_held and not self._forced:
            self.demand = True
            state = self._state
            if state is _OPEN and now >= self._half_open_at:
                self.advance(now)
                state = self._state
            if state is _HALF_OPEN:
                self.refused += 1
                return Refusal(0.0)
        decision = super().try_acquire(now)
        if self.lease_held and type(decision) is Permit and decision.trial:
            self.last_trial_at = now
        return decision

    def _move(self, new: CircuitState, at: float, reason: ChangeReason) -> None:
        super()._move(new, at, reason)
        if self._applying:
            return
        if reason is ChangeReason.RESET:
            self._gated = False
            self.demand = False
            self._report = Report.RESET
        elif reason is ChangeReason.FORCED_OPEN:
            self._gated = False
            self._report = Report.FORCE
        elif self._gated and self.lease_held:
            if reason is ChangeReason.TRIALS_SUCCEEDED:
                self._gated = False
                self._report = Report.CLOSE
            elif reason is ChangeReason.TRIAL_FAILED:
                self._report = Report.REOPEN

    def __repr__(self) -> str:
        gate = " gated" if self._gated else ""
        lease = " lease" if self.lease_held else ""
        return f"<FleetBreakerCore {self.name!r} {self._state.value}{gate}{lease}>"


class Availability:
    """Whether a store can reach its server: the fallback-to-local state machine.

    ``up`` until an operation fails (:meth:`failed`), then ``down`` until one succeeds
    (:meth:`succeeded`). Each transition returns its event once; repeated failures or successes
    return ``None``. While down, every rule of the store decides locally.
    """

    __slots__ = ("_down_since", "failures", "url")

    def __init__(self, url: str) -> None:
        self.url = url
        """The server's URL, without its password."""
        self._down_since: float | None = None
        self.failures = 0
        """Operations that failed, in total."""

    @property
    def up(self) -> bool:
        """Whether the last operation succeeded (or none failed yet)."""
        return self._down_since is None

    @property
    def down_since(self) -> float | None:
        """When the server became unreachable, or ``None`` while up."""
        return self._down_since

    def failed(self, now: float, error: BaseException) -> StoreUnavailable | None:
        """An operation failed at ``now``: the event if this starts an outage, else ``None``."""
        self.failures += 1
        if self._down_since is not None:
            return None
        self._down_since = now
        return StoreUnavailable(url=self.url, at=now, error=f"{type(error).__name__}: {error}")

    def succeeded(self, now: float) -> StoreRecovered | None:
        """An operation succeeded at ``now``: the event if this ends an outage, else ``None``."""
        since = self._down_since
        if since is None:
            return None
        self._down_since = None
        return StoreRecovered(url=self.url, at=now, down_for=max(0.0, now - since))


def booking_time(entries: Sequence[float], now: float, max_calls: int, period: float) -> float:
    """When the fleet's sliding-log throttle admits a call that asks at ``now``.

    ``entries`` are the admission times in the log (sorted, possibly in the future: booked
    slots), every one with ``t + period > now`` (older ones are already out of the window). The
    answer is ``now`` when fewer than ``max_calls`` are in the log; else the latest of ``now``,
    the last booking, and the ``max_calls``-th latest entry plus ``period`` (the moment it leaves
    the half-open window). Booking every call at that time keeps at most ``max_calls`` entries in
    every window ``(t - period, t]`` and serves callers in arrival order. The Lua script of the
    Redis store applies this formula on Redis's clock.
    """
    if len(entries) < max_calls:
        return now
    return max(now, entries[-1], entries[len(entries) - max_calls] + period)
