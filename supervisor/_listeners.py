"""Synchronous listener lists: how a rule hands its frozen events to whoever subscribed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Listeners"]

E = TypeVar("E")


class Listeners(Generic[E]):
    """Callbacks called synchronously, in registration order, with each event.

    A callback that raises does not stop the others nor the rule: the error is re-raised after
    all were called, so a broken listener is seen, not silently ignored. ``BaseException`` s that
    are not ``Exception`` s propagate at once.
    """

    __slots__ = ("_callbacks",)

    def __init__(self) -> None:
        self._callbacks: list[Callable[[E], object]] = []

    def add(self, callback: Callable[[E], object]) -> None:
        if not callable(callback):
            raise TypeError(f"a listener must be callable (got {callback!r})")
        self._callbacks.append(callback)

    def remove(self, callback: Callable[[E], object]) -> None:
        """Remove ``callback``; raise :class:`ValueError` if it was never added."""
        self._callbacks.remove(callback)

    def __bool__(self) -> bool:
        return bool(self._callbacks)

    def __len__(self) -> int:
        return len(self._callbacks)

    def emit(self, event: E) -> None:
        first_error: Exception | None = None
        for callback in tuple(self._callbacks):
            try:
                callback(event)
            except Exception as exc:
                if first_error is None:
                    first_error = exc
        if first_error is not None:
            raise first_error
