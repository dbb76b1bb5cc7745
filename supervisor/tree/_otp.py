"""The parts of OTP's supervisor beyond the restart strategies: significant children and
``auto_shutdown``, a child start that says ``ignore``, and handler errors that fail one request
without crashing a service actor.

Pure: no trio, no actors. The supervisor actor (``_supervisor.py``) asks these functions what to
do; the specs (``_specs.py``) use the enum and the checks.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, Final

from .._errors import ConfigError, ResilienceError, shown

__all__ = [
    "IGNORE",
    "AutoShutdown",
    "Ignore",
    "RequestError",
    "auto_shutdown_due",
    "check_significant",
]


class AutoShutdown(enum.Enum):
    """When a supervisor shuts itself down after a *significant* child exits by itself
    (OTP 24's ``auto_shutdown``)."""

    NEVER = "never"
    """Never (the default); significant children are not allowed."""
    ANY_SIGNIFICANT = "any_significant"
    """As soon as any significant child exits by itself."""
    ALL_SIGNIFICANT = "all_significant"
    """When a significant child exits by itself and no other significant child is left alive
    (running, or waiting for its restart)."""


class Ignore(Exception):
    """Raised by a child's factory, ``on_start`` or ``on_restart`` to say it should not run now
    (OTP's ``init`` returning ``ignore``). The start succeeds with no actor: the child is kept,
    terminated, for a non-temporary spec (``restart_child`` may start it later) and forgotten for
    a temporary one; a restart that says it leaves the child terminated, with no crash counted."""


class _IgnoreSentinel:
    __slots__ = ()

    def __repr__(self) -> str:
        return "IGNORE"


IGNORE: Final[Any] = _IgnoreSentinel()
"""What a child's factory returns instead of an actor to say it should not run now (the same as
raising :class:`Ignore`)."""


class RequestError(ResilienceError):
    """Raised by a service's handler to fail one request without crashing the service actor.

    It is the default of :attr:`ServiceSpec.request_errors`: the caller gets it (the breaker
    counts it per its ``expected_exception``, retry may retry it, the fallback may answer), and
    the actor keeps its instance and its client. Subclass it for your own request failures."""


def check_significant(*, significant: Any, permanent: bool) -> None:
    """OTP's rule of a child spec: ``significant`` is a bool, and never true for a permanent
    child.

    Raises:
        ConfigError: naming ``significant`` and its value.
    """
    if not isinstance(significant, bool):
        raise ConfigError(
            f"`significant` must be true or false (got {shown(significant)})", field="significant"
        )
    if significant and permanent:
        raise ConfigError(
            "`significant` must be false for a permanent child (got True with restart=permanent)",
            field="significant",
        )


def auto_shutdown_due(
    mode: AutoShutdown, *, significant: bool, others_alive: Iterable[bool]
) -> bool:
    """Whether a supervisor shuts down now that one child exited by itself.

    Args:
        mode: the supervisor's ``auto_shutdown``.
        significant: whether the child that exited is significant.
        others_alive: for every *other* significant child, whether it is still alive.

    Only exits a child makes by itself count: a ``terminate_child``, a stop by the supervisor
    and a sibling stopped for a group restart never reach this question (OTP's rules).
    """
    if mode is AutoShutdown.NEVER or not significant:
        return False
    if mode is AutoShutdown.ANY_SIGNIFICANT:
        return True
    return not any(others_alive)
