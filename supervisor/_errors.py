"""The error hierarchy of the resilience rules.

Every error the rules raise derives from :class:`ResilienceError`; each also inherits the builtin
that fits, so ``except TimeoutError`` and ``except ValueError`` keep working for code that knows
nothing of this package.
"""

from __future__ import annotations

import reprlib
from typing import Final

__all__ = [
    "BulkheadFullError",
    "CircuitOpenError",
    "ConfigError",
    "OperationTimeout",
    "RateLimitExceeded",
    "ResilienceError",
    "RetryableResult",
    "shown",
]


class ResilienceError(Exception):
    """Root of every error raised by the resilience rules."""


class CircuitOpenError(ResilienceError):
    """A call was refused by an open breaker, or by a half-open one with no trial slot free.

    Attributes:
        name: the breaker's name.
        retry_after: seconds until a trial call may be allowed (``>= 0``); ``inf`` for a breaker
            held open by ``force_open()``.
    """

    # Both attributes live in ``args``: a refusal (the hot path of an open breaker) is made
    # with :meth:`refusing`, which is just the exception object, with no ``__init__`` to run
    # and no instance dictionary to fill. The message is built only when shown.

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(name, retry_after if retry_after > 0.0 else 0.0)

    @classmethod
    def refusing(cls, name: str, retry_after: float) -> CircuitOpenError:
        """``CircuitOpenError(name, retry_after)`` for a ``retry_after >= 0`` already, made
        without running ``__init__``."""
        return cls.__new__(cls, name, retry_after)

    @property
    def name(self) -> str:
        """The breaker's name."""
        name: str = self.args[0]
        return name

    @property
    def retry_after(self) -> float:
        """Seconds until a trial call may be allowed (``>= 0``)."""
        retry_after: float = self.args[1]
        return retry_after if retry_after > 0.0 else 0.0

    def __str__(self) -> str:
        return (
            f"circuit {self.name!r} is open; a trial call may be allowed in {self.retry_after:.3f}s"
        )


class BulkheadFullError(ResilienceError):
    """No concurrency slot was free and the bulkhead's queue was full.

    Attributes:
        name: the bulkhead's name.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"bulkhead {name!r} is full: no free slot and no room in its queue")


class RateLimitExceeded(ResilienceError):
    """A throttle with ``on_limit="raise"`` refused a call.

    Attributes:
        retry_after: seconds after which the same call would have been admitted.
    """

    def __init__(self, retry_after: float, *, name: str | None = None) -> None:
        self.retry_after = max(0.0, retry_after)
        self.name = name
        what = f"throttle {name!r}" if name else "throttle"
        super().__init__(f"{what}: rate limit exceeded; retry after {self.retry_after:.3f}s")


class OperationTimeout(ResilienceError, TimeoutError):
    """A call guarded by ``timeout`` ran past its time limit and was cancelled.

    Attributes:
        seconds: the limit that expired.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"operation timed out after {seconds}s")


class ConfigError(ResilienceError, ValueError):
    """A bad parameter or environment value; the message names the parameter or variable and the
    value.

    Attributes:
        field: the name of the bad parameter or field where one is known (``None`` otherwise);
            :func:`~supervisor.load_tree` adds it to the path it reports.
    """

    def __init__(self, *args: object, field: str | None = None) -> None:
        self.field = field
        super().__init__(*args)


_LONGEST_INT: Final = (
    128  # bits of an integer shown in full in a message; longer ones are described
)
_SHOWN: Final = reprlib.Repr()
_SHOWN.maxlevel = 3
_SHOWN.maxstring = 80
_SHOWN.maxother = 80
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 6


def shown(value: object) -> str:
    """``repr(value)`` for an error message, safe for any value a user may pass.

    Never raises and stays short: an integer too long to print (``10**5000`` makes ``repr``
    raise) is described by its size, containers are cut at depth 3 and after 6 items, strings
    after 80 characters, and an object whose ``__repr__`` raises is shown by its type.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _LONGEST_INT:
        digits = int(value.bit_length() * 0.30103) + 1
        sign = "-" if value < 0 else ""
        return f"{sign}<an integer of about {digits} digits>"
    try:
        return _SHOWN.repr(value)
    except Exception:  # a broken __repr__, or one too deep for the recursion limit
        return f"<{type(value).__name__} object>"


class RetryableResult(ResilienceError):
    """An attempt of a guarded service returned a result that its ``retry_on_result`` asked to
    retry: the attempt counts as failed (this is the ``error`` of its ``RequestFailed`` and
    ``RetryScheduled`` events), and the request is tried again. It never reaches a caller: when
    retrying stops, the last result itself is returned."""

    def __init__(self, result: object) -> None:
        super().__init__(f"result to retry: {result!r}")
        self.result = result
        """The result that is to be retried."""
