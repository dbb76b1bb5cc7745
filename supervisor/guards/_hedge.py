"""Hedging's trio shell: race a slow call against more attempts; the first answer wins.

:func:`race` drives one :class:`~supervisor.cores.HedgeRun` in a nursery: it launches the
primary attempt, sleeps until the next hedge is due (or an attempt ends), launches hedges, and
cancels the losers once one attempt answers. :class:`Hedge` (and :func:`hedge`) use it on any
``async def`` function; a guarded service of a tree uses the same :func:`race` for its attempts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar

import trio

from .._config import exception_types
from .._errors import shown
from .._listeners import Listeners
from ..rules._hedge import HedgeCore, HedgeLaunched, HedgeRun, HedgeSettled, HedgeStatistics
from ._decorate import decorate, qualname_of

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

HedgeEvent = HedgeLaunched | HedgeSettled
_INF = math.inf


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception a nursery's group stands for: its only leaf that is not a
    ``trio.Cancelled`` (a ``KeyboardInterrupt``, a listener's error), else its first
    ``Cancelled``; the group itself when several errors happened at once."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    others = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
    if len(others) == 1:
        return others[0]
    if not others:
        return leaves[0]
    return group


class _Race(Generic[T]):
    """One race in one nursery; the attempts end it by cancelling the nursery's scope."""

    __slots__ = (
        "admit",
        "answer",
        "counts",
        "fatal",
        "last_error",
        "launched",
        "nursery",
        "parked",
        "run",
    )

    def __init__(
        self,
        run: HedgeRun,
        admit: Callable[[int], Callable[[], Awaitable[T]] | None],
        counts: Callable[[Exception], bool],
        launched: Callable[[int, float, str], None],
        nursery: trio.Nursery,
    ) -> None:
        self.run = run
        self.admit = admit
        self.counts = counts
        self.launched = launched
        self.nursery = nursery
        self.answer: list[T] = []
        self.last_error: Exception | None = None
        self.fatal: Exception | None = None
        self.parked: trio.lowlevel.Task | None = None

    def done(self) -> None:
        # The call has its outcome: cancel what still runs, wake the waiting race.
        if self.run.running:
            self.nursery.cancel_scope.cancel()
        task = self.parked
        if task is not None:
            self.parked = None
            trio.lowlevel.reschedule(task)

    async def wait(self, due: float) -> None:
        # Park until done() or until ``due``; a plain park (no cancellation raised) when woken.
        def abort(_: object) -> trio.lowlevel.Abort:
            self.parked = None
            return trio.lowlevel.Abort.SUCCEEDED

        self.parked = trio.lowlevel.current_task()
        if due == _INF:
            await trio.lowlevel.wait_task_rescheduled(abort)
            return
        with trio.move_on_at(due) as timer:
            await trio.lowlevel.wait_task_rescheduled(abort)
        if timer.cancelled_caught:
            # An attempt answering at the due time itself is not late: let those woken at this
            # same instant report first.
            await trio.lowlevel.checkpoint()

    def launch_due(self, now: float) -> None:
        # Launch the hedge due at ``now`` (or skip it, and the next, while they cannot be
        # admitted and are still due).
        run = self.run
        while run.next_due() <= now:
            reason = "failure" if run.owed else "delay"
            number = len(run.launched)
            fn = self.admit(number)
            if fn is None:
                run.skip(now)
                continue
            run.launch(now)
            self.nursery.start_soon(self.attempt, number, fn)
            self.launched(number, now, reason)
            return

    async def attempt(self, number: int, fn: Callable[[], Awaitable[T]]) -> None:
        run = self.run
        try:
            value = await fn()
        except Exception as exc:
            now = trio.current_time()
            run.failed(number, now)
            if not self.counts(exc):
                if self.fatal is None:
                    self.fatal = exc  # not a failure hedging handles: it ends the call
                self.done()
                return
            self.last_error = exc
            self.launch_due(now)
            if run.gave_up:
                self.done()
            return
        except BaseException:  # cancelled (or KeyboardInterrupt...): counted as nothing
            run.cancelled(number)
            raise
        if run.winner is None and self.fatal is None:
            run.succeeded(number, trio.current_time())
            self.answer.append(value)
            self.done()
        else:  # answered in the same batch as the winner: a loser all the same
            run.cancelled(number)


