"""Three fleet breaker cores and a small model of the server's script, under random calls,
outcomes, syncs, deliveries, lost messages and time: the trials of one fleet decision run in one
process only, the one holding the lease.

A process that has not yet heard of a newer decision (a reset, a reopening) may still act on the
older one until its next sync (in the store, the holder syncs every ``flush_interval``); the
model lets that sync be late at will, so the property is stated per decision."""

from __future__ import annotations

import math

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from supervisor.cores import Permit
from supervisor.rules._breaker import CircuitState
from supervisor.store import FleetBreakerCore, FleetState, FleetView, LeaseAction, Report

LEASE = math.inf  # a lease ends only when given back, so "one holder" is exact in the model
RESYNC = 1.0


class ModelServer:
    """The breaker script's semantics (store/_scripts.py) with the window never expiring."""

    def __init__(self, threshold: int, timeout: float) -> None:
        self.threshold, self.timeout = threshold, timeout
        self.state, self.opened, self.epoch, self.cause = "closed", 0.0, 0, ""
        self.lease: str | None = None
        self.failures = self.successes = 0

    def _decide(self, state: str, cause: str, now: float) -> None:
        self.state, self.cause, self.epoch = state, cause, self.epoch + 1
        if state == "open":
            self.opened = now
        self.failures = self.successes = 0
        self.lease = None

    def sync(
        self, holder: str, report: Report | None, action: LeaseAction | None, *, s: int, f: int,
        now: float,
    ) -> tuple[FleetView, bool, bool]:  # fmt: skip
        """The view after this sync, whether the lease was granted, whether it published."""
        before = self.epoch
        if report is Report.RESET:
            self._decide("closed", "reset", now)
        elif report is Report.FORCE:
            self._decide("forced", "force", now)
        elif (
            report in (Report.CLOSE, Report.REOPEN)
            and self.state == "open"
            and self.lease in (None, holder)
        ):
            if report is Report.CLOSE:
                self._decide("closed", "close", now)
            else:
                self._decide("open", "reopen", now)
        self.successes += s
        self.failures += f
        total = self.failures + self.successes
        if self.state == "closed" and f > 0 and self.threshold <= self.failures >= 0.5 * total:
            self._decide("open", "open", now)
        granted = False
        if self.state == "open" and action is not None:
            if action is LeaseAction.ACQUIRE and now >= self.opened + self.timeout:
                if self.lease is None:
                    self.lease, granted = holder, True
            elif action is LeaseAction.RELEASE and self.lease == holder:
                self.lease = None
        return self.view(now), granted, self.epoch != before

    def view(self, now: float) -> FleetView:
        remaining = max(0.0, self.opened + self.timeout - now) if self.state == "open" else 0.0
        return FleetView(
            state=FleetState(self.state),
            epoch=self.epoch,
            generation="g",
            remaining=remaining,
            holder=self.lease or "",
            cause=self.cause,
        )


