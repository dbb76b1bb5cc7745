"""Hedging's trio shell: race a slow call against more attempts; the first answer wins.

:func:`race` drives one :class:`~supervisor.cores.HedgeRun` in a nursery: it launches the
primary attempt, sleeps until the next hedge is due (or an attempt ends), launches hedges, and
cancels the losers once one attempt answers. :class:`Hedge` (and :func:`hedge`) use it on any
``async def`` function; a guarded service of a tree uses the same :func:`race` for its attempts.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar

import attrs
import trio

from .._config import exception_types
from .._listeners import Listeners
from ..rules._hedge import HedgeCore, HedgeLaunched, HedgeRun, HedgeSettled, HedgeStatistics
from ._decorate import decorate, qualname_of

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

HedgeEvent = HedgeLaunched | HedgeSettled


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


@attrs.define
class _Race(Generic[T]):
    run: HedgeRun
    counts: Callable[[Exception], bool]
    scopes: dict[int, trio.CancelScope] = attrs.field(factory=dict)
    wake: trio.Event = attrs.field(factory=trio.Event)
    answer: list[T] = attrs.field(factory=list)
    last_error: Exception | None = None
    fatal: Exception | None = None

    def stop_all(self) -> None:
        for scope in self.scopes.values():
            scope.cancel()

    async def attempt(self, number: int, fn: Callable[[], Awaitable[T]]) -> None:
        run = self.run
        ended = False
        try:
            with self.scopes[number]:
                try:
                    value = await fn()
                except Exception as exc:
                    ended = True
                    run.failed(number, trio.current_time())
                    if self.counts(exc):
                        self.last_error = exc
                    elif self.fatal is None:
                        self.fatal = exc  # not a failure hedging handles: it ends the call
                        self.stop_all()
                else:
                    ended = True
                    if run.winner is None and self.fatal is None:
                        for loser in run.succeeded(number, trio.current_time()):
                            self.scopes[loser].cancel()
                        self.answer.append(value)
                    else:  # answered in the same batch as the winner: a loser all the same
                        run.cancelled(number)
        finally:
            if not ended:
                run.cancelled(number)
            self.wake.set()


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

    Returns:
        The winning attempt's result.

    Raises:
        Exception: the last failure, when every attempt failed and no hedge was left; an
            exception ``counts`` refused, unchanged; whatever ``admit`` or ``launched`` raised.

    Cancellation: every running attempt is cancelled and ``trio.Cancelled`` propagates (as
    itself, not inside an exception group); each attempt ends counted as cancelled.
    """
    state: _Race[T] = _Race(run, counts)
    first = admit(0)
    if first is None:
        raise RuntimeError("race(): the primary attempt must be admitted")
    try:
        async with trio.open_nursery() as nursery:

            def start(number: int, fn: Callable[[], Awaitable[T]]) -> None:
                state.scopes[number] = trio.CancelScope()
                nursery.start_soon(state.attempt, number, fn)

            start(0, first)
            while state.fatal is None and run.winner is None:
                now = trio.current_time()
                due = run.next_due()
                if due <= now:
                    reason = "failure" if run.owed else "delay"
                    number = len(run.launched)
                    fn = admit(number)
                    if fn is None:
                        run.skip(now)
                        continue
                    run.launch(now)
                    start(number, fn)
                    launched(number, now, reason)
                    continue
                if run.gave_up:
                    break
                state.wake = trio.Event()
                with trio.move_on_at(due) as timer:
                    await state.wake.wait()
                if timer.cancelled_caught:
                    # An attempt answering at the due time itself is not late: let those woken
                    # at this same instant report before a hedge is launched.
                    await trio.lowlevel.checkpoint()
            state.stop_all()
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
            raise TypeError(f"`name` must be a string (got {name!r})")
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
