"""Error-type counters are bounded: the most frequent names and an "other" bucket."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor import ConfigError, HealthTracker
from supervisor.cores import ServiceMetrics, TopCounts
from supervisor.observe._events import RequestFailed
from supervisor.rules._counts import ERROR_TYPES_KEPT, OTHER


@given(
    names=st.lists(st.sampled_from([f"E{n}" for n in range(12)] + [OTHER]), max_size=200),
    limit=st.integers(min_value=1, max_value=8),
)
def test_counts_add_up_and_stay_bounded(names: list[str], limit: int) -> None:
    """Whatever the names: at most ``limit`` held, every add counted once, and a held name's
    count never exceeds its true count."""
    counts = TopCounts(limit)
    for name in names:
        counts.add(name)
    result = counts.as_dict()
    truth = Counter(names)
    assert len(counts) <= limit
    assert sum(result.values()) == len(names)
    assert all(result[name] <= truth[name] for name in result if name != OTHER)
    if len(set(names) - {OTHER}) <= limit:  # nothing had to be folded: exact
        assert {k: v for k, v in result.items() if k != OTHER} == {
            k: v for k, v in truth.items() if k != OTHER
        }


def test_a_recurring_name_survives_a_stream_of_one_off_names() -> None:
    """One-off names churn only the smallest slot; the frequent ones keep their exact counts."""
    counts = TopCounts(3)
    for _ in range(5):
        counts.add("Timeout")
        counts.add("Refused")
    for n in range(1000):
        counts.add(f"Unique{n}")
    assert counts.as_dict() == {"Timeout": 5, "Refused": 5, "Unique999": 1, OTHER: 999}


def test_the_limit_is_checked() -> None:
    """``limit`` is an integer >= 1."""
    with pytest.raises(ConfigError, match="`limit` must be an integer >= 1"):
        TopCounts(0)


def _fresh_error(n: int) -> Exception:
    return type(f"Dynamic{n}", (Exception,), {})()


def test_health_keeps_the_documented_number_of_error_types() -> None:
    """A dependency raising a new class per call leaves ``errors_by_type`` at 20 names + other."""
    tracker = HealthTracker()
    tracker.register_service("svc", lambda: True)
    for n in range(5000):
        tracker.record_call("svc", 0.0, _fresh_error(n))
    errors = tracker.get_status("svc").errors_by_type
    assert ERROR_TYPES_KEPT == 20
    assert len(errors) == ERROR_TYPES_KEPT + 1
    assert sum(errors.values()) == 5000


def test_metrics_keep_the_documented_number_of_error_types() -> None:
    """The same bound for the tree's per-service metrics."""
    metrics = ServiceMetrics("app/db", created_at=0.0)
    for n in range(5000):
        metrics.record(RequestFailed(path="app/db", at=1.0, latency=0.0, error=_fresh_error(n)))
    snapshot = metrics.snapshot(now=1.0)
    assert len(snapshot.errors_by_type) == ERROR_TYPES_KEPT + 1
    assert snapshot.errors_by_type[OTHER] == 5000 - ERROR_TYPES_KEPT
    assert metrics.statistics().error_types == ERROR_TYPES_KEPT
