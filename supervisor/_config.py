"""Resolving numeric options: explicit argument, else environment variable, else built-in default.

One place checks every numeric option of the rules, so that each bad value raises
:class:`~supervisor.ConfigError` naming the parameter (or the environment variable) and the value,
at creation time.
"""

from __future__ import annotations

import argparse
import enum
import math
import os
import sys
from typing import Final, Literal, TypeAlias

import attrs

from ._errors import ConfigError, shown

__all__ = [
    "COUNT",
    "DELAY_CAP",
    "DURATION",
    "FACTOR",
    "NON_NEGATIVE",
    "QUEUE",
    "UNSET",
    "Bound",
    "Unset",
    "exception_types",
    "seconds_argument",
]


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "<not given>"


UNSET: Final = _Unset.UNSET
"""Sentinel default for an option that was not given (so the environment may supply it)."""

Unset: TypeAlias = Literal[_Unset.UNSET]


@attrs.frozen(kw_only=True)
class Bound:
    """The valid values of one kind of option.

    A value is valid when it is an ``int`` (``bool`` never is) or, for a non-integer bound, a
    ``float``, and lies within the bound. NaN never is. Infinity is only where ``infinite`` says
    so (a cap with no limit: ``max_delay``); an ``int`` too large for a ``float`` never is for a
    non-integer bound, and integers are at most ``maximum``.
    """

    integer: bool
    """Whether the option must be an integer (``bool`` is never accepted)."""
    minimum: float
    """The smallest valid value."""
    inclusive: bool
    """Whether ``minimum`` itself is valid."""
    infinite: bool = False
    """Whether ``math.inf`` is valid (it then means "no limit")."""
    maximum: float = math.inf
    """The largest valid value (integers: ``sys.maxsize``, so a count always fits a C size)."""

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        op = ">=" if self.inclusive else ">"
        low = int(self.minimum) if float(self.minimum).is_integer() else self.minimum
        text = f"{kind} {op} {low}"
        return text + " (inf: no limit)" if self.infinite else text

    def _refusal(self, value: object) -> str:
        """What ``value`` breaks, for the message: the bound, and why a near miss is out."""
        text = self.describe()
        if self.integer:
            if isinstance(value, int) and not isinstance(value, bool) and value > self.maximum:
                text += f" and <= {int(self.maximum)}"
        elif isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > sys.float_info.max:
                text += " small enough to be a float"
        elif isinstance(value, float) and math.isinf(value) and not self.infinite:
            text = text.replace("a number", "a finite number", 1)
        return text

    def admits(self, value: object) -> bool:
        if isinstance(value, bool):
            return False
        if self.integer:
            if not isinstance(value, int):
                return False
        elif isinstance(value, int):
            try:
                float(value)  # an int beyond the float range is no duration or factor
            except OverflowError:
                return False
        elif (
            not isinstance(value, float)
            or math.isnan(value)
            or (math.isinf(value) and not (self.infinite and value > 0))
        ):
            return False
        if value > self.maximum:
            return False
        return value >= self.minimum if self.inclusive else value > self.minimum

    def check(self, param: str, value: object) -> float:
        """Return ``value`` if valid, else raise :class:`ConfigError` naming ``param``."""
        if not self.admits(value):
            raise ConfigError(
                f"`{param}` must be {self._refusal(value)} (got {shown(value)})", field=param
            )
        return value  # type: ignore[return-value]

    def parse(self, variable: str, text: str) -> float:
        """Parse the text of environment variable ``variable``; raise :class:`ConfigError`."""
        value: float
        try:
            value = int(text.strip()) if self.integer else float(text.strip())
        except ValueError as exc:  # also an integer of more digits than int() reads
            raise ConfigError(
                f"environment variable {variable} must be {self.describe()} (got {shown(text)})"
            ) from exc
        if not self.admits(value):
            raise ConfigError(
                f"environment variable {variable} must be {self.describe()} (got {shown(text)})"
            )
        return value

    def resolve(
        self,
        param: str,
        value: float | Unset,
        *,
        env: str | None,
        default: float,
    ) -> float:
        """Return the explicit ``value`` if given, else ``$env`` if set, else ``default``.

        Raises:
            ConfigError: the given value or the variable's text is not valid.
        """
        if value is not UNSET:
            return self.check(param, value)
        if env is not None:
            text = os.environ.get(env)
            if text is not None:
                return self.parse(env, text)
        return self.check(param, default)

    def resolve_int(self, param: str, value: int | Unset, *, env: str | None, default: int) -> int:
        """:meth:`resolve` for integer options, typed as ``int``."""
        if not self.integer:
            raise TypeError("resolve_int() needs an integer bound")
        return int(self.resolve(param, value, env=env, default=default))


COUNT: Final = Bound(integer=True, minimum=1, inclusive=True, maximum=sys.maxsize)
"""Counts: ``failure_threshold``, ``max_attempts``, ``max_calls``, ``max_concurrent``, ..."""
QUEUE: Final = Bound(integer=True, minimum=0, inclusive=True, maximum=sys.maxsize)
"""Queue lengths that may be zero: ``max_queued``."""
DURATION: Final = Bound(integer=False, minimum=0, inclusive=False)
"""Durations that must be positive: ``timeout``, ``period``, ``interval``, ``ttl``, ``total``."""
NON_NEGATIVE: Final = Bound(integer=False, minimum=0, inclusive=True)
"""Delays that may be zero: ``initial_delay``, ``max_delay``."""
FACTOR: Final = Bound(integer=False, minimum=1, inclusive=True)
"""Growth factors: ``backoff_factor``, ``factor``."""
DELAY_CAP: Final = Bound(integer=False, minimum=0, inclusive=True, infinite=True)
"""Caps on a delay, which may be zero or ``math.inf`` (no cap): ``max_delay``."""


def seconds_argument(text: str) -> float:
    """An ``argparse`` type for a command-line duration: a finite number of seconds > 0.

    Raises:
        argparse.ArgumentTypeError: the text is not such a number (argparse names the option).
    """
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"must be a number of seconds (got {text!r})") from exc
    if not DURATION.admits(value):
        raise argparse.ArgumentTypeError(f"must be > 0 (got {text!r})")
    return value


def exception_types(value: object, param: str = "exceptions") -> tuple[type[Exception], ...]:
    """``value`` (an ``Exception`` class or a non-empty tuple of them) as a tuple.

    Raises:
        TypeError: naming ``param``, for anything else (``BaseException`` classes that are not
            ``Exception`` s, such as ``KeyboardInterrupt``, included: they are never counted).
    """
    items = value if isinstance(value, tuple) else (value,)
    if not items or not all(isinstance(t, type) and issubclass(t, Exception) for t in items):
        raise TypeError(f"`{param}` must be Exception classes (got {shown(value)})")
    return items
