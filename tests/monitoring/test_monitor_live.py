"""The monitor's trio shell: refresh timing, terminal vs plain output, failures, the one-liner."""

from __future__ import annotations

import io
import threading

import pytest
import trio
import trio.testing
from rich.console import Console

from supervisor import ConfigError
from supervisor.console._feed import FeedState
from supervisor.console._monitor import Monitor, monitor
from supervisor.observe._snapshot import NodeSnapshot, SystemSnapshot


def snap(at: float, name: str = "app") -> SystemSnapshot:
    """A minimal snapshot taken at `at`."""
    root = NodeSnapshot(path=name, name=name, kind="supervisor", state="running")
    return SystemSnapshot(at=at, name=name, tree=root)


def plain_console() -> Console:
    """A non-terminal console (like a pipe) that keeps what it prints."""
    return Console(file=io.StringIO(), width=80, force_terminal=False, record=True)


def terminal_console() -> tuple[Console, io.StringIO]:
    """A console that believes it is an 80x24 terminal."""
    out = io.StringIO()
    return Console(file=out, width=80, height=24, force_terminal=True, color_system=None), out


class Clocked:
    """A snapshot source that records when it was asked."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self) -> SystemSnapshot:
        now = trio.current_time()
        self.asked.append(now)
        return snap(now)


async def test_refreshes_every_interval_start_to_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The source is asked at entry and then exactly every `interval` seconds."""
    source = Clocked()
    start = trio.current_time()
    async with monitor(source, interval=2.0, console=plain_console()):
        assert source.asked == [start]  # the first view is drawn before the body runs
        await trio.sleep(5.0)
    assert [at - start for at in source.asked] == [0.0, 2.0, 4.0]


async def test_a_slow_source_skips_missed_ticks(autojump_clock: trio.testing.MockClock) -> None:
    """A refresh that overruns the interval skips the missed ticks instead of bunching them."""
    asked: list[float] = []

    async def slow() -> SystemSnapshot:
        asked.append(trio.current_time())
        await trio.sleep(5.0)
        return snap(trio.current_time())

    start = trio.current_time()
    async with monitor(slow, interval=2.0, console=plain_console()):
        await trio.sleep(8.0)  # the body starts once the first view is drawn, at +5
    assert [at - start for at in asked] == [0.0, 6.0, 12.0]


