"""Fault injection as a pure decision: which injected faults hit one request (or one start).

A :class:`Fault` says what to inject (an error, extra latency, or a replaced result), how often
(``rate``), and when it may fire at all: inside a half-open time window ``[start, end)`` measured
from the injector's origin, while a named flag is on, and at most ``limit`` times. The
:class:`FaultCore` holds the only mutable state (how many times each fault fired) and turns
``(elapsed, flags, rng)`` into a frozen :class:`FaultDecision`; it never reads a clock, never
sleeps and never raises the error it decides on: the shells (``supervisor/guards/_faults.py`` and
the guarded services of a tree) do that.

:class:`FaultFlags` is the set of flags that are on; a process-wide one, :data:`fault_flags`, is
what shells read unless they are given their own.
"""

from __future__ import annotations

import contextlib
import enum
import math
import random
from collections.abc import Container, Iterable, Iterator
from typing import Any, Final

import attrs

from .._config import COUNT, NON_NEGATIVE
from .._errors import ConfigError, shown

__all__ = [
    "Fault",
    "FaultCore",
    "FaultDecision",
    "FaultFlags",
    "FaultKind",
    "FaultPoint",
    "fault_flags",
]


class FaultKind(enum.Enum):
    """What a fault does."""

    ERROR = "error"
    """Raise ``error(message)`` instead of running the call."""
    LATENCY = "latency"
    """Wait ``latency`` seconds first, then go on (other faults may still fire)."""
    RESULT = "result"
    """Return ``result`` instead of running the call."""


class FaultPoint(enum.Enum):
    """Where a fault is injected."""

    REQUEST = "request"
    """Around each request (each attempt of a guarded service; each call of a decorated
    function)."""
    START = "start"
    """Around each start of a service actor (its ``on_start`` or ``on_restart``): an error there
    is a failed start, which its supervisor handles as a crash."""


class _NoResult(enum.Enum):
    NO_RESULT = "no result"


_NO_RESULT: Final = _NoResult.NO_RESULT


def _rate(_instance: Any, _attribute: attrs.Attribute[float], value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and math.isnan(value))
        or not 0 <= value <= 1  # compared as given: a huge int must not reach float()
    ):
        raise ConfigError(f"`rate` must be a number from 0 to 1 (got {shown(value)})")


