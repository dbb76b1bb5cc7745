"""The single source of an exception group leaves as itself; both packages' helpers agree."""

from __future__ import annotations

import pytest

import actors._groups
import supervisor._groups


@pytest.mark.parametrize("module", [actors._groups, supervisor._groups])
def test_one_leaf_leaves_as_itself_and_several_leave_as_the_group(module: object) -> None:
    cause = OSError("refused")
    leaf = KeyError("k")
    leaf.__cause__ = cause
    nested = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [leaf])])
    with pytest.raises(KeyError) as caught:
        module.raise_sole_leaf(nested)  # type: ignore[attr-defined]
    assert caught.value is leaf
    assert caught.value.__cause__ is cause
    alone = ValueError("v")
    with pytest.raises(ValueError) as caught_alone:
        module.raise_sole_leaf(BaseExceptionGroup("g", [alone]))  # type: ignore[attr-defined]
    assert caught_alone.value.__cause__ is not None  # chained to the group it came in
    several = BaseExceptionGroup("g", [KeyError("a"), ValueError("b")])
    with pytest.raises(BaseExceptionGroup) as caught_group:
        module.raise_sole_leaf(several)  # type: ignore[attr-defined]
    assert caught_group.value is several
    assert module.leaves(nested) == [leaf]  # type: ignore[attr-defined]
