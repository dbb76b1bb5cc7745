"""The circuit breaker's decorator factory: :func:`circuit_breaker`.

``circuit_breaker(...)`` checks its settings once, at the call, and gives each function it
decorates its own :class:`~supervisor.CircuitBreaker` (see ``guards/_breaker.py``), named after
the function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from .._config import UNSET, Unset
from .._errors import ConfigError, shown
from ..rules._breaker import CircuitBreakerConfig, ExceptionTypes
from ..rules._rate_breaker import OpenBackoff, RateWindow
from ..store._base import Store
from ._breaker import CircuitBreaker, ExcludeOption
from ._decorate import qualname_of

__all__ = ["circuit_breaker"]

P = ParamSpec("P")
R = TypeVar("R")


def circuit_breaker(
    failure_threshold: int | Unset = UNSET,
    success_threshold: int | Unset = UNSET,
    timeout: float | Unset = UNSET,
    expected_exception: ExceptionTypes | Unset = UNSET,
    *,
    half_open_max_calls: int | Unset = UNSET,
    config: CircuitBreakerConfig | None = None,
    name: str | None = None,
    clock: Callable[[], float] | None = None,
    store: Store | None = None,
    window: RateWindow | None = None,
    open_backoff: OpenBackoff | None = None,
    exclude: ExcludeOption = (),
    is_failure: Callable[[Exception], object] | None = None,
    is_failure_result: Callable[[Any], object] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator factory: each decorated function gets its own :class:`CircuitBreaker`, named after
    its ``__qualname__`` (or ``name``), shared by every caller and, for a method, every instance.

    Parameters are those of :class:`CircuitBreaker`; environment variables are read, and every value
    checked, when ``circuit_breaker(...)`` is called. The wrapper exposes its breaker as
    ``fn.breaker``. With ``store``, every process's breaker of the same function (the same
    ``__qualname__``, or ``name``) is one rule.

    Raises:
        ConfigError: a bad argument, config field or environment value (at this call).
        TypeError: the decorated object is not callable.
    """
    beyond: dict[str, Any] = {
        "window": window,
        "open_backoff": open_backoff,
        "exclude": exclude,
        "is_failure": is_failure,
        "is_failure_result": is_failure_result,
    }
    template = CircuitBreaker(
        name or "<template>",
        failure_threshold,
        success_threshold,
        timeout,
        expected_exception,
        half_open_max_calls=half_open_max_calls,
        config=config,
        clock=clock,
        **beyond,
    )
    if store is not None and not isinstance(store, Store):
        raise ConfigError(f"`store` must be a MemoryStore or a RedisStore (got {shown(store)})")
    if store is not None and template._measured is not None:
        raise TypeError(
            "`window`, `open_backoff`, `exclude`, `is_failure` and `is_failure_result` keep the "
            f"breaker's state in this process: they cannot be combined with `store` (got "
            f"store={shown(store)})"
        )
    settled: Sequence[Any] = (
        template.failure_threshold,
        template.success_threshold,
        template.timeout,
        template.expected_exception,
    )

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        breaker = CircuitBreaker(
            name or qualname_of(fn),
            *settled,
            half_open_max_calls=template.half_open_max_calls,
            clock=clock,
            store=store,
            **beyond,
        )
        return breaker(fn)

    return decorator
