"""The public faces of both packages: complete, and nothing private leaks."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import actors
import supervisor

API_MD_NAMES = {
    "CircuitBreaker", "CircuitBreakerConfig", "CircuitState", "circuit_breaker",
    "retry", "Retrier", "RetryPolicy", "ExponentialBackoff", "LinearBackoff",
    "timeout", "TimeoutBudget",
    "fallback", "default_fallback", "cache_fallback", "degraded_fallback",
    "throttle", "bulkhead", "Bulkhead",
    "HealthTracker", "ServiceStatus",
    "ResilienceError", "CircuitOpenError", "BulkheadFullError", "RateLimitExceeded",
    "OperationTimeout", "ConfigError",
}  # fmt: skip


@pytest.mark.parametrize("package", [actors, supervisor])
def test_all_is_complete_and_public(package: types.ModuleType) -> None:
    """Every public attribute is in __all__, every __all__ name exists, and none is private."""
    exported = set(package.__all__)
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == exported
    assert all(not name.startswith("_") for name in exported)
    for name in exported:
        assert getattr(package, name) is not None


def test_supervisor_exports_the_contract() -> None:
    """Every name the function-level API contract lists is importable from `supervisor`."""
    assert set(supervisor.__all__) >= API_MD_NAMES


@pytest.mark.parametrize("package", [actors, supervisor])
def test_public_names_are_documented(package: types.ModuleType) -> None:
    """Every exported class and function carries a docstring."""
    for name in package.__all__:
        value = getattr(package, name)
        if callable(value):
            assert value.__doc__, f"{package.__name__}.{name} has no docstring"


@pytest.mark.parametrize("package", [actors, supervisor])
def test_private_modules_import_cleanly(package: types.ModuleType) -> None:
    """Every module of the package, in every sub-package, imports on its own (no import cycles
    hidden by __init__)."""
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        importlib.import_module(info.name)


def test_actors_does_not_import_supervisor() -> None:
    """The dependency goes one way: `actors` never imports `supervisor`."""
    for info in pkgutil.iter_modules(actors.__path__, prefix="actors."):
        module = importlib.import_module(info.name)
        source = module.__loader__.get_source(info.name) or ""  # type: ignore[union-attr]
        assert "import supervisor" not in source
        assert "from supervisor" not in source
