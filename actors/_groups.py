"""Exception groups: finding the single source of a group that trio's nurseries raise."""

from __future__ import annotations

__all__ = ["leaves"]


def leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """Every exception inside ``group`` that is not itself a group, depth first, in order."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(leaves(exc))
        else:
            found.append(exc)
    return found
