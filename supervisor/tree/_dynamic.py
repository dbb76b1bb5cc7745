"""The handle of a dynamic supervisor (OTP's ``simple_one_for_one``, Elixir's
``DynamicSupervisor``): instances of one template, started at run time with extra arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import actors

from ._children import ChildCount, ChildInfo, _StartInstance, _TerminateInstance, _WhichChildren

if TYPE_CHECKING:
    from ._tree import Tree


class DynamicSupervisorRef:
    """The handle of the dynamic supervisor at ``path`` (see :meth:`Tree.dynamic`).

    Its one child spec is a template. :meth:`start_child` starts an instance made by
    ``factory(*template.args, *args, **template.kwargs, **kwargs)``, named
    ``"<template name>-<n>"`` (``n`` counts up from 1). Instances are supervised one for one under
    the template's restart type, within the supervisor's intensity and backoff, and a restart
    keeps the extra arguments. At shutdown they stop all at once, each within the template's
    ``shutdown``.
    """

    __slots__ = ("_tree", "path")

    def __init__(self, tree: Tree, path: str) -> None:
        self._tree = tree
        self.path = path
        """The supervisor's path."""

    def __repr__(self) -> str:
        return f"<DynamicSupervisorRef {self.path!r}>"

    async def start_child(self, *args: Any, **kwargs: Any) -> actors.ActorRef[Any] | None:
        """Start one instance of the template with these extra arguments.

        Returns:
            The instance's actor, or ``None`` if its start said ignore (nothing is kept).

        Raises:
            ConfigError: the template is a supervisor and arguments were given.
            actors.ActorNotFound: the supervisor is not running.
            Exception: what the instance's start raised (nothing is kept).
        """
        supervisor = self._tree.system.lookup(self.path)
        ref: actors.ActorRef[Any] | None = await self._tree._operate(
            supervisor, _StartInstance(args, kwargs)
        )
        return ref

    async def terminate_child(self, ref: actors.ActorRef[Any]) -> None:
        """Stop the instance ``ref`` (within its grace) and forget it; it is not restarted.

        Raises:
            actors.ActorNotFound: ``ref`` is not a live instance of this supervisor.
        """
        supervisor = self._tree.system.lookup(self.path)
        await self._tree._operate(supervisor, _TerminateInstance(ref))

    async def which_children(self) -> tuple[ChildInfo, ...]:
        """The instances, in start order (``ChildInfo.args`` holds each one's extra
        arguments)."""
        supervisor = self._tree.system.lookup(self.path)
        result: tuple[ChildInfo, ...] = await supervisor.ask(_WhichChildren())
        return result

    async def count_children(self) -> ChildCount:
        """``specs`` is 1 (the template); ``active`` the running instances; ``supervisors`` or
        ``workers`` (per the template's kind) every instance, running or restarting."""
        return await self._tree.count_children(self.path)
