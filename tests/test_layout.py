"""The layout of `supervisor/` keeps its promises: layers import downwards only, the rule cores
never touch trio, and the public faces still export every name they did.

The layers, lowest first (docs/architecture.md draws the same picture):

    base     supervisor/_errors.py, _config.py, _listeners.py
    rules    supervisor/rules/     pure cores, no trio
    store    supervisor/store/     where rule state lives (memory, or shared)
    guards   supervisor/guards/    trio shells and decorators
    observe  supervisor/observe/   events, bus, metrics, snapshots, exporters
    tree     supervisor/tree/      specs, supervisors, guarded services
    console  supervisor/console/   monitor, attach server and client
    testkit  supervisor/testkit/   waits, event recorder, pytest plugin
    app      supervisor/app/       the command line and the demo

A module may import from its own layer or any layer below it, never above. The public faces
(`supervisor/__init__.py`, `supervisor/cores.py`, `supervisor/__main__.py`) re-export and may import
anything.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import textwrap

import supervisor
import supervisor.cores

PACKAGE = pathlib.Path(supervisor.__file__).parent
LAYERS = ("base", "rules", "store", "guards", "observe", "tree", "console", "testkit", "app")
BASE_MODULES = {"_errors", "_config", "_groups", "_listeners"}
FACES = {"__init__", "cores", "__main__"}
# Only these layers may know about actors: the rules and their shells work on any trio code.
ACTOR_LAYERS = {"tree", "console", "app"}

# The public names before the layout changed (API.md is a fixed contract); more may be added.
SUPERVISOR_NAMES = {
    "AddressError", "AttachError", "AttachTimeout", "BreakerSpec", "Bulkhead",
    "BulkheadFullError", "BulkheadSpec", "BulkheadStatistics", "ChangeReason", "ChildCrashed",
    "ChildInfo", "ChildParked", "ChildRestarted", "ChildSpec", "ChildStarted", "ChildState",
    "ChildStopped", "CircuitBreaker", "CircuitBreakerConfig", "CircuitBreakerStatistics",
    "CircuitOpenError", "CircuitState", "CircuitStateChange", "ConfigError", "EventBus",
    "EventLogger", "EventSnapshot", "ExponentialBackoff", "FallbackSpec", "FallbackUsed",
    "HealthChange", "HealthTracker", "IntensityExceeded", "LatencySnapshot", "LinearBackoff",
    "Metrics", "Monitor", "NodeSnapshot", "OperationTimeout", "PrometheusCollector",
    "RateLimitExceeded", "Refusal", "RequestCompleted", "RequestFailed", "RequestRefused",
    "ResilienceError", "Restart", "RestartBackoff", "Retrier", "RetryPolicy", "RetryScheduled",
    "RetrySpec", "ServiceRef", "ServiceSnapshot", "ServiceSpec", "ServiceStatistics",
    "ServiceStatus", "Strategy", "SubscriberFailed", "Subscription", "SupervisorGaveUp",
    "SupervisorSpec", "SystemSnapshot", "ThrottleSpec", "TimeoutBudget", "Tree", "TreeEvent",
    "bulkhead", "cache_fallback", "circuit_breaker", "default_fallback", "degraded_fallback",
    "fallback", "fetch_snapshot", "load_tree", "load_tree_file", "monitor", "prometheus_text",
    "render", "retry", "run_tree", "serve_snapshots", "snapshot_from_json", "snapshot_to_json",
    "throttle", "timeout",
}  # fmt: skip
CORES_NAMES = {
    "Admission", "BreakerCore", "BudgetCore", "BulkheadCore", "HealthWindow", "Permit", "Refusal",
    "RestartIntensity", "RetrySchedule", "ServiceMetrics", "SlidingWindowCore", "TtlLruCache",
}  # fmt: skip


def _modules() -> list[pathlib.Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _dotted(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(dotted: str) -> str | None:
    """The layer of a module of the package; ``None`` for a public face."""
    parts = dotted.split(".")
    if len(parts) == 1 or parts[1] in FACES:
        return None
    if parts[1] in BASE_MODULES:
        return "base"
    if parts[1] in LAYERS:
        return parts[1]
    raise AssertionError(f"{dotted} is in no layer: add it to LAYERS or BASE_MODULES")


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """Every module imported anywhere in ``path`` (also inside functions and TYPE_CHECKING),
    as absolute dotted names, with the line of the import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _dotted(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return found


def test_every_module_belongs_to_a_layer() -> None:
    """Each module of `supervisor/` sits in one named layer (or is a public face)."""
    for path in _modules():
        _layer(_dotted(path))


def test_layers_import_downwards_only() -> None:
    """No module imports from a layer above its own, so no cycle spans two sub-packages."""
    upward = []
    for path in _modules():
        here = _dotted(path)
        layer = _layer(here)
        if layer is None:
            continue
        for line, target in _imports(path):
            if not target.startswith("supervisor"):
                continue
            other = _layer(target)
            if other is None:
                upward.append(f"{here}:{line} imports the public face {target}")
            elif LAYERS.index(other) > LAYERS.index(layer):
                upward.append(f"{here}:{line} ({layer}) imports {target} ({other})")
    assert upward == []


def test_only_the_tree_and_above_know_actors() -> None:
    """The rules, their shells and the observers work on any trio code, without actors."""
    found = []
    for path in _modules():
        layer = _layer(_dotted(path))
        if layer is None or layer in ACTOR_LAYERS:
            continue
        found.extend(
            f"{_dotted(path)}:{line}"
            for line, target in _imports(path)
            if target == "actors" or target.startswith("actors.")
        )
    assert found == []


def test_rules_never_import_trio() -> None:
    """No module of `supervisor/rules/` (nor the base it builds on) imports trio, even lazily."""
    found = []
    for path in _modules():
        if _layer(_dotted(path)) not in {"rules", "base"}:
            continue
        found.extend(
            f"{_dotted(path)}:{line}"
            for line, target in _imports(path)
            if target == "trio" or target.startswith("trio.")
        )
    assert found == []


def test_rules_import_with_trio_blocked() -> None:
    """Every rule core imports and runs in a process where importing trio fails."""
    script = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys, types
        sys.modules["trio"] = None  # any `import trio` now raises ImportError
        # A bare parent package, so that supervisor/__init__.py (which needs trio) is not run.
        parent = types.ModuleType("supervisor")
        parent.__path__ = [{str(PACKAGE)!r}]
        sys.modules["supervisor"] = parent
        rules = importlib.import_module("supervisor.rules")
        for info in pkgutil.iter_modules(rules.__path__, prefix="supervisor.rules."):
            importlib.import_module(info.name)
        from supervisor.rules._breaker import BreakerCore, Permit
        core = BreakerCore(name="db", failure_threshold=1, timeout=5.0)
        permit = core.try_acquire(0.0)
        assert isinstance(permit, Permit)
        core.on_failure(permit, 0.0)
        assert core.state_at(4.9).value == "open" and core.state_at(5.0).value == "half_open"
        assert "trio" not in {{m for m, v in sys.modules.items() if v is not None}}
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_supervisor_still_exports_every_name() -> None:
    """Every name importable from `supervisor` before the layout changed still is."""
    assert set(supervisor.__all__) >= SUPERVISOR_NAMES


def test_cores_still_exports_every_core() -> None:
    """Every name of `supervisor.cores` is still there, and the pure ones come from the rules."""
    assert set(supervisor.cores.__all__) >= CORES_NAMES
    for name in CORES_NAMES - {"ServiceMetrics"}:
        assert getattr(supervisor.cores, name).__module__.startswith("supervisor.rules."), name
    # Same meaning: the shells and the faces hand out the very same objects.
    assert supervisor.cores.Refusal is not supervisor.Refusal  # a breaker's refusal vs the event
    assert supervisor.CircuitState is supervisor.cores.BreakerCore(name="x").state_at(0.0).__class__


def test_each_layer_says_what_may_live_there() -> None:
    """Every sub-package is a layer, and its docstring says what may live in it and what may
    not."""
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        layer = init.parent.name
        assert layer in LAYERS, f"supervisor/{layer}/ is no layer: add it to LAYERS"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "may live here" in doc, layer
        assert "may not" in doc, layer
