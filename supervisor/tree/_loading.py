"""Tree specs from plain data and TOML, with cattrs: errors name the path of the bad field."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ForbiddenExtraKeysError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, override

from .._errors import ConfigError, shown
from ..rules._adaptive import LimitAlgorithm, limit_algorithm
from ..rules._faults import Fault, FaultPoint
from ..rules._rate_breaker import OpenBackoff, RateWindow
from ..rules._retry_budget import RetryBudgetConfig
from ._fault_specs import FaultSpec
from ._limit_specs import AdaptiveLimitSpec, HedgeSpec
from ._otp import AutoShutdown
from ._rule_specs import BreakerSpec, BulkheadSpec, FallbackSpec, RetrySpec, ThrottleSpec
from ._spec_fields import _import, _import_callable
from ._specs import (
    ChildSpec,
    Restart,
    RestartBackoff,
    ServiceSpec,
    Strategy,
    SupervisorSpec,
    _factory,
    _member,
)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)

    def number(value: Any, _type: type[Any]) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{value!r} is not a number")
        return value

    def boolean(value: Any, _type: type[Any]) -> bool:
        # Registered explicitly: ``bool`` is an ``int``, so it would otherwise get ``number``.
        if not isinstance(value, bool):
            raise ConfigError(f"{value!r} is not true or false")
        return value

    def string(value: Any, _type: type[Any]) -> str:
        # cattrs' default calls ``str()``, which would turn ``name = 5`` into ``"5"``.
        if not isinstance(value, str):
            raise ConfigError(f"{value!r} is not a string")
        return value

    def as_is(value: Any, _type: type[Any]) -> Any:
        # Checked (and converted) by the attrs converter of the field instead.
        return value

    def children(
        value: Any, _type: type[Any]
    ) -> tuple[ChildSpec | ServiceSpec | SupervisorSpec, ...]:
        # A string or a table would otherwise be iterated (``[children]`` instead of
        # ``[[children]]`` is an easy TOML slip), giving a confusing message about its keys.
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
            raise ConfigError(f"must be an array of tables (got {value!r})")
        return converter.structure(value, tuple[ChildSpec | ServiceSpec | SupervisorSpec, ...])

    def child(value: Any, _type: type[Any]) -> ChildSpec | ServiceSpec | SupervisorSpec:
        if not isinstance(value, Mapping):
            raise ConfigError(f"a child must be a table of fields (got {value!r})")
        if "children" in value or "strategy" in value or "auto_shutdown" in value:
            return converter.structure(value, SupervisorSpec)
        if _SERVICE_FIELDS & value.keys():
            return converter.structure(value, ServiceSpec)
        return converter.structure(value, ChildSpec)

    converter.register_structure_hook(int, number)
    converter.register_structure_hook(float, number)
    converter.register_structure_hook(bool, boolean)
    converter.register_structure_hook(str, string)
    converter.register_structure_hook(Restart, lambda value, _t: _member(Restart, None, value))
    converter.register_structure_hook(Strategy, lambda value, _t: _member(Strategy, None, value))
    converter.register_structure_hook(
        AutoShutdown, lambda value, _t: _member(AutoShutdown, None, value)
    )
    converter.register_structure_hook_func(
        lambda kind: kind == Callable[..., Any], lambda value, _t: _factory(value)
    )
    converter.register_structure_hook(ChildSpec | ServiceSpec | SupervisorSpec, child)

    def table(kind: type[Any], **overrides: Any) -> None:
        fields = make_dict_structure_fn(kind, converter, **overrides)

        def structure(value: Any, _type: type[Any]) -> Any:
            # cattrs would fail on a non-table with a message about ``in`` or ``.keys()``.
            if not isinstance(value, Mapping):
                raise ConfigError(f"must be a table of fields (got {value!r})")
            return fields(value, kind)

        converter.register_structure_hook(kind, structure)

    converter.register_structure_hook(LimitAlgorithm, lambda value, _t: limit_algorithm(value))
    table(RestartBackoff)
    _fault_tables(table, as_is)
    table(HedgeSpec)
    table(AdaptiveLimitSpec)
    table(BulkheadSpec)
    table(ThrottleSpec)
    exceptions = override(struct_hook=as_is)
    for rule_value in (RateWindow, OpenBackoff, RetryBudgetConfig):
        table(rule_value)
    table(
        BreakerSpec,
        expected_exception=exceptions,
        exclude=exceptions,
        is_failure=exceptions,
        is_failure_result=exceptions,
    )
    table(RetrySpec, exceptions=exceptions, on=exceptions, retry_on_result=exceptions)
    table(FallbackSpec, default=override(struct_hook=as_is), degraded=override(struct_hook=as_is))
    table(
        ServiceSpec,
        **{
            name: override(struct_hook=as_is)
            for name in ("args", "kwargs", "shutdown", "health_check", "request_errors")
        },
    )
    table(
        ChildSpec, **{name: override(struct_hook=as_is) for name in ("args", "kwargs", "shutdown")}
    )
    table(
        SupervisorSpec,
        children=override(struct_hook=children),
        shutdown=override(struct_hook=as_is),
    )
    return converter


_SERVICE_FIELDS: Final = frozenset(
    {
        "bulkhead",
        "breaker",
        "retry",
        "throttle",
        "timeout",
        "fallback",
        "health_check",
        "health_interval",
        "request_errors",
        "faults",
        "hedge",
    }
)


def _fault_tables(table: Callable[..., None], as_is: Callable[[Any, type[Any]], Any]) -> None:
    # ``error = "package.module:Name"``, ``rng = "package.module:name"``; the attrs validators
    # check what the strings name (and every other value).
    def error(value: Any, _type: type[Any]) -> Any:
        return _import(value, "error") if isinstance(value, str) else value

    def rng(value: Any, _type: type[Any]) -> Any:
        return None if value is None else _import_callable(value, "rng")

    table(
        Fault,
        error=override(struct_hook=error),
        result=override(struct_hook=as_is),
        point=override(struct_hook=lambda value, _t: _member(FaultPoint, None, value)),
    )
    table(FaultSpec, seed=override(struct_hook=as_is), rng=override(struct_hook=rng))


_CONVERTER: Final = _make_converter()


def _first_error(exc: BaseException, path: str) -> tuple[str, BaseException]:
    """Walk a cattrs error tree to its first leaf, building the path of the bad field."""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, AttributeValidationNote):
            path = f"{path}.{note.name}" if path else note.name
        elif isinstance(note, IterableValidationNote):
            path = f"{path}[{note.index}]"
    if isinstance(exc, BaseValidationError):
        return _first_error(exc.exceptions[0], path)
    field = getattr(exc, "field", None)
    if isinstance(exc, ConfigError) and field and path and not path.endswith(f".{field}"):
        # A check of the whole spec (an attrs validator) names its field; cattrs does not. At the
        # root the message itself names the field already.
        path = f"{path}.{field}"
    return path, exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unknown field(s) {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, KeyError):
        return "required field missing"
    return str(exc)


def load_tree(data: Mapping[str, Any]) -> SupervisorSpec:
    """Build a :class:`SupervisorSpec` from plain data (as parsed from TOML or JSON).

    A child table with ``children``, ``strategy`` or ``auto_shutdown`` is a nested supervisor;
    one with any of ``bulkhead``, ``breaker``, ``retry``, ``throttle``, ``timeout``,
    ``fallback``, ``health_check``, ``health_interval``, ``request_errors``, ``hedge`` is a
    :class:`ServiceSpec`; any other is a
    :class:`ChildSpec`. ``factory``, ``degraded``, ``health_check`` and exception classes are
    ``"package.module:name"`` strings.

    Raises:
        ConfigError: the data is not a valid tree; the message names the path of the first bad
            field and its value, e.g. ``children[2].restart: 'sometimes' is not one of permanent,
            transient, temporary`` or ``children[0].breaker.timeout: `timeout` must be a number
            > 0 (got -1)``; data nested too deeply to load says so.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a tree must be a table of fields (got {shown(data)})")
    try:
        return _CONVERTER.structure(data, SupervisorSpec)
    except RecursionError as exc:
        raise ConfigError("the tree is nested too deeply to load") from exc
    except (BaseValidationError, ConfigError, KeyError, TypeError, ValueError) as exc:
        path, leaf = _first_error(exc, "")
        if isinstance(leaf, RecursionError):  # caught by cattrs on the way down
            raise ConfigError(
                f"the tree is nested too deeply to load ({path.count('children[')} levels)"
            ) from exc
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}{_describe(leaf)}") from exc


def load_tree_file(path: str | Path) -> SupervisorSpec:
    """Read a TOML file describing a tree (see :func:`load_tree`).

    Raises:
        ConfigError: the file is not valid TOML (also: nested too deeply for the parser) or not a
            valid tree (the message names the file).
        OSError: the file cannot be read.
    """
    path = Path(path)
    with path.open("rb") as handle:
        try:
            data = tomllib.load(handle)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except RecursionError as exc:  # tomllib recurses into nested arrays and inline tables
            raise ConfigError(f"{path}: not valid TOML: nested too deeply") from exc
    try:
        return load_tree(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