async def _alone(run: HedgeRun, first: Callable[[], Awaitable[T]]) -> T:
    # The primary attempt in the caller's own task, with the same accounting as in a race.
    try:
        value = await first()
    except Exception:
        run.failed(0, trio.current_time())
        raise
    except BaseException:
        run.cancelled(0)
        raise
    run.succeeded(0, trio.current_time())
    return value


async def race(
    run: HedgeRun,
    admit: Callable[[int], Callable[[], Awaitable[T]] | None],
    *,
    counts: Callable[[Exception], bool],
    launched: Callable[[int, float, str], None],
) -> T:
    """Run the hedged call ``run`` to its outcome.

    Args:
        run: the call's state, its primary attempt (0) launched at its start.
        admit: ``admit(n)`` gives the zero-argument coroutine function of attempt ``n`` (it is
            called for the primary first, which it must admit), or ``None`` when hedge ``n``
            cannot be admitted now (it is skipped).
        counts: whether an attempt's exception is a failure hedging handles (another attempt is
            launched at once, if any is left); any other exception ends the call at once with
            that exception, the other attempts cancelled.
        launched: called synchronously as ``launched(n, now, reason)`` after hedge ``n`` starts
            (``reason``: ``"delay"`` or ``"failure"``).

    Every attempt runs as a task of one nursery, opened and closed by this call; the first to
    answer (or the failure that leaves nothing to run) cancels the others and wakes the race.
    When no hedge can fall due before the deadline, the primary runs alone in the caller's task.

    Returns:
        The winning attempt's result.

    Raises:
        Exception: the last failure, when every attempt failed and no hedge was left; an
            exception ``counts`` refused, unchanged; whatever ``admit`` or ``launched`` raised.

    Cancellation: every running attempt is cancelled and ``trio.Cancelled`` propagates (as
    itself, not inside an exception group); each attempt ends counted as cancelled.
    """
    first = admit(0)
    if first is None:
        raise RuntimeError("race(): the primary attempt must be admitted")
    if run.next_due() == _INF:  # no hedge can fall due before the deadline: no nursery, no task
        return await _alone(run, first)
    try:
        async with trio.open_nursery() as nursery:
            state: _Race[T] = _Race(run, admit, counts, launched, nursery)
            nursery.start_soon(state.attempt, 0, first)
            while state.fatal is None and run.winner is None and not run.gave_up:
                now = trio.current_time()
                due = run.next_due()
                if due <= now:
                    state.launch_due(now)
                else:
                    await state.wait(due)
    except BaseExceptionGroup as group:
        raise _single(group) from group
    if state.fatal is not None:
        raise state.fatal
    if state.answer:
        return state.answer[0]
    if state.last_error is None:  # pragma: no cover - a run without a winner had a failure
        raise RuntimeError("a hedged call ended with neither an answer nor a failure")
    raise state.last_error


