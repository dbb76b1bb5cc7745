"""Specs of supervision trees: defaults, validation at construction, and loading from data/TOML."""

from __future__ import annotations

import collections
import math
import os.path
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor._errors import ConfigError
from supervisor.tree._loading import load_tree, load_tree_file
from supervisor.tree._specs import (
    INFINITY,
    ChildSpec,
    Restart,
    RestartBackoff,
    Strategy,
    SupervisorSpec,
)

F = "collections:OrderedDict"
"""A factory import string that resolves to a class every Python has."""


def child(name: str = "a", **fields: Any) -> dict[str, Any]:
    """A child table as it would come from TOML."""
    return {"name": name, "factory": F, **fields}


def tree(*children: Any, **fields: Any) -> dict[str, Any]:
    """A root supervisor table as it would come from TOML."""
    return {"name": "root", "children": list(children), **fields}


def load_error(data: Any) -> str:
    """The message of the ConfigError that load_tree raises for ``data``."""
    with pytest.raises(ConfigError) as info:
        load_tree(data)
    return str(info.value)


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for throwaway factory modules (removed from sys.modules after)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("spec_test_"):
            del sys.modules[name]


# --- defaults ------------------------------------------------------------------------------------


def test_child_spec_defaults() -> None:
    """A ChildSpec with only name and factory is permanent, 5 s shutdown, mailbox 1000, 'wait'."""
    spec = ChildSpec(name="a", factory=dict)
    assert spec.factory is dict
    assert spec.args == ()
    assert spec.kwargs == {}
    assert spec.restart is Restart.PERMANENT
    assert spec.shutdown == 5.0
    assert isinstance(spec.shutdown, float)
    assert spec.mailbox_size == 1000
    assert spec.overflow == "wait"


def test_supervisor_spec_defaults() -> None:
    """A bare SupervisorSpec is one_for_one, 3 restarts in 5 s, and waits forever to stop."""
    spec = SupervisorSpec(name="root")
    assert spec.children == ()
    assert spec.strategy is Strategy.ONE_FOR_ONE
    assert spec.max_restarts == 3
    assert spec.within == 5.0
    assert spec.backoff == RestartBackoff()
    assert spec.restart is Restart.PERMANENT
    assert spec.shutdown == INFINITY
    assert math.inf == INFINITY


def test_restart_backoff_defaults() -> None:
    """The default backoff restarts at once, grows by 2, caps at 5 s and uses full jitter."""
    backoff = RestartBackoff()
    assert (backoff.initial_delay, backoff.max_delay, backoff.factor, backoff.jitter) == (
        0.0,
        5.0,
        2.0,
        True,
    )


def test_defaults_are_not_shared_between_instances() -> None:
    """Each spec gets its own default kwargs and backoff values (no mutable default is shared)."""
    one, two = ChildSpec(name="a", factory=dict), ChildSpec(name="b", factory=dict)
    assert one.kwargs == two.kwargs == {}
    assert SupervisorSpec(name="x").backoff == SupervisorSpec(name="y").backoff


def test_fields_are_keyword_only() -> None:
    """Specs take keyword arguments only, so a field can never be set by position by mistake."""
    with pytest.raises(TypeError):
        ChildSpec("a", dict)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        SupervisorSpec("root")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        RestartBackoff(1.0)  # type: ignore[call-arg]


# --- enums and their strings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "member"),
    [
        ("permanent", Restart.PERMANENT),
        ("transient", Restart.TRANSIENT),
        ("temporary", Restart.TEMPORARY),
    ],
)
def test_restart_accepts_member_or_value(text: str, member: Restart) -> None:
    """``restart`` takes a Restart member or its string value, and always stores the member."""
    assert ChildSpec(name="a", factory=dict, restart=text).restart is member
    assert ChildSpec(name="a", factory=dict, restart=member).restart is member
    assert SupervisorSpec(name="s", restart=text).restart is member


@pytest.mark.parametrize(
    ("text", "member"),
    [
        ("one_for_one", Strategy.ONE_FOR_ONE),
        ("one_for_all", Strategy.ONE_FOR_ALL),
        ("rest_for_one", Strategy.REST_FOR_ONE),
    ],
)
def test_strategy_accepts_member_or_value(text: str, member: Strategy) -> None:
    """``strategy`` takes a Strategy member or its string value, and always stores the member."""
    assert SupervisorSpec(name="s", strategy=text).strategy is member
    assert SupervisorSpec(name="s", strategy=member).strategy is member


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("sometimes", "`restart` 'sometimes' is not one of permanent, transient, temporary"),
        ("PERMANENT", "`restart` 'PERMANENT' is not one of permanent, transient, temporary"),
        (1, "`restart` 1 is not one of permanent, transient, temporary"),
        (None, "`restart` None is not one of permanent, transient, temporary"),
        (Strategy.ONE_FOR_ONE, "`restart` <Strategy.ONE_FOR_ONE: 'one_for_one'> is not one of"),
    ],
)
def test_bad_restart_names_field_and_value(value: object, message: str) -> None:
    """A bad ``restart`` raises ConfigError naming the field, the value and the choices."""
    with pytest.raises(ConfigError) as info:
        ChildSpec(name="a", factory=dict, restart=value)
    assert str(info.value).startswith(message)
    with pytest.raises(ConfigError) as info:
        SupervisorSpec(name="s", restart=value)
    assert str(info.value).startswith(message)


