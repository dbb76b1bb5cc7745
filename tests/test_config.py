"""Numeric options: explicit argument, else environment variable, else default; bad values named."""

from __future__ import annotations

import math

import pytest

from supervisor import ConfigError
from supervisor._config import COUNT, DURATION, FACTOR, NON_NEGATIVE, QUEUE, UNSET


def test_explicit_value_wins_and_env_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A given value is used even when the variable holds garbage: the variable is not read."""
    monkeypatch.setenv("X_COUNT", "garbage")
    assert COUNT.resolve_int("n", 3, env="X_COUNT", default=5) == 3


def test_env_is_used_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """An omitted value comes from the environment variable."""
    monkeypatch.setenv("X_COUNT", " 7 ")
    assert COUNT.resolve_int("n", UNSET, env="X_COUNT", default=5) == 7
    monkeypatch.setenv("X_DURATION", "2.5")
    assert DURATION.resolve("t", UNSET, env="X_DURATION", default=1.0) == 2.5


def test_default_when_neither(monkeypatch: pytest.MonkeyPatch) -> None:
    """An omitted value with the variable unset takes the built-in default."""
    monkeypatch.delenv("X_COUNT", raising=False)
    assert COUNT.resolve_int("n", UNSET, env="X_COUNT", default=5) == 5


@pytest.mark.parametrize(
    ("bound", "value"),
    [
        (COUNT, 0),
        (COUNT, 1.5),
        (COUNT, True),
        (COUNT, "3"),
        (QUEUE, -1),
        (DURATION, 0),
        (DURATION, -1.0),
        (DURATION, math.inf),
        (DURATION, math.nan),
        (NON_NEGATIVE, -0.1),
        (FACTOR, 0.5),
    ],
)
def test_bad_explicit_values_name_the_parameter(bound: object, value: object) -> None:
    """A bad explicit value raises ConfigError naming the parameter and the value."""
    with pytest.raises(ConfigError) as info:
        bound.resolve("the_param", value, env=None, default=1)  # type: ignore[attr-defined]
    assert "`the_param`" in str(info.value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("text", ["abc", "", "0", "-3", "1.5"])
def test_bad_env_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """A bad variable raises ConfigError naming the variable and its text, and is a ValueError."""
    monkeypatch.setenv("X_COUNT", text)
    with pytest.raises(ValueError, match="X_COUNT") as info:
        COUNT.resolve_int("n", UNSET, env="X_COUNT", default=5)
    assert isinstance(info.value, ConfigError)
    assert repr(text) in str(info.value)


def test_boundaries_are_valid() -> None:
    """The smallest valid values are accepted: counts 1, queues 0, delays 0, factors 1."""
    assert COUNT.check("n", 1) == 1
    assert QUEUE.check("q", 0) == 0
    assert NON_NEGATIVE.check("d", 0) == 0
    assert FACTOR.check("f", 1) == 1
    assert DURATION.check("t", 1e-9) == 1e-9
