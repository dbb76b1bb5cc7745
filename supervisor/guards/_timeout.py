"""Time limits: the :func:`timeout` decorator and :class:`TimeoutBudget`.

The arithmetic is pure (:class:`BudgetCore` takes the current time as an argument); the shells read
``trio.current_time()`` and open one cancel scope per guarded call.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Any, Final, ParamSpec, TypeVar

import trio

from .._config import DURATION, UNSET
from .._errors import ConfigError, OperationTimeout, shown
from ..rules._budget import BudgetCore
from ._decorate import decorate
from ._generators import Refused

P = ParamSpec("P")
R = TypeVar("R")


class TimeoutKind(enum.StrEnum):
    """The kinds of call :func:`timeout` knows a default for."""

    OPERATION = "operation"
    """``DEFAULT_OPERATION_TIMEOUT``, else 30 seconds."""
    API = "api"
    """``DEFAULT_API_TIMEOUT``, else 10 seconds."""
    QUERY = "query"
    """``DEFAULT_QUERY_TIMEOUT``, else 60 seconds."""


_DEFAULTS: Final[dict[TimeoutKind, tuple[str, float]]] = {
    TimeoutKind.OPERATION: ("DEFAULT_OPERATION_TIMEOUT", 30.0),
    TimeoutKind.API: ("DEFAULT_API_TIMEOUT", 10.0),
    TimeoutKind.QUERY: ("DEFAULT_QUERY_TIMEOUT", 60.0),
}


def resolve_timeout(seconds: float | None, kind: str | TimeoutKind) -> float:
    """The limit :func:`timeout` applies: ``seconds`` if given, else the ``kind``'s environment
    variable if set (read now), else the ``kind``'s built-in default.

    Raises:
        ConfigError: ``kind`` is not one of ``"operation"``, ``"api"``, ``"query"`` (checked even
            when ``seconds`` is given); ``seconds`` or the variable is not a number > 0.
    """
    if not isinstance(kind, str) or kind not in TimeoutKind.__members__.values():
        choices = ", ".join(repr(k.value) for k in TimeoutKind)
        raise ConfigError(f"`kind` must be one of {choices} (got {shown(kind)})", field="kind")
    checked = TimeoutKind(kind)
    env, default = _DEFAULTS[checked]
    return DURATION.resolve(
        "seconds", UNSET if seconds is None else seconds, env=env, default=default
    )


def timeout(
    seconds: float | None = None, *, kind: str | TimeoutKind = "operation"
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorator: cancel the call after ``seconds`` and raise
    :class:`~supervisor.OperationTimeout` (a :class:`TimeoutError`) instead.

    ``seconds=None`` takes the default for ``kind``: ``"operation"`` ->
    ``DEFAULT_OPERATION_TIMEOUT`` (30), ``"api"`` -> ``DEFAULT_API_TIMEOUT`` (10),
    ``"query"`` -> ``DEFAULT_QUERY_TIMEOUT`` (60); the variables are read
    when ``timeout(...)`` is called.

    The limit is a cancel scope around the call: it nests inside the caller's scopes, so an inner
    timeout never extends an outer deadline. When an outer deadline or cancellation comes first
    (or at the same moment), ``trio.Cancelled`` propagates unchanged; ``OperationTimeout`` is
    raised only when this limit itself cancelled the call. A call that ends (with a result or an
    error) before the limit is untouched.

    Raises:
        ConfigError: at this call, for an unknown ``kind`` or a ``seconds`` (or variable) that is
            not a number > 0.
        TypeError: at decoration time, when the decorated function is not ``async`` (a plain
            function cannot be cancelled) or is a generator function (a cancel scope cannot
            stay open across its yields).
    """
    limit = resolve_timeout(seconds, kind)

    async def around(call: Callable[[], Awaitable[Any]]) -> Any:
        with trio.move_on_after(limit):
            return await call()
        raise OperationTimeout(limit)

    def decorator(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        return decorate(
            fn,
            rule="timeout",
            around_async=around,
            around_sync=None,
            extra={"timeout_seconds": limit},
            generators=Refused(
                "its deadline would span the yields, and a cancel scope must not stay open across "
                "a yield; put the timeout on the calls inside it"
            ),
        )

    return decorator


class TimeoutBudget:
    """One time budget split across several calls.

    ``total`` seconds (``> 0``) counted on trio's clock from creation, so it must be created inside
    ``trio.run``. :attr:`remaining` is the time left (0, never negative, once spent);
    :meth:`share` hands out part of it.

    Raises:
        ConfigError: ``total`` is not a number > 0.
        RuntimeError: created outside ``trio.run``.
    """

    __slots__ = ("_core",)

    def __init__(self, total: float) -> None:
        DURATION.check("total", total)
        self._core = BudgetCore(total=float(total), started_at=trio.current_time())

    @property
    def total(self) -> float:
        """The whole budget in seconds."""
        return self._core.total

    @property
    def started_at(self) -> float:
        """The trio time the budget was created."""
        return self._core.started_at

    @property
    def deadline(self) -> float:
        """The trio time the budget is spent (usable as a cancel scope's deadline)."""
        return self._core.deadline

    @property
    def remaining(self) -> float:
        """Seconds left now; ``0.0`` once spent (from exactly ``total`` after creation)."""
        return self._core.remaining(trio.current_time())

    @property
    def expired(self) -> bool:
        """Whether the budget is spent."""
        return self.remaining == 0.0

    def share(self, fraction: float) -> float:
        """Seconds for one call: ``min(remaining, total * fraction)``.

        Raises:
            ConfigError: ``fraction`` is not a number in ``(0, 1]``.
        """
        return self._core.share(fraction, trio.current_time())

    def __repr__(self) -> str:
        try:
            left = f"{self.remaining:.3f}s left"
        except RuntimeError:
            left = "outside trio"
        return f"<TimeoutBudget {self.total}s, {left}>"
