"""The feed state machine behind the monitor: waiting, live, disconnected, and back."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from supervisor.console._feed import Feed, FeedState
from supervisor.observe._snapshot import NodeSnapshot, SystemSnapshot


def snap(at: float) -> SystemSnapshot:
    """A minimal snapshot taken at `at`."""
    root = NodeSnapshot(path="app", name="app", kind="supervisor", state="running")
    return SystemSnapshot(at=at, name="app", tree=root)


def test_starts_waiting_and_says_connecting() -> None:
    """Before any request the feed waits and its status says it is connecting."""
    feed = Feed()
    assert feed.state is FeedState.WAITING
    assert feed.status(0.0) == "connecting..."


def test_a_snapshot_makes_it_live_with_no_status() -> None:
    """A received snapshot makes the feed live; a live feed shows no status line."""
    feed = Feed()
    assert feed.on_snapshot(snap(1.0), 1.0) is FeedState.LIVE
    assert feed.status(2.0) is None
    assert feed.snapshot == snap(1.0)


def test_a_process_that_goes_away_shows_disconnected_retrying() -> None:
    """After a failure the status says disconnected (retrying), for how long, and which snapshot."""
    feed = Feed()
    feed.on_snapshot(snap(1.0), 1.0)
    feed.on_failure("nothing listening at unix:/tmp/s", 2.0)
    feed.on_failure("nothing listening at unix:/tmp/s", 3.0)
    assert feed.state is FeedState.DISCONNECTED
    assert feed.failures == 2
    assert feed.snapshot == snap(1.0)  # the last good view is kept
    assert feed.status(4.5) == (
        "disconnected (retrying) for 2.5s: nothing listening at unix:/tmp/s; "
        "showing the snapshot of 1.00s"
    )


def test_reconnects_when_the_process_returns() -> None:
    """The next snapshot after failures makes the feed live again and clears the error."""
    feed = Feed()
    feed.on_failure("refused", 1.0)
    assert feed.status(1.0) == "disconnected (retrying) for 0.0s: refused"
    feed.on_snapshot(snap(5.0), 5.0)
    assert (feed.state, feed.error, feed.failures, feed.disconnected_since) == (
        FeedState.LIVE,
        None,
        0,
        None,
    )
    assert (feed.received, feed.failed) == (1, 1)


class FeedMachine(RuleBasedStateMachine):
    """The feed against a model: the list of outcomes so far."""

    def __init__(self) -> None:
        super().__init__()
        self.feed = Feed()
        self.outcomes: list[tuple[str, float]] = []
        self.now = 0.0

    @rule(step=st.floats(min_value=0.0, max_value=10.0))
    def success(self, step: float) -> None:
        self.now += step
        self.outcomes.append(("ok", self.now))
        assert self.feed.on_snapshot(snap(self.now), self.now) is FeedState.LIVE

    @rule(step=st.floats(min_value=0.0, max_value=10.0), reason=st.sampled_from(["a", "b"]))
    def failure(self, step: float, reason: str) -> None:
        self.now += step
        self.outcomes.append((reason, self.now))
        assert self.feed.on_failure(reason, self.now) is FeedState.DISCONNECTED

    @invariant()
    def matches_the_model(self) -> None:
        feed = self.feed
        oks = [at for kind, at in self.outcomes if kind == "ok"]
        trailing: list[tuple[str, float]] = []
        for outcome in reversed(self.outcomes):
            if outcome[0] == "ok":
                break
            trailing.insert(0, outcome)
        if not self.outcomes:
            assert feed.state is FeedState.WAITING
        elif self.outcomes[-1][0] == "ok":
            assert feed.state is FeedState.LIVE
            assert feed.status(self.now) is None
        else:
            assert feed.state is FeedState.DISCONNECTED
            assert feed.error == self.outcomes[-1][0]
            assert feed.disconnected_since == trailing[0][1]
            status = feed.status(self.now)
            assert status is not None
            assert status.startswith("disconnected (retrying)")
        assert feed.failures == len(trailing)
        assert feed.received == len(oks)
        assert feed.failed == len(self.outcomes) - len(oks)
        assert feed.received_at == (oks[-1] if oks else None)
        assert feed.snapshot == (snap(oks[-1]) if oks else None)


TestFeedMachine = FeedMachine.TestCase
