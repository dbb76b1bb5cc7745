"""The pure core of fault injection: what may fire (window, flag, limit), how often (rate), in
which order, and that the same seed gives the same decisions."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from supervisor import ConfigError, Fault, FaultFlags, FaultKind, FaultPoint, fault_flags
from supervisor.cores import FaultCore
from supervisor.rules._faults import NO_FAULT


def test_a_fault_is_exactly_one_of_error_latency_result() -> None:
    """Each fault names one effect; its kind says which."""
    assert Fault(error=ConnectionError).kind is FaultKind.ERROR
    assert Fault(latency=0.5).kind is FaultKind.LATENCY
    assert Fault(result=None).kind is FaultKind.RESULT
    with pytest.raises(
        ConfigError, match=r"exactly one of `error`, `latency`, `result` \(got none\)"
    ):
        Fault()
    with pytest.raises(ConfigError, match=r"\(got error, latency\)"):
        Fault(error=ConnectionError, latency=1.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"latency": 1.0, "rate": 1.5}, r"`rate` must be a number from 0 to 1 \(got 1.5\)"),
        ({"latency": 1.0, "rate": True}, r"`rate` must be a number from 0 to 1 \(got True\)"),
        ({"latency": -1.0}, r"`latency` must be a number >= 0 \(got -1.0\)"),
        ({"latency": 1.0, "start": -2}, r"`start` must be a number >= 0 \(got -2\)"),
        ({"latency": 1.0, "start": 3.0, "end": 3.0}, r"`end` must be after `start`"),
        ({"latency": 1.0, "limit": 0}, r"`limit` must be an integer >= 1 \(got 0\)"),
        ({"latency": 1.0, "flag": ""}, r"`flag` must be a non-empty string"),
        ({"error": ValueError("x")}, r"`error` must be an Exception class"),
        ({"error": KeyboardInterrupt}, r"`error` must be an Exception class"),
        ({"error": OSError, "message": 3}, r"`message` must be a string \(got 3\)"),
        ({"latency": 1.0, "point": "later"}, r"`point` 'later' is not one of request, start"),
        ({"result": 1, "point": "start"}, r"a fault at the `start` point cannot replace"),
    ],
)
def test_bad_faults_are_refused(options: dict[str, object], message: str) -> None:
    """A bad value raises ConfigError naming the field and the value."""
    with pytest.raises(ConfigError, match=message):
        Fault(**options)  # type: ignore[arg-type]


def test_describe_and_make_error() -> None:
    """A fault says what it does in one line; an error fault makes a new error each time."""
    refused = Fault(error=ConnectionError, message="refused")
    assert refused.describe() == "ConnectionError: refused"
    assert Fault(latency=1.5).describe() == "+1.5s latency"
    assert Fault(result=[]).describe() == "result []"
    first, second = refused.make_error(), refused.make_error()
    assert isinstance(first, ConnectionError)
    assert str(first) == "refused"
    assert first is not second
    with pytest.raises(TypeError):
        Fault(latency=1.0).make_error()


def test_window_is_half_open() -> None:
    """A fault fires from exactly ``start`` and never from exactly ``end`` on."""
    core = FaultCore([Fault(error=OSError, start=1.0, end=2.0)])
    rng = random.Random(0)
    assert core.decide(0.999, (), rng) is NO_FAULT
    assert core.decide(1.0, (), rng).fault is core.faults[0]
    assert core.decide(1.999, (), rng).fault is core.faults[0]
    assert core.decide(2.0, (), rng) is NO_FAULT
    assert core.fired == [2]


def test_flag_gates_a_fault() -> None:
    """A fault with a flag fires only while the flag is on."""
    flags = FaultFlags()
    core = FaultCore([Fault(result="stub", flag="outage")])
    rng = random.Random(0)
    assert core.decide(0.0, flags, rng) is NO_FAULT
    flags.on("outage")
    assert core.decide(0.0, flags, rng).fault is core.faults[0]
    flags.off("outage")
    assert core.decide(0.0, flags, rng) is NO_FAULT


def test_limit_counts_firings() -> None:
    """A fault with a limit fires at most that many times."""
    core = FaultCore([Fault(error=OSError, limit=2)])
    rng = random.Random(0)
    decisions = [core.decide(float(t), (), rng) for t in range(5)]
    assert [d.fault is not None for d in decisions] == [True, True, False, False, False]


def test_latencies_add_up_and_the_first_error_or_result_wins() -> None:
    """Latency faults that fire add up; the first error or result fault ends the look."""
    slow, slower = Fault(latency=0.25), Fault(latency=0.5)
    error, result = Fault(error=OSError), Fault(result=1)
    core = FaultCore([slow, error, slower, result])
    decision = core.decide(0.0, (), random.Random(0))
    assert decision.delay == 0.25
    assert decision.fault is error
    assert decision.fired == (slow, error)
    assert core.fired == [1, 1, 0, 0]


def test_points_are_separate() -> None:
    """Start faults are decided only for starts, request faults only for requests."""
    start = Fault(error=RuntimeError, point="start")
    core = FaultCore([start, Fault(latency=1.0)])
    assert core.has(FaultPoint.START)
    assert core.has(FaultPoint.REQUEST)
    rng = random.Random(0)
    assert core.decide(0.0, (), rng, point=FaultPoint.START).fault is start
    assert core.decide(0.0, (), rng).fault is None
    assert not FaultCore([]).has(FaultPoint.START)


def test_rate_one_and_zero_draw_nothing() -> None:
    """Certain faults (rate 1) and impossible ones (rate 0) never touch the random source."""
    rng = random.Random(5)
    state = rng.getstate()
    core = FaultCore([Fault(latency=0.1, rate=0.0), Fault(latency=0.1, rate=1.0)])
    assert core.decide(0.0, (), rng).delay == 0.1
    assert rng.getstate() == state


@given(seed=st.integers(), rate=st.floats(min_value=0.0, max_value=1.0))
def test_same_seed_same_decisions(seed: int, rate: float) -> None:
    """Two cores fed the same times, flags and seed decide the same."""

    def run() -> list[bool]:
        core = FaultCore([Fault(error=OSError, rate=rate), Fault(latency=0.1, rate=rate)])
        rng = random.Random(seed)
        return [core.decide(t / 10, (), rng).quiet for t in range(50)]

    assert run() == run()


@settings(max_examples=10)
@given(seed=st.integers(min_value=0, max_value=2**32), rate=st.sampled_from([0.1, 0.5, 0.9]))
def test_rate_is_the_share_of_firings(seed: int, rate: float) -> None:
    """Over many decisions, the share that fired is close to the rate."""
    core = FaultCore([Fault(error=OSError, rate=rate)])
    rng = random.Random(seed)
    fired = sum(not core.decide(0.0, (), rng).quiet for _ in range(4000))
    assert abs(fired / 4000 - rate) < 0.05


def test_faults_must_be_faults() -> None:
    """Anything but a sequence of Fault is refused, naming the place."""
    with pytest.raises(ConfigError, match=r"`faults\[1\]` must be a Fault"):
        FaultCore([Fault(latency=1.0), "slow"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=r"`faults` must be a sequence of Fault"):
        FaultCore("slow")  # type: ignore[arg-type]


def test_flags_raised_restores() -> None:
    """``raised`` turns flags on for the block and off again, leaving ones already on."""
    flags = FaultFlags(["kept"])
    with flags.raised("kept", "new"):
        assert "new" in flags
        assert "kept" in flags
    assert flags.names == {"kept"}
    with pytest.raises(ConfigError, match="a flag must be a non-empty string"):
        flags.on("")
    assert "anything" not in fault_flags
    assert repr(flags) == "<FaultFlags on: kept>"


class FaultCoreMachine(RuleBasedStateMachine):
    """Firings never exceed a limit, only happen inside windows and while flags are on, and the
    counts follow a simple model."""

    def __init__(self) -> None:
        super().__init__()
        self.faults = [
            Fault(error=OSError, start=1.0, end=5.0, limit=3, rate=0.5),
            Fault(latency=0.2, flag="slow"),
            Fault(result="stub", rate=0.3, start=2.0),
        ]
        self.core = FaultCore(self.faults)
        self.flags = FaultFlags()
        self.rng = random.Random(1)
        self.now = 0.0
        self.model = [0, 0, 0]

    @rule(step=st.floats(min_value=0.0, max_value=1.5))
    def advance(self, step: float) -> None:
        self.now += step

    @rule(on=st.booleans())
    def toggle(self, on: bool) -> None:
        (self.flags.on if on else self.flags.off)("slow")

    @precondition(lambda self: self.now < 20.0)
    @rule()
    def decide(self) -> None:
        decision = self.core.decide(self.now, self.flags, self.rng)
        for fault in decision.fired:
            index = self.faults.index(fault)
            self.model[index] += 1
            if index == 0:
                assert 1.0 <= self.now < 5.0
            if index == 1:
                assert "slow" in self.flags
            if index == 2:
                assert self.now >= 2.0
        assert decision.delay == (0.2 if self.faults[1] in decision.fired else 0.0)
        assert sum(f.kind is not FaultKind.LATENCY for f in decision.fired) <= 1

    @invariant()
    def counts_follow_the_model(self) -> None:
        assert self.core.fired == self.model
        assert self.model[0] <= 3


TestFaultCoreMachine = FaultCoreMachine.TestCase
TestFaultCoreMachine.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