def test_bad_strategy_names_field_and_value() -> None:
    """A bad ``strategy`` raises ConfigError naming the field, the value and the choices."""
    with pytest.raises(ConfigError) as info:
        SupervisorSpec(name="s", strategy="all_for_one")
    assert str(info.value) == (
        "`strategy` 'all_for_one' is not one of one_for_one, one_for_all, rest_for_one, "
        "simple_one_for_one"
    )
    assert isinstance(info.value.__cause__, ValueError)


# --- shutdown ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("infinity", math.inf),
        ("immediate", 0.0),
        ("brutal_kill", 0.0),
        (0, 0.0),
        (3, 3.0),
        (2.5, 2.5),
        (math.inf, math.inf),
    ],
)
def test_shutdown_words_and_numbers(value: object, expected: float) -> None:
    """``shutdown`` takes seconds >= 0 or the words 'infinity' / 'immediate', stored as a float."""
    spec = ChildSpec(name="a", factory=dict, shutdown=value)
    assert spec.shutdown == expected
    assert isinstance(spec.shutdown, float)
    assert SupervisorSpec(name="s", shutdown=value).shutdown == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "`shutdown` must be seconds >= 0 (got -1)"),
        (-0.5, "`shutdown` must be seconds >= 0 (got -0.5)"),
        (-math.inf, "`shutdown` must be seconds >= 0 (got -inf)"),
        ("later", "`shutdown` must be seconds >= 0, 'infinity' or 'immediate' (got 'later')"),
        ("Infinity", "`shutdown` must be seconds >= 0, 'infinity' or 'immediate' (got 'Infinity')"),
        ("5", "`shutdown` must be seconds >= 0, 'infinity' or 'immediate' (got '5')"),
        (True, "`shutdown` must be seconds >= 0, 'infinity' or 'immediate' (got True)"),
        (None, "`shutdown` must be seconds >= 0, 'infinity' or 'immediate' (got None)"),
        (math.nan, "`shutdown` must be seconds >= 0, 'infinity' or 'immediate' (got nan)"),
    ],
)
def test_bad_shutdown_names_field_and_value(value: object, message: str) -> None:
    """A bad ``shutdown`` raises ConfigError naming the field and the value."""
    with pytest.raises(ConfigError) as info:
        ChildSpec(name="a", factory=dict, shutdown=value)
    assert str(info.value) == message
    with pytest.raises(ConfigError) as info:
        SupervisorSpec(name="s", shutdown=value)
    assert str(info.value) == message


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "a/b", "/", 5, None, b"a"])
def test_bad_name_names_field_and_value(value: object) -> None:
    """A name must be a non-empty string without '/' (it is one step of a child's path)."""
    message = f"`name` must be a non-empty string without '/' (got {value!r})"
    with pytest.raises(ConfigError) as info:
        ChildSpec(name=value, factory=dict)  # type: ignore[arg-type]
    assert str(info.value) == message
    with pytest.raises(ConfigError) as info:
        SupervisorSpec(name=value)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_name_may_hold_any_other_characters() -> None:
    """Dots, spaces, colons and non-ASCII letters are fine in a name."""
    for name in ("db.pool", "a b", "svc:1", "überwacher", "-"):
        assert ChildSpec(name=name, factory=dict).name == name


# --- factory -------------------------------------------------------------------------------------


def test_factory_callable_is_kept() -> None:
    """A callable factory is stored as given."""

    def make() -> object:
        return object()

    assert ChildSpec(name="a", factory=make).factory is make
    assert ChildSpec(name="a", factory=collections.deque).factory is collections.deque


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("collections:OrderedDict", collections.OrderedDict),
        ("os.path:join", os.path.join),
        ("collections:OrderedDict.fromkeys", collections.OrderedDict.fromkeys),
        ("builtins:dict", dict),
    ],
)
def test_factory_import_string_resolves(text: str, target: Callable[..., Any]) -> None:
    """A 'package.module:name' string (name may be dotted) is replaced by its target."""
    assert ChildSpec(name="a", factory=text).factory == target


