"""Exception groups: the single source of a group that a nursery (trio's, or a client
library's) raises, so that it can leave as itself.

The actor runtime has the same two functions in ``actors/_groups.py``: the two packages never
import each other's private modules, and the rules, their shells and the stores must work
without the actors.
"""

from __future__ import annotations

from typing import NoReturn

__all__ = ["leaves", "raise_sole_leaf"]


def leaves(error: BaseException) -> list[BaseException]:
    """Every exception inside ``error`` that is not itself a group, depth first, in order
    (``[error]`` for an exception that is not a group)."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for sub in error.exceptions for leaf in leaves(sub)]
    return [error]


def raise_sole_leaf(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the one exception inside ``group`` as itself, chained to its own ``__cause__``, or
    else to the group; raise ``group`` unchanged when it holds several."""
    found = leaves(group)
    if len(found) != 1:
        raise group
    leaf = found[0]
    raise leaf from (leaf.__cause__ if leaf.__cause__ is not None else group)