def _optional_time(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        NON_NEGATIVE.check(attribute.name, value)


def _optional_count(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        COUNT.check(attribute.name, value)


def _error_class(_instance: Any, _attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (isinstance(value, type) and issubclass(value, Exception)):
        raise ConfigError(f"`error` must be an Exception class (got {shown(value)})")


def _flag(_instance: Any, _attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"`flag` must be a non-empty string (got {shown(value)})")


def _point(value: Any) -> FaultPoint:
    if isinstance(value, FaultPoint):
        return value
    message = f"`point` {shown(value)} is not one of request, start"
    if not isinstance(value, str):  # the enum's own error would repr any value, however deep
        raise ConfigError(message, field="point")
    try:
        return FaultPoint(value)
    except ValueError as exc:
        raise ConfigError(message, field="point") from exc


def _show_result(value: Any) -> str:
    return "-" if value is _NO_RESULT else repr(value)


@attrs.frozen(kw_only=True)
class Fault:
    """One fault to inject: exactly one of ``error``, ``latency`` or ``result``, at a ``rate``,
    optionally only in a time window, only while a flag is on, and at most ``limit`` times.

    Examples: ``Fault(error=ConnectionError, message="refused", rate=0.2)``,
    ``Fault(latency=1.5, start=10.0, end=20.0)``, ``Fault(result=[], flag="empty-search")``.

    Raises:
        ConfigError: not exactly one of ``error``, ``latency``, ``result``; a ``rate`` outside
            [0, 1]; a negative ``latency``, ``start`` or ``end``; ``end <= start``; a ``limit``
            that is not an integer >= 1; an empty ``flag``; a ``result`` at the start point.
    """

    error: type[Exception] | None = attrs.field(default=None, validator=_error_class)
    """The exception class raised, as ``error(message)`` (a new instance each time)."""
    message: str = attrs.field(default="injected fault")
    """The message of the raised error."""
    latency: float | None = attrs.field(default=None, validator=_optional_time)
    """Seconds waited before the call goes on."""
    result: Any = attrs.field(default=_NO_RESULT, repr=_show_result)
    """What the call returns instead of running (``None`` is a result like any other)."""
    rate: float = attrs.field(default=1.0, validator=_rate)
    """The chance that the fault fires when it may (0: never, 1: every time)."""
    start: float | None = attrs.field(default=None, validator=_optional_time)
    """Seconds from the injector's origin before which the fault never fires (``None``: from
    the origin on). The window is half-open: it fires from exactly ``start``."""
    end: float | None = attrs.field(default=None, validator=_optional_time)
    """Seconds from the origin from which the fault never fires again (``None``: no end)."""
    flag: str | None = attrs.field(default=None, validator=_flag)
    """Where given, the fault fires only while this flag is on (see :class:`FaultFlags`)."""
    limit: int | None = attrs.field(default=None, validator=_optional_count)
    """At most this many firings in all (``None``: no limit)."""
    point: FaultPoint = attrs.field(default=FaultPoint.REQUEST, converter=_point)
    """Where it is injected: around requests, or around starts of a service actor."""

    @message.validator
    def _check_message(self, _attribute: attrs.Attribute[str], value: Any) -> None:
        if not isinstance(value, str):
            raise ConfigError(f"`message` must be a string (got {value!r})")

    def __attrs_post_init__(self) -> None:
        given = [
            name
            for name, present in (
                ("error", self.error is not None),
                ("latency", self.latency is not None),
                ("result", self.result is not _NO_RESULT),
            )
            if present
        ]
        if len(given) != 1:
            raise ConfigError(
                "a fault needs exactly one of `error`, `latency`, `result` "
                f"(got {', '.join(given) or 'none'})"
            )
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ConfigError(
                f"`end` must be after `start` (got start={self.start!r}, end={self.end!r})"
            )
        if self.point is FaultPoint.START and self.result is not _NO_RESULT:
            raise ConfigError("a fault at the `start` point cannot replace a result")

    @property
    def kind(self) -> FaultKind:
        """What the fault does."""
        if self.error is not None:
            return FaultKind.ERROR
        if self.latency is not None:
            return FaultKind.LATENCY
        return FaultKind.RESULT

    def make_error(self) -> Exception:
        """A new instance of ``error`` with ``message``.

        Raises:
            TypeError: the fault is not an error fault.
        """
        if self.error is None:
            raise TypeError(f"{self!r} injects no error")
        return self.error(self.message)

    def describe(self) -> str:
        """One line naming what the fault does, e.g. ``"ConnectionError: refused"``,
        ``"+1.5s latency"``, ``"result []"``."""
        if self.error is not None:
            return f"{self.error.__name__}: {self.message}" if self.message else self.error.__name__
        if self.latency is not None:
            return f"+{self.latency:g}s latency"
        return f"result {self.result!r}"


@attrs.frozen(kw_only=True)
class FaultDecision:
    """What the faults decided for one request or start."""

    delay: float = 0.0
    """Seconds to wait first (the sum of the latency faults that fired)."""
    fault: Fault | None = None
    """The error or result fault that fired (the first, in order), or ``None``: run the call."""
    fired: tuple[Fault, ...] = ()
    """Every fault that fired, latency ones included, in order."""

    @property
    def quiet(self) -> bool:
        """Whether nothing fired."""
        return not self.fired


NO_FAULT: Final = FaultDecision()
"""The decision when nothing fires."""


class FaultFlags:
    """A set of named flags that are on; faults with a ``flag`` fire only while it is on.

    ``on(name)``, ``off(name)``, ``name in flags``, and ``with flags.raised(name):`` (on for the
    body, back as it was afterwards). Names are non-empty strings.
    """

    __slots__ = ("_on",)

    def __init__(self, on: Iterable[str] = ()) -> None:
        self._on: set[str] = set()
        for name in on:
            self.on(name)

    @staticmethod
    def _check(name: object) -> str:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a flag must be a non-empty string (got {name!r})")
        return name

    def on(self, name: str) -> None:
        """Turn ``name`` on (idempotent).

        Raises:
            ConfigError: ``name`` is not a non-empty string.
        """
        self._on.add(self._check(name))

    def off(self, name: str) -> None:
        """Turn ``name`` off (idempotent)."""
        self._on.discard(self._check(name))

    def __contains__(self, name: object) -> bool:
        return name in self._on

    @property
    def names(self) -> frozenset[str]:
        """The flags that are on now."""
        return frozenset(self._on)

    @contextlib.contextmanager
    def raised(self, *names: str) -> Iterator[FaultFlags]:
        """Turn ``names`` on for the body of ``with``; each one that was off is turned off again
        on the way out (also on an error or a cancellation)."""
        added = [self._check(name) for name in names if name not in self._on]
        for name in added:
            self._on.add(name)
        try:
            yield self
        finally:
            for name in added:
                self._on.discard(name)

    def __repr__(self) -> str:
        return f"<FaultFlags on: {', '.join(sorted(self._on)) or 'none'}>"


fault_flags: Final = FaultFlags()
"""The process-wide flags, read by every injector not given flags of its own."""


_Unpacked = tuple[int, Fault, float, float, "str | None", "int | None", float, "float | None"]


def _check_faults(faults: Iterable[Any]) -> tuple[Fault, ...]:
    if isinstance(faults, str | bytes) or not isinstance(faults, Iterable):
        raise ConfigError(f"`faults` must be a sequence of Fault (got {faults!r})")
    checked = tuple(faults)
    for index, fault in enumerate(checked):
        if not isinstance(fault, Fault):
            raise ConfigError(f"`faults[{index}]` must be a Fault (got {fault!r})")
    return checked


class FaultCore:
    """The pure decision of fault injection: the faults, in order, and how often each fired.

    :meth:`decide` looks at the faults of one point, in order. A fault *may* fire when ``elapsed``
    is inside its window, its flag (if any) is on, and it has fired fewer than ``limit`` times;
    such a fault then fires when ``rng.random() < rate`` (no number is drawn for a rate of 1 or
    0). A latency fault that fires adds its latency to the decision's delay; the first error or
    result fault that fires ends the look (later ones are not considered and draw nothing).
    The same faults, ``elapsed`` values, flags and random source give the same decisions.

    Raises:
        ConfigError: ``faults`` is not a sequence of :class:`Fault`.
    """

    __slots__ = ("_by_point", "_timed", "faults", "fired")

    def __init__(self, faults: Iterable[Fault]) -> None:
        self.faults = _check_faults(faults)
        """The faults, in order."""
        self.fired = [0] * len(self.faults)
        """How many times each fault fired (same order as :attr:`faults`)."""
        # Per point, each fault's fields unpacked once (the request path reads no attributes).
        self._by_point: dict[FaultPoint, tuple[_Unpacked, ...]] = {
            point: tuple(
                (
                    index,
                    fault,
                    -math.inf if fault.start is None else fault.start,
                    math.inf if fault.end is None else fault.end,
                    fault.flag,
                    fault.limit,
                    fault.rate,
                    fault.latency,
                )
                for index, fault in enumerate(self.faults)
                if fault.point is point
            )
            for point in FaultPoint
        }
        self._timed = {
            point: any(fault.start is not None or fault.end is not None for fault in self.faults)
            for point in FaultPoint
        }

    def has(self, point: FaultPoint) -> bool:
        """Whether any fault is injected at ``point``."""
        return bool(self._by_point[point])

    def timed(self, point: FaultPoint) -> bool:
        """Whether any fault at ``point`` has a window (else ``elapsed`` is not looked at, and a
        shell need not read its clock)."""
        return self._timed[point]

    def decide(
        self,
        elapsed: float,
        flags: Container[str],
        rng: random.Random,
        point: FaultPoint = FaultPoint.REQUEST,
    ) -> FaultDecision:
        """The decision for one request (or start) ``elapsed`` seconds after the origin; the
        firings are counted."""
        delay = 0.0
        chosen: Fault | None = None
        fired: list[Fault] | None = None
        counts = self.fired
        for index, fault, start, end, flag, limit, rate, latency in self._by_point[point]:
            if elapsed < start or elapsed >= end:
                continue
            if flag is not None and flag not in flags:
                continue
            if limit is not None and counts[index] >= limit:
                continue
            if rate <= 0.0 or (rate < 1.0 and rng.random() >= rate):
                continue
            counts[index] += 1
            if fired is None:
                fired = [fault]
            else:
                fired.append(fault)
            if latency is not None:
                delay += latency
            else:
                chosen = fault
                break
        if fired is None:
            return NO_FAULT
        return FaultDecision(delay=delay, fault=chosen, fired=tuple(fired))

    def __repr__(self) -> str:
        return f"<FaultCore {len(self.faults)} faults, fired {sum(self.fired)} times>"