def test_factory_import_string_from_own_module(module_dir: Path) -> None:
    """A factory string can name a class in the user's own module (imported on demand)."""
    (module_dir / "spec_test_actors.py").write_text("class Worker:\n    pass\n")
    spec = ChildSpec(name="w", factory="spec_test_actors:Worker")
    assert spec.factory.__name__ == "Worker"
    assert spec.factory.__module__ == "spec_test_actors"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("collections", "`factory` must be 'package.module:name' (got 'collections')"),
        ("collections:", "`factory` must be 'package.module:name' (got 'collections:')"),
        (":OrderedDict", "`factory` must be 'package.module:name' (got ':OrderedDict')"),
        ("", "`factory` must be 'package.module:name' (got '')"),
        (
            "no_such_module_xyz:Actor",
            "`factory` 'no_such_module_xyz:Actor' cannot be imported: "
            "No module named 'no_such_module_xyz'",
        ),
        (
            "collections:NoSuchThing",
            "`factory` 'collections:NoSuchThing' cannot be imported: "
            "module 'collections' has no attribute 'NoSuchThing'",
        ),
        ("math:pi", "`factory` must be callable (got 3.141592653589793)"),
    ],
)
def test_bad_factory_string_names_field_and_value(text: str, message: str) -> None:
    """A factory string that is malformed, cannot be imported, or is not callable is refused."""
    with pytest.raises(ConfigError) as info:
        ChildSpec(name="a", factory=text)
    assert str(info.value) == message


def test_factory_import_failure_is_chained() -> None:
    """An import failure is kept as the ConfigError's cause."""
    with pytest.raises(ConfigError) as info:
        ChildSpec(name="a", factory="no_such_module_xyz:Actor")
    assert isinstance(info.value.__cause__, ImportError)


@pytest.mark.parametrize("text", [".relative:Actor", "collections..abc:Mapping"])
def test_factory_odd_module_names_are_config_errors(text: str) -> None:
    """Relative or malformed module names give ConfigError, not a raw TypeError or ImportError."""
    with pytest.raises(ConfigError, match="cannot be imported"):
        ChildSpec(name="a", factory=text)


def test_factory_module_that_fails_to_import(module_dir: Path) -> None:
    """A module whose import raises gives ConfigError naming the string, chained to the error."""
    (module_dir / "spec_test_broken.py").write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(ConfigError) as info:
        ChildSpec(name="a", factory="spec_test_broken:Actor")
    assert (
        str(info.value) == "`factory` 'spec_test_broken:Actor' cannot be imported: boom at import"
    )
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.parametrize("value", [42, None, object(), b"collections:OrderedDict"])
def test_non_callable_factory_is_refused(value: object) -> None:
    """A factory that is neither callable nor a string is refused, naming the value."""
    with pytest.raises(ConfigError) as info:
        ChildSpec(name="a", factory=value)
    assert str(info.value) == f"`factory` must be callable (got {value!r})"


# --- args and kwargs -----------------------------------------------------------------------------


def test_args_become_a_tuple() -> None:
    """Positional arguments from a list, tuple or generator are stored as a tuple."""
    assert ChildSpec(name="a", factory=dict, args=[1, "x"]).args == (1, "x")
    assert ChildSpec(name="a", factory=dict, args=(1,)).args == (1,)
    assert ChildSpec(name="a", factory=dict, args=(i for i in range(3))).args == (0, 1, 2)


@pytest.mark.parametrize("value", ["abc", b"ab", 5, None, {"x": 1}])
def test_bad_args_are_refused_not_split(value: object) -> None:
    """A lone string (or a number, or a mapping) for ``args`` is refused instead of being split."""
    with pytest.raises(ConfigError) as info:
        ChildSpec(name="a", factory=dict, args=value)
    assert str(info.value) == f"`args` must be a sequence of arguments (got {value!r})"


def test_kwargs_are_a_read_only_copy() -> None:
    """``kwargs`` is copied at construction and cannot be changed through the spec."""
    given_kwargs = {"host": "db", "port": 5432}
    spec = ChildSpec(name="a", factory=dict, kwargs=given_kwargs)
    given_kwargs["port"] = 1
    assert spec.kwargs == {"host": "db", "port": 5432}
    with pytest.raises(TypeError):
        spec.kwargs["port"] = 2  # type: ignore[index]
    assert dict(spec.kwargs) == {"host": "db", "port": 5432}
    assert "kwargs={'host': 'db', 'port': 5432}" in repr(spec)


@pytest.mark.parametrize("value", [[1], "x=1", 3, None, {1: "a"}])
def test_bad_kwargs_are_refused(value: object) -> None:
    """``kwargs`` must be a mapping with string keys."""
    with pytest.raises(ConfigError) as info:
        ChildSpec(name="a", factory=dict, kwargs=value)
    assert str(info.value) == f"`kwargs` must be a mapping of names to values (got {value!r})"


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "`mailbox_size` must be an integer >= 1 (got 0)"),
        (-3, "`mailbox_size` must be an integer >= 1 (got -3)"),
        (1.5, "`mailbox_size` must be an integer >= 1 (got 1.5)"),
        (2.0, "`mailbox_size` must be an integer >= 1 (got 2.0)"),
        (True, "`mailbox_size` must be an integer >= 1 (got True)"),
        ("10", "`mailbox_size` must be an integer >= 1 (got '10')"),
    ],
)
def test_bad_mailbox_size(value: object, message: str) -> None:
    """``mailbox_size`` must be an integer >= 1; bools, floats and strings are refused."""
    with pytest.raises(ConfigError) as info:
        ChildSpec(name="a", factory=dict, mailbox_size=value)  # type: ignore[arg-type]
    assert str(info.value) == message


