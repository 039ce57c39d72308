"""Load runner: Locust as a subprocess against the gateway, per-second timeline.

``chaos_rec.load.locustfile`` is only ever run by Locust in its own process;
nothing here imports it (importing locust monkey-patches with gevent). The
timeline's measurements (rows, percentiles, ratios) are the SLO engine's:
``chaos_rec.slo.metrics``.
"""

from __future__ import annotations

from chaos_rec.load.runner import DEFAULT_MIX, LoadRunner, locust_binary

__all__ = ["DEFAULT_MIX", "LoadRunner", "locust_binary"]
