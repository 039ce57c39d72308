"""Load runner: Locust as a subprocess against the gateway, per-second timeline.

``chaos_rec.load.locustfile`` is only ever run by Locust in its own process;
nothing here imports it (importing locust monkey-patches with gevent).
"""

from __future__ import annotations

from chaos_rec.load.metrics import availability, fallback_ratio, latency_percentile, summarize
from chaos_rec.load.runner import DEFAULT_MIX, LoadRunner, locust_binary, stop_stale

__all__ = [
    "DEFAULT_MIX",
    "LoadRunner",
    "availability",
    "fallback_ratio",
    "latency_percentile",
    "locust_binary",
    "stop_stale",
    "summarize",
]