class Hedge:
    """Hedged calls: when an attempt has not answered ``delay`` seconds after it started, start
    another one beside it, at most ``max_hedges`` (default 1); the first to answer wins and the
    others are cancelled (Polly's hedging, resilience4j's ``Hedge``).

    A hedge is due exactly ``delay`` after the latest attempt started; an attempt answering at
    that very instant still wins without it. ``delay`` (seconds >= 0) is fixed, or, with
    ``percentile`` (e.g. 0.95), the delay used until ``min_samples`` answers were seen; from then
    on the delay is that percentile of the latencies of the last ``samples`` winning attempts
    (see :class:`~supervisor.cores.HedgeCore`).

    An attempt that raises one of ``exceptions`` (default: any ``Exception``) is a failure: the
    next hedge starts at once, if one is left; when every attempt failed and none is left, the
    last failure is raised. Any other exception is raised at once, the other attempts cancelled.
    No hedge starts at or after the caller's trio deadline.

    Use it as a decorator (``@hedged``) or ``await hedged.call(fn, *args, **kwargs)``. Every call
    runs its attempts in a nursery of its own: when it returns or raises, no attempt is left
    running. Listeners (:meth:`add_listener`) get a :class:`~supervisor.cores.HedgeLaunched` per
    hedge and a :class:`~supervisor.cores.HedgeSettled` per call that launched one.

    .. note:: Each hedge is one more request to the dependency: hedge only idempotent calls, and
       keep ``max_hedges`` small.

    Cancellation: cancelling the caller cancels every attempt; ``trio.Cancelled`` propagates.

    Raises:
        ConfigError: a bad ``delay``, ``max_hedges``, ``percentile``, ``min_samples`` or
            ``samples`` (see :class:`~supervisor.cores.HedgeCore`).
        TypeError: ``name`` is not a string, or ``exceptions`` are not ``Exception`` classes.
    """

    __slots__ = ("_core", "_exceptions", "_listeners", "name")

    def __init__(
        self,
        name: str,
        delay: float,
        *,
        max_hedges: int = 1,
        percentile: float | None = None,
        min_samples: int = 20,
        samples: int = 100,
        exceptions: type[Exception] | tuple[type[Exception], ...] = Exception,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a string (got {shown(name)})")
        self.name = name
        self._core = HedgeCore(
            delay=delay,
            max_hedges=max_hedges,
            percentile=percentile,
            min_samples=min_samples,
            samples=samples,
        )
        self._exceptions = exception_types(exceptions)
        self._listeners: Listeners[HedgeEvent] = Listeners()

    @property
    def core(self) -> HedgeCore:
        """The pure policy this shell drives."""
        return self._core

    def add_listener(self, callback: Callable[[HedgeEvent], object]) -> None:
        """Call ``callback(event)`` synchronously for every :class:`HedgeLaunched` and
        :class:`HedgeSettled`. A listener that raises makes the call raise its error (the
        attempts are cancelled first).

        Raises:
            TypeError: ``callback`` is not callable.
        """
        self._listeners.add(callback)

    def statistics(self) -> HedgeStatistics:
        """Totals: calls, hedged calls, hedges, hedge wins, cancelled losers, and the delay."""
        return self._core.statistics()

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Call ``fn(*args, **kwargs)`` hedged; see the class doc."""
        attempt = functools.partial(fn, *args, **kwargs)
        return await self._run(attempt)

    async def _run(self, attempt: Callable[[], Awaitable[T]]) -> T:
        now = trio.current_time()
        run = self._core.start(now, deadline=trio.current_effective_deadline())
        listeners = self._listeners
        name = self.name
        exceptions = self._exceptions

        def launched(number: int, at: float, reason: str) -> None:
            if listeners:
                listeners.emit(
                    HedgeLaunched(name=name, at=at, hedge=number, after=at - now, reason=reason)
                )

        try:
            result = await race(
                run,
                lambda _number: attempt,
                counts=lambda exc: isinstance(exc, exceptions),
                launched=launched,
            )
        except Exception:
            self._settled(run)
            raise
        self._settled(run)
        return result

    def _settled(self, run: HedgeRun) -> None:
        # Only for a call that reached its outcome: a cancelled call publishes nothing.
        settled = run.settle(self.name, trio.current_time())
        if settled is not None and self._listeners:
            self._listeners.emit(settled)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Guard ``fn`` (an ``async def`` function or method) with this hedge.

        Raises:
            TypeError: ``fn`` is a plain function (attempts run as trio tasks).
        """
        return decorate(
            fn,
            rule="hedge",
            around_async=self._run,
            around_sync=None,
            extra={"hedge": self},
        )

    def __repr__(self) -> str:
        core = self._core
        return (
            f"<Hedge {self.name!r} delay {core.hedge_delay()}s, up to {core.max_hedges} hedges, "
            f"{core.hedges} launched, {core.hedge_wins} won>"
        )


def hedge(
    delay: float,
    *,
    max_hedges: int = 1,
    percentile: float | None = None,
    min_samples: int = 20,
    samples: int = 100,
    exceptions: type[Exception] | tuple[type[Exception], ...] = Exception,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Make one :class:`Hedge` per decorated function, named after its ``__qualname__``, shared
    by every caller (its delay learns from all of them) and exposed as ``fn.hedge``.

    Raises:
        ConfigError, TypeError: at once, for a bad option (see :class:`Hedge`); ``TypeError``
            also when decorating a plain ``def`` function.
    """
    options: dict[str, Any] = {
        "max_hedges": max_hedges,
        "percentile": percentile,
        "min_samples": min_samples,
        "samples": samples,
        "exceptions": exceptions,
    }
    Hedge("", delay, **options)  # validate now

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        return Hedge(qualname_of(fn), delay, **options)(fn)

    return decorator


__all__ = ["Hedge", "HedgeEvent", "hedge", "race"]
