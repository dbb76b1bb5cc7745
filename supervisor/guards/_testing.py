"""Testing mode: :func:`testing` makes retries quick, caps attempts, holds breakers open or closed
by name and raises fault flags, for the body of one ``with`` (as stamina's ``set_testing`` and
tenacity's ``retry_with``).

Where the switch lives, so that nothing pays for it when it is off: one module-level value,
:data:`_ACTIVE`, read only on a retry loop's failure path (:func:`next_delay`, which both retry
shells call instead of the schedule's own ``next_delay`` once an attempt has failed) and when a
breaker is made (:func:`track`). A call that succeeds never looks at it.
"""

# ruff: noqa: PT028 - `testing` is named for what it is for; it is not a test function

from __future__ import annotations

import contextlib
import fnmatch
import math
import random
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._config import COUNT, NON_NEGATIVE, UNSET, Unset
from .._errors import ConfigError
from ..rules._breaker import CircuitState
from ..rules._faults import FaultFlags, fault_flags

if TYPE_CHECKING:
    from ..rules._retry import RetrySchedule
    from ._breaker import CircuitBreaker

__all__ = ["TestingMode", "current_mode", "next_delay", "testing", "track"]

_HELD_CLOSED_THRESHOLD: Final = 2**62
"""The failure threshold of a breaker held closed: no run of failures reaches it."""


def _patterns(param: str, value: Any, what: str = "breaker names or patterns") -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    try:
        names = tuple(items)
    except TypeError as exc:
        raise ConfigError(f"`{param}` must be {what} (got {value!r})") from exc
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"`{param}` must be {what} (got {value!r})")
    return names


