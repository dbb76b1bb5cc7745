"""Specifications of supervision trees: frozen, validated at construction, loadable from data.

A tree is described by :class:`SupervisorSpec` (strategy, restart intensity, restart backoff, and
children), whose children are :class:`ChildSpec` (any actor), :class:`ServiceSpec` (an actor
guarding a dependency, plus its rules) or nested :class:`SupervisorSpec`.
Every rule spanning several fields is checked once, at construction (as OTP's ``check_childspec``),
and raises :class:`~supervisor.ConfigError` naming the field and the value.

:func:`load_tree` builds a spec from plain data (a dict, as parsed from TOML or JSON) with cattrs;
:func:`load_tree_file` reads a TOML file. A bad value gives one error naming its path, e.g.
``children[2].restart: 'sometimes' is not one of permanent, transient, temporary``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeVar

import attrs

from .._config import COUNT, DELAY_CAP, DURATION, FACTOR, NON_NEGATIVE, QUEUE
from .._errors import ConfigError, shown
from ._fault_specs import FaultSpec
from ._limit_specs import HedgeSpec
from ._otp import AutoShutdown, RequestError, check_significant
from ._rule_specs import BreakerSpec, BulkheadSpec, FallbackSpec, RetrySpec, ThrottleSpec
from ._spec_fields import _checked, _exception_types, _import_callable

_EnumT = TypeVar("_EnumT", bound=enum.Enum)

INFINITY: Final = math.inf
"""A shutdown that waits for the child however long it takes (OTP's ``infinity``)."""


class Restart(enum.Enum):
    """When a child that exited is restarted (OTP's restart types)."""

    PERMANENT = "permanent"
    """Always restarted."""
    TRANSIENT = "transient"
    """Restarted only after an abnormal exit (a crash), not after a normal stop."""
    TEMPORARY = "temporary"
    """Never restarted."""


class Strategy(enum.Enum):
    """Which children a supervisor restarts when one of them crashes."""

    ONE_FOR_ONE = "one_for_one"
    """Only the crashed child."""
    ONE_FOR_ALL = "one_for_all"
    """All children: the others are stopped in reverse start order, then all restart in order."""
    REST_FOR_ONE = "rest_for_one"
    """The crashed child and every child started after it, stopped in reverse and restarted in
    order."""
    SIMPLE_ONE_FOR_ONE = "simple_one_for_one"
    """A dynamic supervisor (OTP's ``simple_one_for_one``, Elixir's ``DynamicSupervisor``): its
    one child spec is a template; instances are started at run time with extra arguments and
    restarted one for one."""


def _member(kind: type[_EnumT], field: str | None, value: Any) -> _EnumT:
    """``value`` if it is a member of ``kind``, else the member whose value it is.

    The message names ``field`` when given (direct construction); cattrs hooks pass ``None``, as
    :func:`load_tree` puts the path of the field in front of the message.
    """
    if isinstance(value, kind):
        return value
    choices = ", ".join(str(member.value) for member in kind)
    what = f"`{field}` {shown(value)}" if field else shown(value)
    if not isinstance(value, str):  # kind(value) would repr any value, however deep or long
        raise ConfigError(f"{what} is not one of {choices}", field=field)
    try:
        return kind(value)
    except ValueError as exc:
        raise ConfigError(f"{what} is not one of {choices}", field=field) from exc


def _restart(value: Any) -> Restart:
    """Converter: a :class:`Restart` or its value (``"transient"``)."""
    return _member(Restart, "restart", value)


def _strategy(value: Any) -> Strategy:
    """Converter: a :class:`Strategy` or its value (``"one_for_all"``)."""
    return _member(Strategy, "strategy", value)


def _auto_shutdown(value: Any) -> AutoShutdown:
    """Converter: an :class:`AutoShutdown` or its value (``"any_significant"``)."""
    return _member(AutoShutdown, "auto_shutdown", value)


def _shutdown(value: Any) -> float:
    choices = f"`shutdown` must be seconds >= 0, 'infinity' or 'immediate' (got {shown(value)})"
    if isinstance(value, str):
        words = {"infinity": INFINITY, "immediate": 0.0, "brutal_kill": 0.0}
        if value in words:
            return words[value]
        raise ConfigError(choices, field="shutdown")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(choices, field="shutdown")
    try:
        seconds = float(value)
    except OverflowError as exc:  # an int beyond any float: say 'infinity' for that
        raise ConfigError(choices, field="shutdown") from exc
    if math.isnan(seconds):
        raise ConfigError(choices, field="shutdown")
    if seconds < 0:
        raise ConfigError(f"`shutdown` must be seconds >= 0 (got {shown(value)})", field="shutdown")
    return seconds


def _name(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value or "/" in value:
        raise ConfigError(
            f"`{attribute.name}` must be a non-empty string without '/' (got {shown(value)})",
            field=attribute.name,
        )


def _factory(value: Any) -> Callable[..., Any]:
    """Converter: the factory, a callable or a ``"package.module:attribute"`` string."""
    return _import_callable(value, "factory")


def _args(value: Any) -> tuple[Any, ...]:
    """Converter: the positional arguments, as a tuple (a lone string is refused, not split)."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ConfigError(
            f"`args` must be a sequence of arguments (got {shown(value)})", field="args"
        )
    return tuple(value)


def _kwargs(value: Any) -> Mapping[str, Any]:
    """Converter: a read-only copy of the keyword arguments (keys must be strings)."""
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ConfigError(
            f"`kwargs` must be a mapping of names to values (got {shown(value)})", field="kwargs"
        )
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class RestartBackoff:
    """How long a supervisor waits before restarting a crashed child: the delay before restart
    number ``n`` (1 for the first within the intensity window) is ``min(max_delay, initial_delay *
    factor ** (n - 1))``, drawn uniformly from ``[0, that]`` when ``jitter`` is true."""

    initial_delay: float = attrs.field(default=0.0, validator=_checked(NON_NEGATIVE))
    """Seconds before the first restart (``0`` restarts at once, as OTP does)."""
    max_delay: float = attrs.field(default=5.0, validator=_checked(DELAY_CAP))
    """Cap on any one delay, in seconds (``math.inf``: no cap; the only field here that accepts
    inf)."""
    factor: float = attrs.field(default=2.0, validator=_checked(FACTOR))
    """Growth per restart (>= 1)."""
    jitter: bool = attrs.field(default=True)
    """Full jitter: draw each delay uniformly from ``[0, delay]``."""

    @jitter.validator
    def _check_jitter(self, _attribute: attrs.Attribute[bool], value: bool) -> None:
        if not isinstance(value, bool):
            raise ConfigError(
                f"`jitter` must be true or false (got {shown(value)})", field="jitter"
            )


@attrs.frozen(kw_only=True)
class ChildSpec:
    """One child of a supervisor: an actor made by ``factory(*args, **kwargs)``."""

    name: str = attrs.field(validator=_name)
    """Unique among its siblings; the child's path is its parent's path plus this name."""
    factory: Callable[..., Any] = attrs.field(converter=_factory)
    """The actor class or factory (or a ``"module:name"`` string when loaded from data)."""
    args: tuple[Any, ...] = attrs.field(default=(), converter=_args)
    """Positional arguments for the factory, used again at every restart."""
    kwargs: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_kwargs, hash=False, repr=lambda value: repr(dict(value))
    )
    """Keyword arguments for the factory, used again at every restart (a read-only copy; left out
    of the hash, so a spec is hashable when its ``args`` are)."""
    restart: Restart = attrs.field(default=Restart.PERMANENT, converter=_restart)
    """When the child is restarted after it exits."""
    shutdown: float = attrs.field(default=5.0, converter=_shutdown)
    """Grace period in seconds for the child to stop (the message in hand and its stop hook)
    before it is cancelled; ``INFINITY`` waits forever, ``0`` cancels at once."""
    mailbox_size: int = attrs.field(default=1000, validator=_checked(COUNT))
    """The bound of the child's mailbox."""
    overflow: str = attrs.field(default="wait")
    """The mailbox overflow policy: ``"wait"``, ``"reject"`` or ``"drop_oldest"``."""

    significant: bool = attrs.field(default=False)
    """Whether its own exit may shut its supervisor down (see ``SupervisorSpec.auto_shutdown``;
    OTP's ``significant``). Only for transient or temporary children."""

    @overflow.validator
    def _check_overflow(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if value not in ("wait", "reject", "drop_oldest"):
            raise ConfigError(
                f"`overflow` {shown(value)} is not one of wait, reject, drop_oldest",
                field="overflow",
            )

    def __attrs_post_init__(self) -> None:
        check_significant(significant=self.significant, permanent=self.restart is Restart.PERMANENT)


def _request_errors(value: Any) -> tuple[type[Exception], ...]:
    """Converter: exception classes (or ``"module:Name"`` strings), as a tuple (may be empty)."""
    if isinstance(value, list | tuple) and not value:
        return ()
    return _exception_types(value, "request_errors")  # type: ignore[return-value]


def _health_check(value: Any) -> Callable[[], Any] | None:
    """Converter: ``None``, a callable, or a ``"package.module:name"`` string naming one."""
    return None if value is None else _import_callable(value, "health_check")


@attrs.frozen(kw_only=True)
class ServiceSpec:
    """A guarded service: an actor made by ``factory(*args, **kwargs)`` that owns the client of
    one dependency, plus the rules its requests pass through (throttle, breaker, bulkhead, timeout,
    retry, fallback, hedge). Any rule left ``None`` is off; the bulkhead is always on (a mailbox is
    always bounded)."""

    name: str = attrs.field(validator=_name)
    """Unique among its siblings."""
    factory: Callable[..., Any] = attrs.field(converter=_factory)
    """The actor class or factory (or a ``"module:name"`` string when loaded from data)."""
    args: tuple[Any, ...] = attrs.field(default=(), converter=_args)
    """Positional arguments for the factory, used again at every restart."""
    kwargs: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_kwargs, hash=False, repr=lambda value: repr(dict(value))
    )
    """Keyword arguments for the factory, used again at every restart."""
    restart: Restart = attrs.field(default=Restart.PERMANENT, converter=_restart)
    """When the service actor is restarted after it exits."""
    shutdown: float = attrs.field(default=5.0, converter=_shutdown)
    """Grace period in seconds for the requests in hand and the stop hook (where the client is
    closed) when the service stops; then they are cancelled."""
    bulkhead: BulkheadSpec = attrs.field(factory=BulkheadSpec)
    """Concurrency and queue (the mailbox bound)."""
    breaker: BreakerSpec | None = None
    """The circuit breaker, or ``None``."""
    retry: RetrySpec | None = None
    """How failed requests are retried, or ``None``."""
    throttle: ThrottleSpec | None = None
    """The rate limit, or ``None``."""
    timeout: float | None = attrs.field(default=None)
    """Default seconds a request may take in all (queueing, attempts and retry delays), unless the
    caller gives its own; ``None``: no limit."""
    fallback: FallbackSpec | None = None
    """What answers refused or failed requests, or ``None`` (the error reaches the caller)."""
    health_check: Callable[[], Any] | None = attrs.field(default=None, converter=_health_check)
    """Called with no arguments (plain or async) every ``health_interval`` seconds while the tree
    runs; it fails when it raises, returns ``False`` or runs past the health check timeout
    (``"module:name"`` in data). ``None``: health comes from the requests alone."""
    health_interval: float | None = attrs.field(default=None)
    """Seconds between health checks, start to start; ``None``: ``$HEALTH_CHECK_INTERVAL``,
    else 30."""
    faults: FaultSpec | None = None
    """Faults injected inside the service actor (errors, latency, replaced results), or ``None``
    (off: nothing is added to the request path)."""
    significant: bool = attrs.field(default=False)
    """As ``ChildSpec.significant``."""
    request_errors: tuple[type[Exception], ...] = attrs.field(
        default=(RequestError,), converter=_request_errors
    )
    """Errors a handler raises that fail only the request, not the actor: the caller gets the
    error (the breaker counts it per ``expected_exception``, retry may retry it, the fallback may
    answer) and the actor keeps running, with no restart. Every other ``Exception`` is a crash.
    Default: :class:`~supervisor.RequestError` (and its subclasses); ``()``: every error crashes."""
    hedge: HedgeSpec | None = None
    """Hedging of slow requests, or ``None``."""

    def __attrs_post_init__(self) -> None:
        check_significant(significant=self.significant, permanent=self.restart is Restart.PERMANENT)
        if self.timeout is not None:
            DURATION.check("timeout", self.timeout)
        if self.health_interval is not None:
            DURATION.check("health_interval", self.health_interval)
        for field, kind in (
            ("bulkhead", BulkheadSpec),
            ("breaker", BreakerSpec),
            ("retry", RetrySpec),
            ("throttle", ThrottleSpec),
            ("fallback", FallbackSpec),
            ("faults", FaultSpec),
            ("hedge", HedgeSpec),
        ):
            value = getattr(self, field)
            if value is not None and not isinstance(value, kind):
                raise ConfigError(
                    f"`{field}` must be a {kind.__name__} (got {shown(value)})", field=field
                )


def _children(
    value: Iterable[ChildSpec | ServiceSpec | SupervisorSpec],
) -> tuple[ChildSpec | ServiceSpec | SupervisorSpec, ...]:
    """Converter: the children, as a tuple (each is checked in ``__attrs_post_init__``)."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ConfigError(
            "`children` must be a sequence of ChildSpec, ServiceSpec or SupervisorSpec "
            f"(got {shown(value)})"
        )
    return tuple(value)


@attrs.frozen(kw_only=True)
class SupervisorSpec:
    """A supervisor: its children, in start order, and how it restarts them.

    More than ``max_restarts`` restarts within any ``within`` seconds stop the supervisor: it stops
    all its children and fails, and its parent handles that failure under its own strategy.
    """

    name: str = attrs.field(validator=_name)
    """Unique among its siblings."""
    children: tuple[ChildSpec | ServiceSpec | SupervisorSpec, ...] = attrs.field(
        default=(), converter=_children
    )
    """Started in this order, each fully started before the next; stopped in reverse."""
    strategy: Strategy = attrs.field(default=Strategy.ONE_FOR_ONE, converter=_strategy)
    """Which children restart when one crashes."""
    max_restarts: int = attrs.field(default=3, validator=_checked(QUEUE))
    """Restart intensity: the most restarts allowed within ``within`` seconds (``0``: none)."""
    within: float = attrs.field(default=5.0, validator=_checked(DURATION))
    """The intensity window, in seconds (half-open: a restart exactly ``within`` ago is out)."""
    backoff: RestartBackoff = attrs.field(factory=RestartBackoff)
    """Delay before each restart."""
    restart: Restart = attrs.field(default=Restart.PERMANENT, converter=_restart)
    """When this supervisor, as a child of another, is restarted."""
    shutdown: float = attrs.field(default=INFINITY, converter=_shutdown)
    """Grace period this supervisor gets from its parent to stop its own children: it bounds
    the whole subtree (what still runs below when it runs out is cancelled)."""
    significant: bool = attrs.field(default=False)
    """As ``ChildSpec.significant`` (a transient or temporary supervisor only)."""
    auto_shutdown: AutoShutdown = attrs.field(default=AutoShutdown.NEVER, converter=_auto_shutdown)
    """Whether the exit of a significant child shuts this supervisor down (OTP's
    ``auto_shutdown``): ``never``, ``any_significant`` or ``all_significant``."""

    def __attrs_post_init__(self) -> None:
        check_significant(significant=self.significant, permanent=self.restart is Restart.PERMANENT)
        if self.strategy is Strategy.SIMPLE_ONE_FOR_ONE and len(self.children) != 1:
            raise ConfigError(
                "`children` of a simple_one_for_one supervisor must be exactly one template "
                f"(got {len(self.children)})",
                field="children",
            )
        seen: set[str] = set()
        for index, child in enumerate(self.children):
            if not isinstance(child, ChildSpec | ServiceSpec | SupervisorSpec):
                raise ConfigError(
                    f"`children[{index}]` must be a ChildSpec, ServiceSpec or SupervisorSpec "
                    f"(got {shown(child)})"
                )
            if child.name in seen:
                raise ConfigError(f"`children[{index}].name` {child.name!r} is used twice")
            seen.add(child.name)
            if child.significant and self.auto_shutdown is AutoShutdown.NEVER:
                raise ConfigError(
                    f"`children[{index}].significant` is true but `auto_shutdown` is never "
                    f"(child {shown(child.name)})"
                )


TreeSpec: TypeAlias = SupervisorSpec | ChildSpec | ServiceSpec
