"""Shared test configuration."""

from hypothesis import HealthCheck, settings

# The project's own pytest plugin (fixtures for a running tree), loaded as a user without the
# installed entry point would load it; pytester runs the plugin's own tests in a fresh session.
pytest_plugins = ["pytester", "supervisor.testkit.pytest_plugin"]

# Keep the whole suite well inside its time budget on a 2-core machine; CI may raise the effort.
settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")
