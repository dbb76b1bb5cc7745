"""Deciding what an outcome is: exception matchers and the breaker's outcome classifier.

A *matcher* is the one form every "which errors?" option accepts: an exception class, a
predicate ``(exception) -> bool``, or a tuple / list mixing both; it matches an error when any
item does. :class:`OutcomeClassifier` turns a call's outcome (its error, or its result) into an
:class:`Outcome` for the breaker. Both are pure: no trio, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeAlias

import attrs

from .._errors import ConfigError, shown

__all__ = ["Matcher", "Outcome", "OutcomeClassifier", "matcher"]

Matcher: TypeAlias = Callable[[BaseException], bool]
"""A compiled matcher: ``matcher(error)`` is whether ``error`` matches."""


class Outcome(enum.Enum):
    """What a finished call counts as, for a breaker."""

    SUCCESS = "success"
    """A success (it may still be slow)."""
    FAILURE = "failure"
    """A counted failure."""
    IGNORED = "ignored"
    """Neither: an excluded or uncounted error, or a cancellation."""


def _is_exception_class(item: object) -> bool:
    return isinstance(item, type) and issubclass(item, BaseException)


def matcher(param: str, value: object) -> Matcher:
    """Compile ``value`` (an exception class, a predicate, or a tuple / list of either) into one
    predicate that matches when any item does.

    An empty tuple or list matches nothing. A predicate is called with the error and its result
    is taken as true or false; whatever it raises propagates to the caller of the matcher.

    Raises:
        ConfigError: an item is neither an exception class nor callable (naming ``param``).
    """
    items = tuple(value) if isinstance(value, tuple | list) else (value,)
    types: list[type[BaseException]] = []
    predicates: list[Callable[[BaseException], object]] = []
    for item in items:
        if _is_exception_class(item):
            types.append(item)
        elif callable(item):
            predicates.append(item)
        else:
            raise ConfigError(
                f"`{param}` must be exception classes or predicates (exception) -> bool "
                f"(got {shown(value)})",
                field=param,
            )
    classes = tuple(types)
    if not predicates:
        return lambda error: isinstance(error, classes)
    preds = tuple(predicates)
    return lambda error: isinstance(error, classes) or any(bool(p(error)) for p in preds)


def _optional_callable(param: str, value: object) -> Callable[..., Any] | None:
    if value is not None and not callable(value):
        raise ConfigError(f"`{param}` must be callable or None (got {shown(value)})", field=param)
    return value


@attrs.frozen(kw_only=True)
class OutcomeClassifier:
    """How a breaker counts the outcome of a call (resilience4j's ``recordExceptions``,
    ``ignoreExceptions``, ``recordException`` and ``recordResult``; pybreaker's ``exclude``).

    An error counts as a failure when it is an :class:`Exception`, is an instance of
    ``expected_exception``, is not matched by ``exclude``, and ``is_failure`` (where given)
    returns true for it; any other error counts as nothing (:attr:`Outcome.IGNORED`). A result
    counts as a failure when ``is_failure_result`` (where given) returns true for it, else as a
    success. Build with :meth:`build`, which checks every value.
    """

    expected_exception: tuple[type[BaseException], ...] = (Exception,)
    """The exception classes that may count as failures."""
    exclude: Matcher | None = None
    """Errors that count as neither failure nor success (checked first)."""
    is_failure: Callable[[Exception], object] | None = None
    """Decides from the error whether an expected error counts (true: a failure)."""
    is_failure_result: Callable[[Any], object] | None = None
    """Decides from the result whether a call that returned counts as a failure."""

    @classmethod
    def build(
        cls,
        *,
        expected_exception: tuple[type[BaseException], ...] = (Exception,),
        exclude: object = (),
        is_failure: object = None,
        is_failure_result: object = None,
    ) -> OutcomeClassifier:
        """Check and compile the options.

        Raises:
            ConfigError: ``exclude`` holds something that is neither an exception class nor
                callable, or ``is_failure`` / ``is_failure_result`` is not callable.
        """
        empty = isinstance(exclude, tuple | list) and not exclude
        return cls(
            expected_exception=expected_exception,
            exclude=None if empty or exclude is None else matcher("exclude", exclude),
            is_failure=_optional_callable("is_failure", is_failure),
            is_failure_result=_optional_callable("is_failure_result", is_failure_result),
        )

    def of_error(self, error: BaseException) -> Outcome:
        """What a call that raised ``error`` counts as (a cancellation: :attr:`Outcome.IGNORED`).
        A predicate's own error propagates."""
        if not isinstance(error, Exception) or not isinstance(error, self.expected_exception):
            return Outcome.IGNORED
        if self.exclude is not None and self.exclude(error):
            return Outcome.IGNORED
        if self.is_failure is not None and not self.is_failure(error):
            return Outcome.IGNORED
        return Outcome.FAILURE

    def of_result(self, result: Any) -> Outcome:
        """What a call that returned ``result`` counts as. A predicate's own error propagates."""
        if self.is_failure_result is not None and self.is_failure_result(result):
            return Outcome.FAILURE
        return Outcome.SUCCESS
