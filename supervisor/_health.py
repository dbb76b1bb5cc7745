"""Placeholder: being written."""

from typing import Any

HealthTracker: Any = None
ServiceStatus: Any = None
