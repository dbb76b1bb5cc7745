"""A service's fault injection, as part of its spec (:attr:`ServiceSpec.faults`)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .._errors import ConfigError
from ..rules._faults import Fault

__all__ = ["FaultSpec"]


def _faults(value: Any) -> tuple[Fault, ...]:
    """Converter: the faults, as a tuple of :class:`Fault` (each checked)."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ConfigError(f"`inject` must be a sequence of Fault (got {value!r})")
    faults = tuple(value)
    for index, fault in enumerate(faults):
        if not isinstance(fault, Fault):
            raise ConfigError(f"`inject[{index}]` must be a Fault (got {fault!r})")
    return faults


def _seed(_instance: Any, _attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | str)):
        raise ConfigError(f"`seed` must be an integer or a string (got {value!r})")


def _rng(_instance: Any, _attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(value):
        raise ConfigError(f"`rng` must be callable (got {value!r})")


@attrs.frozen(kw_only=True)
class FaultSpec:
    """Faults injected into a guarded service, *inside* its actor: an injected error is raised
    by the actor (a crash, restarted by its supervisor and counted by its breaker, as a real
    dependency's error would be), injected latency holds a bulkhead slot and runs under the
    request's deadline, a replaced result is the actor's answer. Windows are measured from the
    tree's start. Off unless given: a service without faults runs exactly as before.

    .. note:: An injected error crashes the instance *before* its ``receive`` runs, so an
       instance that closes what it holds on its own error path does not do so here (and the
       runtime calls no hook on a crashed instance): let the next instance's ``on_restart`` close
       what its predecessor left open, as ``examples/chaos_http.py`` does.
    """

    inject: tuple[Fault, ...] = attrs.field(converter=_faults)
    """The faults, in order (``[[children.faults.inject]]`` tables in TOML)."""
    seed: int | str | None = attrs.field(default=None, validator=_seed)
    """Seeds the random source of the rates; ``None``: drawn from the tree's random source (a
    tree run with a seeded ``rng`` is then repeatable too)."""
    rng: Callable[[Any], random.Random] | None = attrs.field(default=None, validator=_rng)
    """Where given, ``rng(request)`` is the random source of that request's decision (for a
    simulation whose requests carry their own random source, so that outcomes do not depend on
    the order in which concurrent requests reach the actor). Starts use the seeded source."""
