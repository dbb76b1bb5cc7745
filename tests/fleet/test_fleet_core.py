"""The pure fleet logic with explicit times: the fleet breaker core, the availability state
machine, and the throttle's booking rule. No trio, no Redis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.cores import BreakerCore, Permit, Refusal
from supervisor.rules._breaker import ChangeReason, CircuitState
from supervisor.store import (
    Availability,
    FleetBreakerCore,
    FleetState,
    FleetView,
    LeaseAction,
    Report,
    StoreRecovered,
    StoreUnavailable,
    booking_time,
)

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
SETTINGS = {"name": "db", "failure_threshold": 3, "success_threshold": 2, "timeout": 5.0}


def fleet_core(holder: str = "me", **settings: object) -> FleetBreakerCore:
    return FleetBreakerCore(holder_id=holder, **{**SETTINGS, **settings})


def view(
    state: FleetState = FleetState.OPEN,
    epoch: int = 1,
    *,
    generation: str = "g1",
    remaining: float = 5.0,
    holder: str = "",
    cause: str = "open",
) -> FleetView:
    return FleetView(
        state=state,
        epoch=epoch,
        generation=generation,
        remaining=remaining,
        holder=holder,
        cause=cause,
    )


def fail(core: BreakerCore, now: float) -> None:
    permit = core.try_acquire(now)
    assert isinstance(permit, Permit)
    core.on_failure(permit, now)


# -- the request path is the local one ----------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["acquire", "succeed", "fail", "release", "reset", "force"]),
        st.sampled_from([0.0, 0.5, 2.0, 5.0]),
    ),
    max_size=60,
)


@given(OPS)
def test_without_fleet_views_it_is_exactly_a_local_breaker(ops: list[tuple[str, float]]) -> None:
    """A fleet core that hears nothing from the fleet decides every call as a BreakerCore would,
    with the same state changes, and reports only its own reset() and force_open()."""
    local = BreakerCore(**SETTINGS)  # type: ignore[arg-type]
    fleet = fleet_core()
    now = 0.0
    held: list[tuple[Permit, Permit]] = []
    for op, dt in ops:
        now += dt
        if op == "acquire":
            a, b = local.try_acquire(now), fleet.try_acquire(now)
            assert type(a) is type(b)
            if isinstance(a, Refusal):
                assert isinstance(b, Refusal)
                assert a.retry_after == b.retry_after
            else:
                assert isinstance(b, Permit)
                assert (a.epoch, a.trial) == (b.epoch, b.trial)
                held.append((a, b))
        elif op in {"succeed", "fail", "release"} and held:
            a, b = held.pop(0)
            if op == "succeed":
                local.on_success(a, now)
                fleet.on_success(b, now)
            elif op == "fail":
                local.on_failure(a, now)
                fleet.on_failure(b, now)
            else:
                local.release(a)
                fleet.release(b)
        elif op == "reset":
            local.reset(now)
            fleet.reset(now)
            assert fleet.take_report() is Report.RESET
        elif op == "force":
            local.force_open(now)
            fleet.force_open(now)
            assert fleet.take_report() is Report.FORCE
        assert local.state_at(now) is fleet.state_at(now)
        assert local.take_changes() == fleet.take_changes()
        assert fleet.take_report() is None
        assert not fleet.gated


@given(st.lists(st.sampled_from(["success", "failure", "ignored"]), max_size=40))
def test_counts_are_handed_over_once(outcomes: list[str]) -> None:
    """take_counts() returns every success and counted failure exactly once, whenever asked."""
    core = fleet_core(failure_threshold=1000)
    sent = [0, 0]
    for i, outcome in enumerate(outcomes):
        permit = core.try_acquire(float(i))
        assert isinstance(permit, Permit)
        if outcome == "success":
            core.on_success(permit)
        elif outcome == "failure":
            core.on_failure(permit, float(i))
        else:
            core.release(permit)
        if i % 3 == 0:
            s, f = core.take_counts()
            sent[0] += s
            sent[1] += f
    s, f = core.take_counts()
    assert [sent[0] + s, sent[1] + f] == [outcomes.count("success"), outcomes.count("failure")]
    assert core.take_counts() == (0, 0)


# -- the fleet's decisions ----------------------------------------------------------------------


def test_a_fleet_open_opens_a_closed_core_and_refuses_until_the_fleets_half_open() -> None:
    """A published OPEN opens the core at once, with the fleet's remaining time as retry_after,
    and the change says the failure threshold (the fleet's) was reached."""
    core = fleet_core()
    core.apply(view(FleetState.CLOSED, 0, cause=""), 0.0)
    core.apply(view(remaining=4.0), 10.0)
    assert core.gated
    assert core.state_at(10.0) is OPEN
    [change] = core.take_changes()
    assert (change.old_state, change.new_state, change.at) == (CLOSED, OPEN, 10.0)
    assert change.reason is ChangeReason.FAILURE_THRESHOLD
    refusal = core.try_acquire(11.0)
    assert isinstance(refusal, Refusal)
    assert refusal.retry_after == pytest.approx(3.0)
    assert core.opened_at == pytest.approx(14.0 - 5.0)
    assert core.demand


def test_half_open_without_the_lease_refuses_like_a_full_half_open_breaker() -> None:
    """From the fleet's half-open time the state is HALF_OPEN, but without the lease every call
    is refused with retry_after 0 and no trial permit is given."""
    core = fleet_core()
    core.apply(view(remaining=2.0), 0.0)
    assert core.state_at(2.0) is HALF_OPEN
    for now in (2.0, 2.5, 100.0):
        refusal = core.try_acquire(now)
        assert isinstance(refusal, Refusal)
        assert refusal.retry_after == 0.0
    assert core.trials_in_flight == 0
    assert core.lease_action(2.0, lease=1.0) is LeaseAction.ACQUIRE


def test_no_demand_no_lease_request() -> None:
    """A process where no call waited does not ask for the lease."""
    core = fleet_core()
    core.apply(view(remaining=0.0), 0.0)
    assert core.lease_action(0.0, lease=1.0) is None
    core.try_acquire(0.0)
    assert core.lease_action(0.0, lease=1.0) is LeaseAction.ACQUIRE


def test_the_lease_holder_runs_the_trials_and_reports_the_close() -> None:
    """With the lease, the core gives trial permits; success_threshold successes close it
    locally, lift the gate, and leave a CLOSE report for the fleet."""
    core = fleet_core()
    core.apply(view(remaining=0.0), 0.0)
    core.try_acquire(0.0)
    core.lease_granted(0.0)
    first, second = core.try_acquire(0.1), core.try_acquire(0.1)
    assert isinstance(first, Permit)
    assert first.trial
    assert isinstance(second, Permit)
    assert core.lease_action(0.2, lease=1.0) is LeaseAction.RENEW
    core.on_success(first, 0.3)
    core.on_success(second, 0.4)
    assert core.state_at(0.4) is CLOSED
    assert not core.gated
    assert core.take_report() is Report.CLOSE


def test_a_failed_trial_of_the_holder_reports_a_reopen() -> None:
    """The holder's failed trial reopens the core locally and asks the fleet to reopen."""
    core = fleet_core()
    core.apply(view(remaining=0.0), 0.0)
    core.try_acquire(0.0)
    core.lease_granted(0.0)
    fail(core, 0.5)
    assert core.state_at(0.5) is OPEN
    assert core.take_report() is Report.REOPEN


def test_an_idle_holder_gives_the_lease_back() -> None:
    """A holder that ran no trial for a whole lease time releases the lease."""
    core = fleet_core()
    core.apply(view(remaining=0.0), 0.0)
    core.try_acquire(0.0)
    core.lease_granted(0.0)
    assert core.lease_action(0.9, lease=1.0) is LeaseAction.RENEW
    assert core.lease_action(1.0, lease=1.0) is LeaseAction.RELEASE


def test_the_reopen_view_says_trial_failed_to_other_processes() -> None:
    """A gated half-open core that hears of a reopen goes OPEN with reason TRIAL_FAILED."""
    core = fleet_core()
    core.apply(view(remaining=0.0), 0.0)
    assert core.state_at(0.0) is HALF_OPEN
    core.take_changes()
    core.apply(view(epoch=2, remaining=5.0, cause="reopen"), 1.0)
    [change] = core.take_changes()
    assert (change.new_state, change.reason) == (OPEN, ChangeReason.TRIAL_FAILED)


def test_the_fleets_close_closes_every_gated_core() -> None:
    """A close published by the holder closes a gated core (TRIALS_SUCCEEDED)."""
    core = fleet_core()
    core.apply(view(remaining=1.0), 0.0)
    core.apply(view(FleetState.CLOSED, 2, cause="close"), 3.0)
    assert core.state_at(3.0) is CLOSED
    assert [c.reason for c in core.take_changes()][-1] is ChangeReason.TRIALS_SUCCEEDED
    assert core.take_report() is None


def test_a_core_open_on_its_own_failures_is_not_closed_by_the_fleet() -> None:
    """Local safety: a core opened by its own failures keeps its course when the fleet closes."""
    core = fleet_core()
    core.apply(view(FleetState.CLOSED, 0, cause=""), 0.0)
    for _ in range(3):
        fail(core, 1.0)
    assert core.state_at(1.0) is OPEN
    core.apply(view(FleetState.CLOSED, 1, cause="close"), 2.0)
    assert core.state_at(2.0) is OPEN


def test_reset_and_force_from_the_fleet_apply_without_being_reported_back() -> None:
    """A fleet-wide force_open holds the core open; a fleet-wide reset closes it; neither is
    reported again."""
    core = fleet_core()
    core.apply(view(FleetState.FORCED, 1, remaining=0.0, cause="force"), 0.0)
    assert core.forced_open
    refusal = core.try_acquire(1e9)
    assert isinstance(refusal, Refusal)
    assert refusal.retry_after == float("inf")
    core.apply(view(FleetState.CLOSED, 2, remaining=0.0, cause="reset"), 1.0)
    assert not core.forced_open
    assert core.state_at(1.0) is CLOSED
    assert core.take_report() is None


def test_stale_and_repeated_views_change_nothing() -> None:
    """A view no newer than the last applied one is ignored."""
    core = fleet_core()
    core.apply(view(epoch=3, remaining=1.0), 0.0)
    core.apply(view(FleetState.CLOSED, 2, cause="close"), 0.5)
    core.apply(view(FleetState.CLOSED, 3, cause="close"), 0.5)
    assert core.state_at(0.5) is OPEN
    assert core.gated


def test_a_lost_state_lifts_the_gate_but_keeps_the_local_course() -> None:
    """After a Redis restart (new generation, closed), an open gated core stays open and
    half-opens on its own timer, running trials locally."""
    core = fleet_core()
    core.apply(view(epoch=4, remaining=2.0), 0.0)
    core.apply(view(FleetState.CLOSED, 0, generation="g2", cause=""), 1.0)
    assert not core.gated
    assert core.state_at(1.0) is OPEN
    trial = core.try_acquire(2.0)
    assert isinstance(trial, Permit)
    assert trial.trial


def test_going_local_keeps_safety_and_allows_local_trials() -> None:
    """go_local(): an open core stays open until its timer, then trials locally; the next fleet
    view is applied as news."""
    core = fleet_core()
    core.apply(view(epoch=1, remaining=3.0), 0.0)
    core.go_local()
    refusal = core.try_acquire(1.0)
    assert isinstance(refusal, Refusal)
    trial = core.try_acquire(3.0)
    assert isinstance(trial, Permit)
    assert trial.trial
    core.release(trial)
    assert core.known is None
    core.apply(view(epoch=1, remaining=3.0), 3.5)
    assert core.gated


def test_sync_is_due_for_failures_at_once_and_successes_at_the_resync() -> None:
    """Failures make a sync due at once; successes alone wait for the resync interval."""
    core = fleet_core(failure_threshold=100)
    core.synced(0.0)
    permit = core.try_acquire(0.0)
    assert isinstance(permit, Permit)
    core.on_success(permit)
    assert not core.sync_due(0.5, resync=1.0, lease=1.0)
    assert core.sync_due(1.0, resync=1.0, lease=1.0)
    core.take_counts()
    core.synced(1.0)
    fail(core, 1.1)
    assert core.sync_due(1.1, resync=1.0, lease=1.0)


def test_a_failed_report_is_kept_unless_a_newer_one_waits() -> None:
    """restore_report() puts back a report whose sync failed, unless a newer one is pending."""
    core = fleet_core()
    core.force_open(0.0)
    report = core.take_report()
    assert report is Report.FORCE
    core.restore_report(report)
    assert core.take_report() is Report.FORCE
    core.reset(1.0)
    core.restore_report(Report.FORCE)
    assert core.take_report() is Report.RESET


# -- availability -------------------------------------------------------------------------------


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 10)), max_size=30))
def test_availability_events_alternate_and_measure_the_outage(
    outcomes: list[tuple[bool, float]],
) -> None:
    """Failures and successes in any order give alternating events, Unavailable first, each
    Recovered with the time since the outage began."""
    availability = Availability("redis://h:1")
    now, events, down_since = 0.0, [], None
    for ok, dt in outcomes:
        now += dt
        event = availability.succeeded(now) if ok else availability.failed(now, OSError("x"))
        if event is not None:
            events.append(event)
            if isinstance(event, StoreUnavailable):
                down_since = now
            else:
                assert event.down_for == pytest.approx(now - down_since)  # type: ignore[operator]
    kinds = [type(e) for e in events]
    assert kinds == [StoreUnavailable, StoreRecovered] * (len(kinds) // 2) + [StoreUnavailable] * (
        len(kinds) % 2
    )
    assert availability.up is (not kinds or kinds[-1] is StoreRecovered)


