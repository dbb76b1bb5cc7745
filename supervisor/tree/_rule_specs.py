"""The specs of a guarded service's rules: :class:`BreakerSpec`, :class:`RetrySpec`,
:class:`BulkheadSpec`, :class:`ThrottleSpec` and :class:`FallbackSpec`, with their converters.

Each is a frozen value checked at construction, a field of :class:`~supervisor.ServiceSpec`;
a bad value raises :class:`~supervisor.ConfigError` naming the field and the value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs

from .._config import COUNT, DELAY_CAP, DURATION, FACTOR, NON_NEGATIVE, QUEUE
from .._errors import ConfigError, shown
from ..rules._rate_breaker import OpenBackoff, RateWindow
from ..rules._retry_budget import RetryBudgetConfig
from ._limit_specs import AdaptiveLimitSpec, check_adaptive
from ._spec_fields import _checked, _exception_types, _import, _import_callable


def _expected_exception(value: Any) -> tuple[type[BaseException], ...]:
    """Converter: the breaker's exception classes."""
    return _exception_types(value, "expected_exception")


def _retried_exceptions(value: Any) -> tuple[type[BaseException], ...]:
    """Converter: the retried exception classes."""
    return _exception_types(value, "exceptions")


def _matchers(value: Any, field: str) -> tuple[Any, ...]:
    """Exception classes and predicates (or ``"module:name"`` strings naming either), as a
    tuple."""
    items = value if isinstance(value, list | tuple) else (value,)
    found: list[Any] = []
    for item in items:
        target = _import(item, field) if isinstance(item, str) else item
        if not callable(target):
            raise ConfigError(
                f"`{field}` must be exception classes or predicates (got {shown(item)})",
                field=field,
            )
        found.append(target)
    return tuple(found)


def _exclude(value: Any) -> tuple[Any, ...]:
    """Converter of ``BreakerSpec.exclude``."""
    return _matchers(value, "exclude")


def _on(value: Any) -> tuple[Any, ...] | None:
    """Converter of ``RetrySpec.on``."""
    return None if value is None else _matchers(value, "on")


def _is_failure(value: Any) -> Callable[..., Any] | None:
    """Converter: ``None``, a callable, or a ``"package.module:name"`` string naming one."""
    return None if value is None else _import_callable(value, "is_failure")


def _is_failure_result(value: Any) -> Callable[..., Any] | None:
    """Converter: ``None``, a callable, or a ``"package.module:name"`` string naming one."""
    return None if value is None else _import_callable(value, "is_failure_result")


def _retry_on_result(value: Any) -> Callable[..., Any] | None:
    """Converter: ``None``, a callable, or a ``"package.module:name"`` string naming one."""
    return None if value is None else _import_callable(value, "retry_on_result")


@attrs.frozen(kw_only=True)
class BreakerSpec:
    """A service's circuit breaker (the semantics of :class:`~supervisor.CircuitBreaker`)."""

    failure_threshold: int = attrs.field(default=5, validator=_checked(COUNT))
    """Counted failures in a row that open the breaker."""
    success_threshold: int = attrs.field(default=2, validator=_checked(COUNT))
    """Successful trial requests that close a half-open breaker."""
    timeout: float = attrs.field(default=30.0, validator=_checked(DURATION))
    """Seconds from opening until half-open (the parked child is then restarted on probation)."""
    half_open_max_calls: int = attrs.field(default=1, validator=_checked(COUNT))
    """Trial requests allowed at the same time while half-open."""
    expected_exception: tuple[type[BaseException], ...] = attrs.field(
        default=(Exception,), converter=_expected_exception
    )
    """Errors that count as breaker failures. Any error a handler raises crashes the service
    actor (its supervisor restarts it); with the default ``(Exception,)`` every crash counts,
    with narrower types only crashes of those types do."""
    window: RateWindow | None = None
    """Open on the failure rate (or slow-call rate) of a window of recent requests instead of a
    run of consecutive failures (see :class:`~supervisor.RateWindow`); ``None``: consecutive."""
    open_backoff: OpenBackoff | None = None
    """Each reopening after a failed trial waits longer (see :class:`~supervisor.OpenBackoff`);
    the parked child is restarted when the longer timeout ends."""
    exclude: tuple[Any, ...] = attrs.field(default=(), converter=_exclude)
    """Errors that count as neither failure nor success: exception classes or predicates
    ``(error) -> bool`` (``"module:name"`` strings in data)."""
    is_failure: Callable[[Exception], object] | None = attrs.field(
        default=None, converter=_is_failure
    )
    """Decides from an expected error whether it counts (true: a failure)."""
    is_failure_result: Callable[[Any], object] | None = attrs.field(
        default=None, converter=_is_failure_result
    )
    """Decides from a reply whether it counts as a failure (it is still returned)."""


