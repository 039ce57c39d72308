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
    # the breaker stays open up to 2 s after the link heals: up to 2 s of a 5-s window on
    # cached features (measured 0.21 on the 2-core box, where 0.05 failed the drill)
    "recovery": {"p99_ms": 400, "availability": 0.97, "max_fallback_ratio": 0.4},
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
