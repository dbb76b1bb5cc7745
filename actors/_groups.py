"""Exception groups: finding the single source of a group that trio's nurseries raise.

``supervisor/_groups.py`` has the same two functions for the supervisor's layers below the tree,
which never import the actors.
"""

from __future__ import annotations

from typing import NoReturn

__all__ = ["leaves", "raise_sole_leaf"]


def leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """Every exception inside ``group`` that is not itself a group, depth first, in order."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(leaves(exc))
        else:
            found.append(exc)
    return found


def raise_sole_leaf(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the one exception inside ``group`` as itself, chained to its own ``__cause__``, or
    else to the group; raise ``group`` unchanged when it holds several."""
    found = leaves(group)
    if len(found) != 1:
        raise group
    leaf = found[0]
    raise leaf from (leaf.__cause__ if leaf.__cause__ is not None else group)
