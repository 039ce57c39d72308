"""Figures derived from a load timeline row, shared by the CSV export and the plots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def derived(row: Mapping[str, Any]) -> dict[str, Any]:
    """A timeline row plus availability and fallback ratio."""
    requests = int(row.get("requests", 0) or 0)
    failures = int(row.get("failures", 0) or 0)
    tiers = row.get("tiers") or {}
    served = sum(int(v) for v in tiers.values()) if isinstance(tiers, Mapping) else 0
    out = dict(row)
    out["availability"] = (requests - failures) / requests if requests else None
    out["fallback_ratio"] = (served - int(tiers.get("none", 0))) / served if served else None
    return out