@attrs.frozen(kw_only=True)
class TestingMode:
    """The testing mode in force (the innermost :func:`testing`, merged with the outer ones)."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    retry_delay: float | None = None
    """Seconds every retry sleeps instead of its scheduled delay (``None``: as scheduled)."""
    max_attempts: int | None = None
    """Attempts at most per call, the first included, whatever the retry rule says (``None``: as
    the rule says)."""
    open_breakers: tuple[str, ...] = ()
    """Names (``fnmatch`` patterns) of the breakers held open."""
    closed_breakers: tuple[str, ...] = ()
    """Names (``fnmatch`` patterns) of the breakers held closed: failures never open them."""
    flags: frozenset[str] = frozenset()
    """Fault flags turned on."""

    def holds(self, name: str) -> str | None:
        """``"open"`` or ``"closed"`` where this mode holds the breaker ``name``, else ``None``
        (a name matching both lists is held open)."""
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.open_breakers):
            return "open"
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.closed_breakers):
            return "closed"
        return None


_ACTIVE: TestingMode | None = None
"""The testing mode in force, or ``None`` (the normal case: nothing is changed)."""

_BREAKERS: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()
"""Every live breaker, so that :func:`testing` can find them by name."""


@attrs.define(eq=False)
class _Hold:
    breaker: CircuitBreaker
    how: str
    was_forced: bool
    threshold: int


@attrs.define(eq=False)
class _Level:
    own: TestingMode
    """The breaker lists given to this :func:`testing` itself."""
    holds: list[_Hold] = attrs.field(factory=list)
    """What it did to which breaker, in order."""


_LEVELS: list[_Level] = []
"""One per active :func:`testing`, innermost last."""


def _apply(breaker: CircuitBreaker, how: str, holds: list[_Hold]) -> None:
    core = breaker.core
    holds.append(_Hold(breaker, how, core.forced_open, core.failure_threshold))
    if how == "open":
        breaker.force_open()
    else:
        if core.forced_open or breaker.state is not CircuitState.CLOSED:
            breaker.reset()
        core.failure_threshold = _HELD_CLOSED_THRESHOLD


def _undo(hold: _Hold) -> None:
    breaker, core = hold.breaker, hold.breaker.core
    if hold.how == "open":
        if core.forced_open and not hold.was_forced:
            breaker.reset()
    else:
        core.failure_threshold = hold.threshold
        if hold.was_forced and not core.forced_open:
            breaker.force_open()


def track(breaker: CircuitBreaker) -> None:
    """Remember ``breaker`` (called by every new breaker); while a testing mode holds its name,
    the hold applies to it at once."""
    _BREAKERS.add(breaker)
    for level in reversed(_LEVELS):
        how = level.own.holds(breaker.name)
        if how is not None:
            _apply(breaker, how, level.holds)
            return


def next_delay(
    schedule: RetrySchedule,
    attempt: int,
    error: BaseException,
    *,
    rng: random.Random,
    deadline: float = math.inf,
    now: float = 0.0,
) -> float | None:
    """What a retry loop does after failed attempt ``attempt``: seconds to sleep, or ``None`` to
    give up; ``schedule.next_delay`` itself unless a testing mode is in force.

    Under a testing mode: a ``max_attempts`` cap gives up from that attempt on; a
    ``retry_delay`` replaces the scheduled delay (the schedule still decides whether to retry at
    all: error types, its own attempts, ``retry_after`` caps), and the deadline check is made
    with the replaced delay.
    """
    mode = _ACTIVE
    if mode is None:
        return schedule.next_delay(attempt, error, rng=rng, deadline=deadline, now=now)
    if mode.max_attempts is not None and attempt >= mode.max_attempts:
        return None
    if mode.retry_delay is None:
        return schedule.next_delay(attempt, error, rng=rng, deadline=deadline, now=now)
    delay = schedule.next_delay(attempt, error, rng=rng)
    if delay is None:
        return None
    delay = mode.retry_delay
    if now + delay >= deadline:
        return None
    return delay


def current_mode() -> TestingMode | None:
    """The testing mode in force, or ``None``."""
    return _ACTIVE


@contextlib.contextmanager
def testing(
    *,
    retry_delay: float | Unset | None = UNSET,
    max_attempts: int | Unset | None = UNSET,
    open_breakers: str | Iterable[str] = (),
    closed_breakers: str | Iterable[str] = (),
    flags: str | Iterable[str] = (),
    flag_set: FaultFlags | None = None,
) -> Iterator[TestingMode]:
    """Testing mode for the body of ``with``: ``with supervisor.testing(): ...``.

    Args:
        retry_delay: seconds every retry sleeps instead of its scheduled delay (``retry``,
            :class:`~supervisor.Retrier` and the retries of guarded services). Default ``0.0``
            for the outermost mode (retries do not wait, yet still checkpoint), else inherited;
            ``None`` keeps the scheduled delays.
        max_attempts: attempts at most per call, the first included, for every retry rule
            (``None``: as each rule says). Default: inherited (none for the outermost).
        open_breakers: names (or ``fnmatch`` patterns, ``"app/*"``) of breakers held open with
            ``force_open()``: existing ones at once, and any made while the mode is in force.
        closed_breakers: names or patterns of breakers held closed: an open one is reset, and no
            run of failures opens them (a name in both lists is held open).
        flags: fault flags turned on (see :class:`~supervisor.FaultFlags`).
        flag_set: the flags to turn them on in (default the process-wide
            :data:`~supervisor.fault_flags`).

    On the way out (also on an error or a cancellation) everything is put back: the outer mode
    (or none) is in force again, breakers this mode forced open are reset (unless they were
    forced open before), breakers it held closed get their failure threshold back (and are forced
    open again if they were before), and the flags it turned on are off. Modes nest; the inner
    one's options win, its breaker and flag lists add to the outer's.

    The mode is process-wide, not per task: it is meant for tests, where one test runs at a time.

    Yields:
        the :class:`TestingMode` in force.

    Raises:
        ConfigError: a negative ``retry_delay``, a ``max_attempts`` that is not an integer >= 1,
            or a name that is not a non-empty string.
    """
    global _ACTIVE  # noqa: PLW0603 - the one switch, read on the failure path only
    outer = _ACTIVE
    if retry_delay is UNSET:
        delay = 0.0 if outer is None else outer.retry_delay
    elif retry_delay is None:
        delay = None
    else:
        delay = NON_NEGATIVE.check("retry_delay", retry_delay)
    if max_attempts is UNSET:
        attempts = None if outer is None else outer.max_attempts
    elif max_attempts is None:
        attempts = None
    else:
        attempts = int(COUNT.check("max_attempts", max_attempts))
    opened = _patterns("open_breakers", open_breakers)
    closed = _patterns("closed_breakers", closed_breakers)
    raised = frozenset(_patterns("flags", flags, "flag names"))
    if flag_set is not None and not isinstance(flag_set, FaultFlags):
        raise ConfigError(f"`flag_set` must be a FaultFlags (got {flag_set!r})")
    target = fault_flags if flag_set is None else flag_set
    mode = TestingMode(
        retry_delay=delay,
        max_attempts=attempts,
        open_breakers=(() if outer is None else outer.open_breakers) + opened,
        closed_breakers=(() if outer is None else outer.closed_breakers) + closed,
        flags=(frozenset() if outer is None else outer.flags) | raised,
    )
    # This mode's own holds: the outer ones are in force already.
    level = _Level(TestingMode(open_breakers=opened, closed_breakers=closed))
    _LEVELS.append(level)
    _ACTIVE = mode
    try:
        with target.raised(*sorted(raised)):
            for breaker in list(_BREAKERS):
                how = level.own.holds(breaker.name)
                if how is not None:
                    _apply(breaker, how, level.holds)
            yield mode
    finally:
        _ACTIVE = outer
        _LEVELS.remove(level)
        for hold in reversed(level.holds):
            _undo(hold)
