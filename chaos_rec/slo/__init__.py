"""SLO engine: a small declarative spec, judged over the per-second load timeline.

Spec (docs/contracts.md, "SLO spec")::

    {"steady":   {"p50_ms": 60, "p99_ms": 250, "availability": 0.995},
     "fault":    {"p99_ms": 400, "availability": 0.99, "max_fallback_ratio": 1.0},
     "recovery": {"p99_ms": 250, "availability": 0.995, "max_fallback_ratio": 0.05},
     "max_recovery_s": 20, "min_quality_ratio": 0.85, "window_s": 5}

Each phase is cut into tumbling windows of ``window_s`` seconds; a budget is
met in a phase when every window meets it, and the worst window is reported.
"""

from __future__ import annotations

from chaos_rec.slo.judge import evaluate
from chaos_rec.slo.result import SLOResult, Verdict
from chaos_rec.slo.spec import PhaseBudget, SLOSpec

__all__ = ["PhaseBudget", "SLOResult", "SLOSpec", "Verdict", "evaluate"]