@pytest.mark.parametrize("policy", ["wait", "reject", "drop_oldest"])
def test_overflow_policies(policy: str) -> None:
    """The three mailbox overflow policies are accepted."""
    assert ChildSpec(name="a", factory=dict, overflow=policy).overflow == policy


@pytest.mark.parametrize("value", ["spill", "WAIT", "", 1, None])
def test_bad_overflow(value: object) -> None:
    """Any other overflow policy is refused, naming the field and the value."""
    with pytest.raises(ConfigError) as info:
        ChildSpec(name="a", factory=dict, overflow=value)  # type: ignore[arg-type]
    assert str(info.value) == f"`overflow` {value!r} is not one of wait, reject, drop_oldest"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_restarts": -1}, "`max_restarts` must be an integer >= 0 (got -1)"),
        ({"max_restarts": 1.0}, "`max_restarts` must be an integer >= 0 (got 1.0)"),
        ({"max_restarts": True}, "`max_restarts` must be an integer >= 0 (got True)"),
        ({"max_restarts": "3"}, "`max_restarts` must be an integer >= 0 (got '3')"),
        ({"within": 0}, "`within` must be a number > 0 (got 0)"),
        ({"within": -1.0}, "`within` must be a number > 0 (got -1.0)"),
        ({"within": math.inf}, "`within` must be a finite number > 0 (got inf)"),
        ({"within": math.nan}, "`within` must be a number > 0 (got nan)"),
        ({"within": False}, "`within` must be a number > 0 (got False)"),
        ({"within": "5"}, "`within` must be a number > 0 (got '5')"),
    ],
)
def test_bad_intensity(fields: dict[str, Any], message: str) -> None:
    """The restart intensity needs an integer ``max_restarts`` >= 0 and a finite ``within`` > 0."""
    with pytest.raises(ConfigError) as info:
        SupervisorSpec(name="s", **fields)
    assert str(info.value) == message


def test_intensity_edges_are_valid() -> None:
    """Zero restarts (any crash stops the supervisor) and tiny windows are valid."""
    spec = SupervisorSpec(name="s", max_restarts=0, within=0.001)
    assert (spec.max_restarts, spec.within) == (0, 0.001)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"initial_delay": -1}, "`initial_delay` must be a number >= 0 (got -1)"),
        ({"initial_delay": math.nan}, "`initial_delay` must be a number >= 0 (got nan)"),
        ({"initial_delay": "1"}, "`initial_delay` must be a number >= 0 (got '1')"),
        ({"max_delay": -0.5}, "`max_delay` must be a number >= 0 (inf: no limit) (got -0.5)"),
        ({"max_delay": math.nan}, "`max_delay` must be a number >= 0 (inf: no limit) (got nan)"),
        ({"max_delay": True}, "`max_delay` must be a number >= 0 (inf: no limit) (got True)"),
        ({"factor": 0.5}, "`factor` must be a number >= 1 (got 0.5)"),
        ({"factor": 0}, "`factor` must be a number >= 1 (got 0)"),
        ({"factor": None}, "`factor` must be a number >= 1 (got None)"),
        ({"jitter": "yes"}, "`jitter` must be true or false (got 'yes')"),
        ({"jitter": 1}, "`jitter` must be true or false (got 1)"),
    ],
)
def test_bad_backoff(fields: dict[str, Any], message: str) -> None:
    """Backoff delays must be >= 0 (only ``max_delay`` may be inf: no cap), the factor >= 1."""
    with pytest.raises(ConfigError) as info:
        RestartBackoff(**fields)
    assert str(info.value) == message


def test_backoff_edges_are_valid() -> None:
    """A constant backoff (factor 1) and zero delays are valid."""
    backoff = RestartBackoff(initial_delay=0, max_delay=0, factor=1, jitter=False)
    assert (backoff.initial_delay, backoff.max_delay, backoff.factor, backoff.jitter) == (
        0,
        0,
        1,
        False,
    )


# --- children ------------------------------------------------------------------------------------


def test_children_keep_order_and_become_a_tuple() -> None:
    """Children are stored in the given (start) order as a tuple, supervisors and workers mixed."""
    a = ChildSpec(name="a", factory=dict)
    sub = SupervisorSpec(name="sub", children=[ChildSpec(name="x", factory=dict)])
    b = ChildSpec(name="b", factory=dict)
    spec = SupervisorSpec(name="root", children=[a, sub, b])
    assert spec.children == (a, sub, b)
    assert isinstance(spec.children, tuple)


def test_duplicate_sibling_names_are_refused() -> None:
    """Two siblings with one name are refused, naming the index of the second and the name."""
    a = ChildSpec(name="a", factory=dict)
    with pytest.raises(ConfigError) as info:
        SupervisorSpec(name="root", children=[a, ChildSpec(name="b", factory=dict), a])
    assert str(info.value) == "`children[2].name` 'a' is used twice"
    with pytest.raises(ConfigError) as info:
        SupervisorSpec(name="root", children=[a, SupervisorSpec(name="a")])
    assert str(info.value) == "`children[1].name` 'a' is used twice"