async def test_non_terminal_prints_plain_snapshots_separated_by_rules(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """On a non-terminal console each refresh prints the whole view, a rule between views."""
    console = plain_console()
    async with monitor(Clocked(), interval=1.0, console=console) as shown:
        await trio.sleep(2.5)
        assert shown.statistics().live is False
    text = console.export_text()
    assert text.count("app  at ") == 3
    assert text.count("─" * 80) == 3 + 2  # under each events table head, and the two rules
    assert "\x1b[" not in text


async def test_terminal_uses_live_without_a_refresh_thread(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """On a terminal the view is a rich Live refreshed from the trio task; no thread starts."""
    console, out = terminal_console()
    threads = threading.active_count()
    async with monitor(Clocked(), interval=1.0, console=console) as shown:
        await trio.sleep(3.5)
        assert threading.active_count() == threads
        stats = shown.statistics()
        assert (stats.live, stats.refreshes, stats.received) == (True, 4, 4)
    assert "app  at 3.00s" in out.getvalue()
    assert "\x1b[?25l" in out.getvalue()  # Live hid the cursor: it drew in place


async def test_a_failing_source_shows_disconnected_then_recovers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A source that raises is shown as disconnected (retrying) and picked up when it returns."""
    up = True

    def source() -> SystemSnapshot:
        if not up:
            raise ConnectionError("nothing listening at unix:/tmp/app.sock")
        return snap(trio.current_time())

    console = plain_console()
    async with monitor(source, interval=1.0, console=console) as shown:
        start = trio.current_time()
        await trio.sleep(0.5)
        up = False
        await trio.sleep(2.0)  # failures at +1 and +2
        assert shown.statistics().state is FeedState.DISCONNECTED
        assert shown.statistics().failed == 2
        up = True
        await trio.sleep(1.0)  # success at +3
        assert shown.statistics().state is FeedState.LIVE
    text = console.export_text()
    lines = text.splitlines()
    statuses = [line for line in lines if line.startswith("disconnected (retrying)")]
    assert [line[:34] for line in statuses] == [
        "disconnected (retrying) for 0.0s: ",
        "disconnected (retrying) for 1.0s: ",
    ]
    assert statuses[1].startswith(
        "disconnected (retrying) for 1.0s: nothing listening at unix:/tmp/app.sock; show"
    )
    assert len(statuses[1]) == 80  # cut to the width with an ellipsis, never wrapped
    assert lines[lines.index(statuses[0]) - 1] == f"app  at {start:.2f}s  0 services"
    assert text.count("disconnected (retrying)") == 2
    assert text.rstrip().endswith("none yet")  # the last view is live again: no status line


async def test_a_source_returning_something_else_is_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A source that returns anything but a SystemSnapshot is recorded as a failure, named."""
    shown = Monitor(lambda: "oops", console=plain_console())  # type: ignore[arg-type,return-value]
    assert await shown.poll() is FeedState.DISCONNECTED
    assert shown.feed.error == "the source returned str, not a SystemSnapshot"


async def test_an_object_with_a_snapshot_method_is_a_source() -> None:
    """Anything with snapshot() (a running tree) can be monitored, sync or async."""

    class TreeLike:
        def snapshot(self) -> SystemSnapshot:
            return snap(1.0, "tree")

    class AsyncTreeLike:
        async def snapshot(self) -> SystemSnapshot:
            await trio.lowlevel.checkpoint()
            return snap(2.0, "atree")

    for source, name in ((TreeLike(), "tree"), (AsyncTreeLike(), "atree")):
        shown = Monitor(source, console=plain_console())
        assert await shown.poll() is FeedState.LIVE
        assert shown.feed.snapshot is not None
        assert shown.feed.snapshot.name == name


async def test_the_body_exception_propagates_and_stops_the_monitor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An exception in the body of `async with monitor(...)` propagates unchanged."""
    source = Clocked()
    with pytest.raises(KeyError):
        async with monitor(source, interval=1.0, console=plain_console()):
            raise KeyError("boom")
    await trio.sleep(5.0)
    assert len(source.asked) == 1


async def test_cancellation_stops_the_monitor(autojump_clock: trio.testing.MockClock) -> None:
    """Cancelling the enclosing scope stops the monitor and is not swallowed."""
    source = Clocked()
    with trio.move_on_after(2.5) as scope:
        async with monitor(source, interval=1.0, console=plain_console()):
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert len(source.asked) == 3


async def test_keyboard_interrupt_from_the_source_is_not_swallowed() -> None:
    """A BaseException from the source (not an Exception) propagates out of poll()."""

    def source() -> SystemSnapshot:
        raise KeyboardInterrupt

    shown = Monitor(source, console=plain_console())
    with pytest.raises(KeyboardInterrupt):
        await shown.poll()
    assert shown.feed.failed == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interval": 0}, "`interval` must be a finite number > 0 (got 0)"),
        ({"interval": float("inf")}, "`interval` must be a finite number > 0 (got inf)"),
        ({"max_events": -2}, "`max_events` must be >= 0 (got -2)"),
    ],
)
def test_bad_options_raise_config_error(options: dict[str, float], message: str) -> None:
    """A bad interval or max_events raises ConfigError naming the field and the value."""
    with pytest.raises(ConfigError) as info:
        Monitor(Clocked(), **options)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_a_source_that_is_not_callable_is_a_type_error() -> None:
    """A source with no snapshot() that is not callable raises TypeError naming its type."""
    with pytest.raises(TypeError, match=r"`source` must .* \(got int\)"):
        Monitor(42)  # type: ignore[arg-type]


def test_repr_and_statistics() -> None:
    """The repr says where the feed stands; statistics start at zero."""
    shown = Monitor(Clocked(), interval=0.5, console=plain_console())
    assert repr(shown) == "<Monitor waiting, every 0.5s, 0 snapshots, 0 failed>"
    stats = shown.statistics()
    assert (stats.state, stats.refreshes, stats.received, stats.failed) == (
        FeedState.WAITING,
        0,
        0,
        0,
    )