# -- the throttle's booking rule ----------------------------------------------------------------


@given(
    max_calls=st.integers(1, 5),
    period=st.sampled_from([0.5, 1.0, 3.0]),
    gaps=st.lists(st.sampled_from([0.0, 0.0, 0.1, 0.25, 0.5, 1.0, 2.0]), max_size=40),
    wait=st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_bookings_keep_every_window_within_the_limit(
    max_calls: int, period: float, gaps: list[float], wait: list[bool]
) -> None:
    """Booking each call at booking_time() (raise-mode calls only when it is now) keeps at most
    max_calls admissions in every half-open window, serves waiters in arrival order, and admits
    at once whenever the log has room."""
    log: list[float] = []
    admitted: list[float] = []
    now = 0.0
    for gap, waits in zip(gaps, wait, strict=False):
        now += gap
        live = [t for t in log if t + period > now]
        at = booking_time(live, now, max_calls, period)
        assert at >= now
        if len(live) < max_calls:
            assert at == now
        if at > now and not waits:
            continue
        if at > now:
            assert all(at >= t for t in live)  # a waiter is served after every earlier booking
        log = [*live, at]
        admitted.append(at)
    admitted.sort()
    for i, start in enumerate(admitted):
        in_window = [t for t in admitted if t <= start < t + period]  # as the rule compares
        assert len(in_window) <= max_calls, (i, admitted)