@attrs.frozen(kw_only=True)
class RetrySpec:
    """How a failed request is retried (the semantics of :func:`~supervisor.retry`): never while
    holding a bulkhead slot, never past the request's deadline."""

    max_attempts: int = attrs.field(default=3, validator=_checked(COUNT))
    """Attempts at most, the first included."""
    initial_delay: float = attrs.field(default=0.1, validator=_checked(NON_NEGATIVE))
    """Delay after the first failed attempt, in seconds."""
    max_delay: float = attrs.field(default=5.0, validator=_checked(DELAY_CAP))
    """Cap on any one delay (``math.inf``: no cap; the only field here that accepts inf)."""
    backoff_factor: float = attrs.field(default=2.0, validator=_checked(FACTOR))
    """Growth of the delay per attempt."""
    jitter: bool = attrs.field(default=True)
    """Full jitter: each delay drawn uniformly from ``[0, delay]``."""
    exceptions: tuple[type[BaseException], ...] = attrs.field(
        default=(Exception,), converter=_retried_exceptions
    )
    """Only these errors are retried (refusals by the service's own rules never are)."""
    on: tuple[Any, ...] | None = attrs.field(default=None, converter=_on)
    """Where given, an error is retried only if it also matches one of these exception classes
    or predicates ``(error) -> bool`` (``"module:name"`` strings in data)."""
    retry_on_result: Callable[[Any], object] | None = attrs.field(
        default=None, converter=_retry_on_result
    )
    """A reply for which this returns true is retried like a failure; when retrying stops, the
    last reply is returned."""
    total_timeout: float | None = attrs.field(default=None)
    """Where given, no retry delay may end at or after this many seconds from the request's
    start (the request's own timeout still applies: the smaller wins)."""
    budget: RetryBudgetConfig | None = None
    """Where given, retries of this service stay under a share of its recent first attempts
    (see :class:`~supervisor.RetryBudgetConfig`); over budget, the error is final at once."""

    @total_timeout.validator
    def _check_total_timeout(self, _attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            DURATION.check("total_timeout", value)

    @jitter.validator
    def _check_jitter(self, _attribute: attrs.Attribute[bool], value: bool) -> None:
        if not isinstance(value, bool):
            raise ConfigError(
                f"`jitter` must be true or false (got {shown(value)})", field="jitter"
            )


@attrs.frozen(kw_only=True)
class BulkheadSpec:
    """A service's bulkhead: ``max_concurrent`` requests handled at once, ``max_queued`` more
    waiting in its mailbox (the mailbox bound is the queue); beyond that a request is refused on
    the caller's side with :class:`~supervisor.BulkheadFullError`."""

    max_concurrent: int = attrs.field(default=1, validator=_checked(COUNT))
    """Requests handled at the same time."""
    max_queued: int = attrs.field(default=100, validator=_checked(QUEUE))
    """Requests waiting in the mailbox."""
    adaptive: AdaptiveLimitSpec | None = None
    """An adaptive limit: the requests running at once follow latency, up to
    ``max_concurrent``; ``None``: always ``max_concurrent``."""

    def __attrs_post_init__(self) -> None:
        check_adaptive(self.adaptive, self.max_concurrent)


@attrs.frozen(kw_only=True)
class ThrottleSpec:
    """A service's rate limit: at most ``max_calls`` requests start in any ``period`` seconds."""

    max_calls: int = attrs.field(validator=_checked(COUNT))
    """Starts allowed per window."""
    period: float = attrs.field(validator=_checked(DURATION))
    """The sliding window, in seconds."""
    on_limit: str = attrs.field(default="raise")
    """``"raise"``: refuse with :class:`~supervisor.RateLimitExceeded` (the fallback answers if
    set); ``"wait"``: wait for a turn, within the request's deadline."""

    @on_limit.validator
    def _check_on_limit(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if value not in ("raise", "wait"):
            raise ConfigError(
                f"`on_limit` {shown(value)} is not one of raise, wait", field="on_limit"
            )


_NO_DEFAULT: Final = object()


def _degraded(value: Any) -> Callable[..., Any] | None:
    """Converter: ``None``, a callable, or a ``"package.module:name"`` string naming one."""
    return None if value is None else _import_callable(value, "degraded")


def _show_default(value: Any) -> str:
    return "-" if value is _NO_DEFAULT else repr(value)


@attrs.frozen(kw_only=True)
class FallbackSpec:
    """What answers a request that was refused or failed: exactly one of a ``default`` value, the
    last good answer from a cache (``cache_ttl``), or a ``degraded`` handler."""

    default: Any = attrs.field(
        default=_NO_DEFAULT, repr=lambda v: "-" if v is _NO_DEFAULT else repr(v)
    )
    """A fixed answer."""
    cache_ttl: float | None = attrs.field(default=None)
    """Answer with the last good reply to an equal request, if at most this many seconds old."""
    cache_maxsize: int = attrs.field(default=1024, validator=_checked(COUNT))
    """Requests remembered by the cache (least recently used go first)."""
    degraded: Callable[..., Any] | None = attrs.field(default=None, converter=_degraded)
    """``degraded(request)``, plain or async, answers instead (``"module:name"`` in data)."""

    @property
    def has_default(self) -> bool:
        """Whether a fixed ``default`` answer is set."""
        return self.default is not _NO_DEFAULT

    def __attrs_post_init__(self) -> None:
        if self.cache_ttl is not None:
            DURATION.check("cache_ttl", self.cache_ttl)
        given = [
            name
            for name, present in (
                ("default", self.has_default),
                ("cache_ttl", self.cache_ttl is not None),
                ("degraded", self.degraded is not None),
            )
            if present
        ]
        if len(given) != 1:
            raise ConfigError(
                "a fallback needs exactly one of `default`, `cache_ttl`, `degraded` "
                f"(got {', '.join(given) or 'none'})"
            )