def test_same_name_in_different_subtrees_is_fine() -> None:
    """Names are unique among siblings only: cousins, or a child named as its parent, are fine."""
    spec = SupervisorSpec(
        name="root",
        children=[
            SupervisorSpec(name="left", children=[ChildSpec(name="db", factory=dict)]),
            SupervisorSpec(name="right", children=[ChildSpec(name="db", factory=dict)]),
            ChildSpec(name="root", factory=dict),
        ],
    )
    assert [c.name for c in spec.children] == ["left", "right", "root"]


@pytest.mark.parametrize("value", ["a", 5, None, {"name": "a"}])
def test_children_must_be_specs(value: object) -> None:
    """A child that is not a ChildSpec or SupervisorSpec is refused, naming its index."""
    with pytest.raises(ConfigError) as info:
        SupervisorSpec(name="root", children=[ChildSpec(name="a", factory=dict), value])  # type: ignore[list-item]
    assert str(info.value) == (
        f"`children[1]` must be a ChildSpec, ServiceSpec or SupervisorSpec (got {value!r})"
    )


@pytest.mark.parametrize("value", [5, "ab", {"name": "a"}, None])
def test_children_must_be_a_sequence(value: object) -> None:
    """``children`` must be a sequence: a string or a mapping is refused, not iterated."""
    with pytest.raises(ConfigError) as info:
        SupervisorSpec(name="root", children=value)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"`children` must be a sequence of ChildSpec, ServiceSpec or SupervisorSpec (got {value!r})"
    )


