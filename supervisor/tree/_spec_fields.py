"""Converters and validators the spec modules share: bounds checked per field, and values given
as ``"package.module:name"`` strings (a callable, or exception classes) imported and checked.

Each raises :class:`~supervisor.ConfigError` naming the field and the value.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import attrs

from .._config import Bound
from .._errors import ConfigError, shown


def _checked(bound: Bound) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        bound.check(attribute.name, value)

    return validate


def _import(value: str, field: str) -> Any:
    """The object a ``"package.module:attribute"`` string names."""
    module_name, sep, attribute = value.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(
            f"`{field}` must be 'package.module:name' (got {shown(value)})", field=field
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as exc:  # ImportError, AttributeError, or whatever its import raised
        raise ConfigError(
            f"`{field}` {shown(value)} cannot be imported: {exc}", field=field
        ) from exc
    return target


def _import_callable(value: Any, field: str) -> Callable[..., Any]:
    """A callable, or a ``"package.module:attribute"`` string naming one."""
    if isinstance(value, str):
        value = _import(value, field)
    if not callable(value):
        raise ConfigError(f"`{field}` must be callable (got {shown(value)})", field=field)
    return value  # type: ignore[no-any-return]


def _exception_types(value: Any, field: str) -> tuple[type[BaseException], ...]:
    """Exception classes (or ``"module:Name"`` strings), as a non-empty tuple."""
    items = value if isinstance(value, list | tuple) else (value,)
    types: list[type[BaseException]] = []
    for item in items:
        kind = _import(item, field) if isinstance(item, str) else item
        if not (isinstance(kind, type) and issubclass(kind, Exception)):
            raise ConfigError(f"`{field}`: {shown(item)} is not an Exception class", field=field)
        types.append(kind)
    if not types:
        raise ConfigError(f"`{field}` needs at least one exception class (got none)", field=field)
    return tuple(types)