class FleetMachine(RuleBasedStateMachine):
    """Drives three cores and the model server."""

    @initialize(threshold=st.integers(2, 3), trials=st.integers(1, 2), successes=st.integers(1, 2))
    def setup(self, threshold: int, trials: int, successes: int) -> None:
        self.now = 0.0
        self.server = ModelServer(threshold, timeout=1.0)
        self.cores = [
            FleetBreakerCore(
                holder_id=f"p{i}",
                name="svc",
                failure_threshold=100,  # no process opens on its own: the fleet decides
                success_threshold=successes,
                half_open_max_calls=trials,
                timeout=1.0,
            )
            for i in range(3)
        ]
        self.inbox: list[list[FleetView]] = [[], [], []]
        # (permit, the decision a gated trial belongs to, or None)
        self.held: list[list[tuple[Permit, tuple[str, int] | None]]] = [[], [], []]

    @rule(dt=st.sampled_from([0.1, 0.5, 1.0]))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @rule()
    def time_jumps_to_the_fleets_half_open(self) -> None:
        if self.server.state == "open":
            self.now = max(self.now, self.server.opened + self.server.timeout)

    @rule(i=st.integers(0, 2))
    def call(self, i: int) -> None:
        core = self.cores[i]
        gated = core.gated
        decision = core.try_acquire(self.now)
        if not isinstance(decision, Permit):
            return
        decided = self._fleet_trial(i, core) if gated and decision.trial else None
        self.held[i].append((decision, decided))

    def _fleet_trial(self, i: int, core: FleetBreakerCore) -> tuple[str, int]:
        # A gated core gives a trial: it holds the lease of the decision it knows, and no other
        # process runs a trial of that decision.
        decided = core.known
        assert decided is not None
        if decided[1] == self.server.epoch:
            assert self.server.lease == core.holder_id, "a trial without the lease"
        for j, others in enumerate(self.held):
            if j != i:
                assert decided not in {d for _, d in others}, "two processes trial one decision"
        return decided

    @precondition(lambda self: any(self.held))
    @rule(i=st.integers(0, 2), outcome=st.sampled_from(["success", "failure", "release"]))
    def finish(self, i: int, outcome: str) -> None:
        if not self.held[i]:
            return
        permit, _ = self.held[i].pop(0)
        core = self.cores[i]
        if outcome == "success":
            core.on_success(permit, self.now)
        elif outcome == "failure":
            core.on_failure(permit, self.now)
        else:
            core.release(permit)

    @rule(i=st.integers(0, 2))
    def sync(self, i: int) -> None:
        core = self.cores[i]
        report = core.take_report()
        action = core.lease_action(self.now, LEASE)
        s, f = core.take_counts()
        view, granted, published = self.server.sync(
            core.holder_id, report, action, s=s, f=f, now=self.now
        )
        if published:
            for j in range(3):
                if j != i:
                    self.inbox[j].append(view)
        if report in (Report.CLOSE, Report.REOPEN) and view.cause != report.value:
            core.resync()
        core.apply(view, self.now)
        if granted:
            core.lease_granted(self.now)
        core.synced(self.now)

    @precondition(lambda self: any(self.inbox))
    @rule(i=st.integers(0, 2), lose=st.booleans())
    def deliver(self, i: int, lose: bool) -> None:
        if self.inbox[i]:
            message = self.inbox[i].pop(0)
            if not lose:
                self.cores[i].apply(message, self.now)

    @rule(i=st.integers(0, 2), outcome=st.sampled_from(["success", "failure"]))
    def quick_call(self, i: int, outcome: str) -> None:
        # A call that ends before anything else happens (the common case).
        core = self.cores[i]
        gated = core.gated
        decision = core.try_acquire(self.now)
        if not isinstance(decision, Permit):
            return
        if gated and decision.trial:
            self._fleet_trial(i, core)
        if outcome == "success":
            core.on_success(decision, self.now)
        else:
            core.on_failure(decision, self.now)

    @rule(i=st.integers(0, 2), op=st.sampled_from(["reset", *["nothing"] * 19]))
    def control(self, i: int, op: str) -> None:
        # Rare: a reset closes the breaker fleet-wide (force_open is tested on its own).
        if op == "reset":
            self.cores[i].reset(self.now)

    @invariant()
    def gated_cores_have_no_free_path(self) -> None:
        for core in getattr(self, "cores", []):
            if core.gated:
                assert core.free_permit is None
                assert core.state_at(self.now) is not CircuitState.CLOSED

    @invariant()
    def only_the_lease_holder_may_think_it_holds(self) -> None:
        # Among the processes that know the latest decision, at most one believes it holds the
        # lease, and the server agrees (or the lease was given back since).
        current = [
            c.holder_id
            for c in getattr(self, "cores", [])
            if c.lease_held and c.known == ("g", self.server.epoch)
        ]
        assert len(current) <= 1
        if current:
            assert self.server.lease in (current[0], None)


TestFleetMachine = FleetMachine.TestCase
TestFleetMachine.settings = settings(max_examples=100, stateful_step_count=80, deadline=None)