# --- frozen --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field", "value"),
    [
        (ChildSpec(name="a", factory=dict), "restart", Restart.TEMPORARY),
        (ChildSpec(name="a", factory=dict), "args", (1,)),
        (SupervisorSpec(name="s"), "max_restarts", 10),
        (SupervisorSpec(name="s"), "children", ()),
        (RestartBackoff(), "factor", 3.0),
    ],
)
def test_specs_are_frozen(spec: object, field: str, value: object) -> None:
    """No field of a spec can be assigned or deleted after construction."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(spec, field, value)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        delattr(spec, field)


def test_specs_are_values() -> None:
    """Specs with equal fields are equal and hash alike, so they can key dicts and sets."""

    def make() -> SupervisorSpec:
        return SupervisorSpec(
            name="root",
            strategy="rest_for_one",
            children=[ChildSpec(name="a", factory=dict, args=[1], kwargs={"k": "v"})],
            backoff=RestartBackoff(initial_delay=0.1),
        )

    assert make() == make()
    assert hash(make()) == hash(make())
    assert len({make(), make()}) == 1
    assert make() != attrs.evolve(make(), max_restarts=9)


def test_evolve_validates_again() -> None:
    """``attrs.evolve`` runs every check again, so a derived spec cannot be invalid."""
    spec = SupervisorSpec(name="root", children=[ChildSpec(name="a", factory=dict)])
    with pytest.raises(ConfigError, match=r"`max_restarts` must be an integer >= 0 \(got -1\)"):
        attrs.evolve(spec, max_restarts=-1)
    with pytest.raises(ConfigError, match="used twice"):
        attrs.evolve(spec, children=[*spec.children, ChildSpec(name="a", factory=list)])
    evolved = attrs.evolve(spec.children[0], shutdown="infinity")
    assert isinstance(evolved, ChildSpec)
    assert evolved.shutdown == math.inf


# --- load_tree -----------------------------------------------------------------------------------


def test_load_full_tree() -> None:
    """Every field of every spec can be given as plain data, and enums come from their values."""
    spec = load_tree(
        {
            "name": "root",
            "strategy": "one_for_all",
            "max_restarts": 10,
            "within": 60.0,
            "backoff": {"initial_delay": 0.5, "max_delay": 30, "factor": 3, "jitter": False},
            "restart": "transient",
            "shutdown": "infinity",
            "children": [
                {
                    "name": "db",
                    "factory": "collections:OrderedDict",
                    "args": [1, "two"],
                    "kwargs": {"host": "localhost"},
                    "restart": "temporary",
                    "shutdown": 2.5,
                    "mailbox_size": 50,
                    "overflow": "drop_oldest",
                },
                {"name": "cache", "factory": "os.path:join", "shutdown": "immediate"},
            ],
        }
    )
    assert spec == SupervisorSpec(
        name="root",
        strategy=Strategy.ONE_FOR_ALL,
        max_restarts=10,
        within=60.0,
        backoff=RestartBackoff(initial_delay=0.5, max_delay=30, factor=3, jitter=False),
        restart=Restart.TRANSIENT,
        shutdown=INFINITY,
        children=(
            ChildSpec(
                name="db",
                factory=collections.OrderedDict,
                args=(1, "two"),
                kwargs={"host": "localhost"},
                restart=Restart.TEMPORARY,
                shutdown=2.5,
                mailbox_size=50,
                overflow="drop_oldest",
            ),
            ChildSpec(name="cache", factory=os.path.join, shutdown=0.0),
        ),
    )


def test_load_minimal_tree_uses_defaults() -> None:
    """A table with only a name is a supervisor with every default."""
    assert load_tree({"name": "root"}) == SupervisorSpec(name="root")


def test_load_nested_supervisors() -> None:
    """A child table with ``children`` or ``strategy`` is a supervisor, any other a worker."""
    spec = load_tree(
        tree(
            child("first"),
            {"name": "mid", "strategy": "rest_for_one"},
            {
                "name": "deep",
                "children": [{"name": "deeper", "children": [child("leaf", restart="transient")]}],
            },
            {"name": "empty", "children": []},
        )
    )
    first, mid, deep, empty = spec.children
    assert isinstance(first, ChildSpec)
    assert isinstance(mid, SupervisorSpec)
    assert mid.strategy is Strategy.REST_FOR_ONE
    assert mid.children == ()
    assert isinstance(deep, SupervisorSpec)
    (deeper,) = deep.children
    assert isinstance(deeper, SupervisorSpec)
    (leaf,) = deeper.children
    assert leaf == ChildSpec(name="leaf", factory=collections.OrderedDict, restart="transient")
    assert isinstance(empty, SupervisorSpec)


def test_load_accepts_any_mapping_and_sequence() -> None:
    """Any Mapping works as a table and any non-string sequence as an array (as JSON gives)."""
    data = collections.OrderedDict(name="root", children=(child("a"),))
    assert load_tree(data).children[0].name == "a"


def test_load_the_documented_example_message() -> None:
    """A bad enum value three children in names the full path of the field, as documented."""
    message = load_error(tree(child("a"), child("b"), child("c", restart="sometimes")))
    assert (
        message == "children[2].restart: 'sometimes' is not one of permanent, transient, temporary"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # enums
        (
            tree(strategy="all"),
            "strategy: 'all' is not one of one_for_one, one_for_all, rest_for_one, "
            "simple_one_for_one",
        ),
        (tree(restart=1), "restart: 1 is not one of permanent, transient, temporary"),
        (
            tree(child("a"), {"name": "s", "strategy": "x"}),
            "children[1].strategy: 'x' is not one of one_for_one, one_for_all, rest_for_one, "
            "simple_one_for_one",
        ),
        # strings for numbers, bools for ints and numbers, numbers for bools and strings
        (tree(max_restarts="3"), "max_restarts: '3' is not a number"),
        (tree(max_restarts=True), "max_restarts: True is not a number"),
        (tree(within="5s"), "within: '5s' is not a number"),
        (tree(within=False), "within: False is not a number"),
        (tree(child("a", mailbox_size="10")), "children[0].mailbox_size: '10' is not a number"),
        (tree(child("a", mailbox_size=True)), "children[0].mailbox_size: True is not a number"),
        (tree(backoff={"initial_delay": "1"}), "backoff.initial_delay: '1' is not a number"),
        (tree(backoff={"factor": True}), "backoff.factor: True is not a number"),
        (tree(backoff={"jitter": "yes"}), "backoff.jitter: 'yes' is not true or false"),
        (tree(backoff={"jitter": 1}), "backoff.jitter: 1 is not true or false"),
        ({"name": 5}, "name: 5 is not a string"),
        (tree(child("a", overflow=3)), "children[0].overflow: 3 is not a string"),
        (tree({"name": ["a"], "factory": F}), "children[0].name: ['a'] is not a string"),
        # range checks done by the specs themselves name the table, then the field
        (tree(max_restarts=-1), "`max_restarts` must be an integer >= 0 (got -1)"),
        (tree(max_restarts=1.5), "`max_restarts` must be an integer >= 0 (got 1.5)"),
        (tree(within=0), "`within` must be a number > 0 (got 0)"),
        (tree(backoff={"factor": 0.5}), "backoff.factor: `factor` must be a number >= 1 (got 0.5)"),
        (
            tree(child("a", mailbox_size=0)),
            "children[0].mailbox_size: `mailbox_size` must be an integer >= 1 (got 0)",
        ),
        (
            tree(child("a", overflow="spill")),
            "children[0].overflow: `overflow` 'spill' is not one of wait, reject, drop_oldest",
        ),
        ({"name": "a/b"}, "`name` must be a non-empty string without '/' (got 'a/b')"),
        (
            tree(child("")),
            "children[0].name: `name` must be a non-empty string without '/' (got '')",
        ),
        # shutdown
        (
            tree(child("a", shutdown=-1)),
            "children[0].shutdown: `shutdown` must be seconds >= 0 (got -1)",
        ),
        (
            tree(child("a", shutdown="later")),
            "children[0].shutdown: `shutdown` must be seconds >= 0, 'infinity' or 'immediate' "
            "(got 'later')",
        ),
        (
            tree(shutdown=True),
            "`shutdown` must be seconds >= 0, 'infinity' or 'immediate' (got True)",
        ),
        # args and kwargs
        (
            tree(child("a", args="abc")),
            "children[0].args: `args` must be a sequence of arguments (got 'abc')",
        ),
        (
            tree(child("a", kwargs=[1])),
            "children[0].kwargs: `kwargs` must be a mapping of names to values (got [1])",
        ),
        # factory strings
        (
            tree(child("a"), {"name": "b", "factory": "collections"}),
            "children[1].factory: `factory` must be 'package.module:name' (got 'collections')",
        ),
        (
            tree({"name": "b", "factory": "no_such_module_xyz:A"}),
            "children[0].factory: `factory` 'no_such_module_xyz:A' cannot be imported: "
            "No module named 'no_such_module_xyz'",
        ),
        (
            tree({"name": "b", "factory": 42}),
            "children[0].factory: `factory` must be callable (got 42)",
        ),
        # unknown and missing fields
        ({"name": "root", "foo": 1, "bar": 2}, "unknown field(s) bar, foo"),
        (tree(child("a", retries=3)), "children[0]: unknown field(s) retries"),
        (tree(backoff={"jiter": True}), "backoff: unknown field(s) jiter"),
        (
            tree({"name": "s", "children": [], "factory": F}),
            "children[0]: unknown field(s) factory",
        ),
        (tree(child("a", max_restarts=5)), "children[0]: unknown field(s) max_restarts"),
        ({"children": []}, "name: required field missing"),
        (tree({"name": "a"}), "children[0].factory: required field missing"),
        (tree({"factory": F}), "children[0].name: required field missing"),
        # shapes
        (tree(child("a"), 5), "children[1]: a child must be a table of fields (got 5)"),
        (tree(child("a"), "b"), "children[1]: a child must be a table of fields (got 'b')"),
        ({"name": "root", "children": 5}, "children: must be an array of tables (got 5)"),
        ({"name": "root", "children": "ab"}, "children: must be an array of tables (got 'ab')"),
        (
            {"name": "root", "children": {"name": "a", "factory": F}},
            "children: must be an array of tables "
            "(got {'name': 'a', 'factory': 'collections:OrderedDict'})",
        ),
        (tree(backoff=5), "backoff: must be a table of fields (got 5)"),
        (tree(backoff=[1]), "backoff: must be a table of fields (got [1])"),
        # duplicates
        (tree(child("a"), child("a")), "`children[1].name` 'a' is used twice"),
    ],
)
def test_load_errors_name_path_and_value(data: Any, message: str) -> None:
    """Each bad input gives one ConfigError naming where it is and what the bad value was."""
    assert load_error(data) == message


def test_load_error_paths_reach_deep_into_nested_supervisors() -> None:
    """The path of a bad field deep in nested supervisors lists every index on the way."""
    data = tree(
        child("a"),
        {
            "name": "mid",
            "children": [
                child("x"),
                {"name": "low", "children": [child("y"), child("z", restart="never")]},
            ],
        },
    )
    assert load_error(data) == (
        "children[1].children[1].children[1].restart: "
        "'never' is not one of permanent, transient, temporary"
    )
    data = tree({"name": "mid", "children": [child("x"), child("x")]})
    assert load_error(data) == "children[0]: `children[1].name` 'x' is used twice"
    data = tree({"name": "mid", "children": [child("x", mailbox_size=-1)]})
    assert load_error(data) == (
        "children[0].children[0].mailbox_size: `mailbox_size` must be an integer >= 1 (got -1)"
    )
    data = tree({"name": "mid", "strategy": "one_for_one", "backoff": {"max_delay": "x"}})
    assert load_error(data) == "children[0].backoff.max_delay: 'x' is not a number"


def test_load_error_is_a_chained_value_error() -> None:
    """The load error is a ConfigError (so a ValueError) chained to the underlying error."""
    with pytest.raises(ValueError) as info:
        load_tree(tree(child("a", restart="sometimes")))
    assert isinstance(info.value, ConfigError)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("data", [[1, 2], "root", None, 5])
def test_load_refuses_data_that_is_not_a_table(data: object) -> None:
    """Data that is not a mapping gives a ConfigError, not an AttributeError from inside cattrs."""
    assert load_error(data) == f"a tree must be a table of fields (got {data!r})"


def test_load_shutdown_words() -> None:
    """The shutdown words work in data for workers and supervisors."""
    spec = load_tree(
        tree(
            child("a", shutdown="infinity"),
            child("b", shutdown="immediate"),
            {"name": "s", "children": [], "shutdown": 10},
        )
    )
    assert [c.shutdown for c in spec.children] == [math.inf, 0.0, 10.0]


def test_load_keeps_numbers_exact() -> None:
    """Integer data for float fields is accepted; float data for an int field is refused."""
    spec = load_tree(tree(within=7, backoff={"max_delay": 1}))
    assert spec.within == 7
    assert spec.backoff.max_delay == 1
    assert load_error(tree(max_restarts=2.0)) == "`max_restarts` must be an integer >= 0 (got 2.0)"


_names = st.text(alphabet="abcxyz_-.0123", min_size=1, max_size=6)
_children = st.recursive(
    st.builds(
        lambda restart, shutdown, size: {
            "factory": F,
            "restart": restart,
            "shutdown": shutdown,
            "mailbox_size": size,
            "args": [size],
        },
        st.sampled_from([r.value for r in Restart]),
        st.one_of(st.sampled_from(["infinity", "immediate"]), st.floats(0, 100)),
        st.integers(1, 10_000),
    ),
    lambda inner: st.builds(
        lambda kids, strategy, max_restarts: {
            "children": kids,
            "strategy": strategy,
            "max_restarts": max_restarts,
        },
        st.lists(inner, max_size=4),
        st.sampled_from([s.value for s in Strategy if s is not Strategy.SIMPLE_ONE_FOR_ONE]),
        st.integers(0, 100),
    ),
    max_leaves=12,
)


def _named(node: dict[str, Any], names: Iterator[str]) -> dict[str, Any]:
    """``node`` with a unique name given to it and, recursively, to every child."""
    named = {**node, "name": next(names)}
    if "children" in node:
        named["children"] = [_named(kid, names) for kid in node["children"]]
    return named


def _build(node: dict[str, Any]) -> ChildSpec | SupervisorSpec:
    """The spec that ``node`` describes, built directly with the constructors."""
    if "children" in node:
        fields = {**node, "children": [_build(kid) for kid in node["children"]]}
        return SupervisorSpec(**fields)
    return ChildSpec(**node)


@given(root=_children.filter(lambda node: "children" in node))
def test_load_agrees_with_direct_construction(root: dict[str, Any]) -> None:
    """For any valid tree, loading its data equals building it with the constructors."""
    data = _named(root, (f"n{i}" for i in range(10_000)))
    assert load_tree(data) == _build(data)


# --- load_tree_file ------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "tree.toml") -> Path:
    """Write ``text`` (dedented) to a TOML file and return its path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_load_tree_file(tmp_path: Path) -> None:
    """A TOML file with arrays of tables describes a nested tree."""
    path = write(
        tmp_path,
        """
        name = "root"
        strategy = "one_for_all"
        max_restarts = 5
        within = 10.0
        shutdown = "infinity"

        [backoff]
        initial_delay = 0.1
        jitter = false

        [[children]]
        name = "db"
        factory = "collections:OrderedDict"
        args = [1, 2]
        kwargs = { host = "localhost", port = 5432 }
        restart = "transient"
        shutdown = 2

        [[children]]
        name = "workers"
        strategy = "rest_for_one"

        [[children.children]]
        name = "w1"
        factory = "collections:deque"
        shutdown = "immediate"
        """,
    )
    spec = load_tree_file(path)
    assert spec.strategy is Strategy.ONE_FOR_ALL
    assert spec.backoff == RestartBackoff(initial_delay=0.1, jitter=False)
    db, workers = spec.children
    assert db == ChildSpec(
        name="db",
        factory=collections.OrderedDict,
        args=(1, 2),
        kwargs={"host": "localhost", "port": 5432},
        restart=Restart.TRANSIENT,
        shutdown=2.0,
    )
    assert workers == SupervisorSpec(
        name="workers",
        strategy=Strategy.REST_FOR_ONE,
        children=[ChildSpec(name="w1", factory=collections.deque, shutdown=0.0)],
    )
    assert load_tree_file(str(path)) == spec


