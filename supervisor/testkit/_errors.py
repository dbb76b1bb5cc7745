"""The error a wait of the test kit raises."""

from __future__ import annotations

import math

__all__ = ["WaitTimeout", "check_timeout"]


class WaitTimeout(AssertionError):
    """A test kit wait ran out of time: what was awaited did not happen. An ``AssertionError``,
    so pytest reports the test as failed (not errored), with a message saying what was awaited
    and what was seen instead."""


def check_timeout(timeout: object) -> float:
    """``timeout`` if it is a number > 0, else :class:`ValueError` naming it."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or math.isnan(timeout)
        or timeout <= 0
    ):
        raise ValueError(f"`timeout` must be a number > 0 (got {timeout!r})")
    return float(timeout)
