"""A drill written in Python: the feature store slows down, recommendations keep flowing.

Runs against the reference stack (started if needed) or ``--drill-stack FILE``;
``pytest -m drill -v`` prints each phase with live p99, availability and fallback ratio.
"""

from __future__ import annotations

from typing import Any

import pytest

SLO = {
    "steady": {"p99_ms": 400, "availability": 0.97},
    "fault": {"p99_ms": 400, "availability": 0.95, "max_fallback_ratio": 1.0},
    # the breaker probes every 2 s while open, and lookups still under the 200 ms toxic finish
    # after the link heals: up to 3 s of the first 5-s window on cached features (0.15-0.19
    # measured, and once 0.375 against the old budget of 0.4). A breaker that never closes
    # still fails this (1.0), and so does max_recovery_s
    "recovery": {"p99_ms": 400, "availability": 0.97, "max_fallback_ratio": 0.6},
    "max_recovery_s": 20,
    "window_s": 5,
}


@pytest.mark.drill
def test_feature_store_latency_is_absorbed(drill: Any, fault_proxy: Any, load: Any) -> None:
    """Feature store +200 ms: feature deadlines and cached tiers keep the SLOs."""
    drill.steady(10)
    with fault_proxy.toxic("feature-store", "latency", latency=200, jitter=20):
        drill.hold(15)
    drill.hold(15)  # recovery
    drill.assert_slo(SLO)
