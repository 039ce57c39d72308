"""What a drill needs of its target beyond the seams, and the skip reason when it lacks it.

One capability so far: ``prometheus`` — a drill whose SLO spec has server-side (``promql``)
budgets, or that calls the ``prometheus_query`` probe, needs a Prometheus that scrapes the
target. Without one it is skipped with the reason, never run and failed (nor passed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chaos_rec.core.target import Deployment

__all__ = ["needs_prometheus", "prometheus_skip_reason"]


def needs_prometheus(slo: Mapping[str, Any] | None, experiment: Mapping[str, Any]) -> bool:
    """True when the SLO spec has a ``promql`` budget or the experiment calls prometheus_query."""
    phases = (slo or {}).values()
    if any(isinstance(budget, Mapping) and "promql" in budget for budget in phases):
        return True
    return '"prometheus_query"' in json.dumps(experiment, default=str)


def prometheus_skip_reason(
    slo: Mapping[str, Any] | None, experiment: Mapping[str, Any], target: Deployment
) -> str:
    """Why the drill cannot run on ``target`` for want of Prometheus; empty when it can."""
    if not needs_prometheus(slo, experiment) or target.prometheus_url:
        return ""
    notes = [str(n) for n in target.raw.get("notes") or [] if "prometheus" in str(n)]
    why = notes[0] if notes else f"{target.source} names no prometheus_url"
    return f"needs capability prometheus (server-side SLOs): {why}"