def test_load_tree_file_bad_toml_names_the_file(tmp_path: Path) -> None:
    """A file that is not TOML gives ConfigError naming the file, chained to the parse error."""
    path = write(tmp_path, 'name = "root"\nmax_restarts = \n')
    with pytest.raises(ConfigError) as info:
        load_tree_file(path)
    assert str(info.value).startswith(f"{path}: not valid TOML: ")
    assert info.value.__cause__ is not None


def test_load_tree_file_not_utf8_names_the_file(tmp_path: Path) -> None:
    """A file that is not UTF-8 is reported as not valid TOML, naming the file."""
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "überwacher"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_tree_file(path)
    assert str(info.value).startswith(f"{path}: not valid TOML: ")


def test_load_tree_file_bad_tree_names_file_and_path(tmp_path: Path) -> None:
    """A valid TOML file describing a bad tree names the file, then the path of the field."""
    path = write(
        tmp_path,
        """
        name = "root"
        [[children]]
        name = "a"
        factory = "collections:OrderedDict"
        [[children]]
        name = "b"
        factory = "collections:OrderedDict"
        restart = "sometimes"
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_tree_file(path)
    assert str(info.value) == (
        f"{path}: children[1].restart: 'sometimes' is not one of permanent, transient, temporary"
    )


def test_load_tree_file_children_as_a_table_is_explained(tmp_path: Path) -> None:
    """``[children]`` written for ``[[children]]`` says an array of tables is needed."""
    path = write(
        tmp_path,
        """
        name = "root"
        [children]
        name = "a"
        factory = "collections:OrderedDict"
        """,
    )
    with pytest.raises(ConfigError, match=r": children: must be an array of tables"):
        load_tree_file(path)


def test_load_tree_file_missing_file_is_an_os_error(tmp_path: Path) -> None:
    """A file that cannot be read raises OSError (FileNotFoundError), not ConfigError."""
    with pytest.raises(FileNotFoundError):
        load_tree_file(tmp_path / "absent.toml")
