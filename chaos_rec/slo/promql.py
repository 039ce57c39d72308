"""Server-side budgets of an SLO spec: a PromQL query per phase with a ceiling and/or a floor.

In a phase of the spec::

    "fault": {"promql": {"name": "fallback_share",
                         "query": "sum(increase(cr_fallback_total{tier!=\\"none\\"}[$window]))"
                                  " / sum(increase(cr_fallback_total[$window]))",
                         "max": 0.5}}

(``promql`` may also be a list of such mappings). ``metrics`` (optional) names the metric family
the query is written on (``"chaos-rec"``: the reference stack's ``cr_*``; ``"triton"``:
``nv_inference_*``): a target whose Prometheus does not hold that family lacks the capability
``metrics:<family>`` (``chaos_rec.core.capabilities``). ``$window`` stands for the phase's length:
the query is evaluated once, at the phase's end, over exactly the phase (see
``docs/server-slos.md`` for why an instant query and not a range query).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from chaos_rec.errors import ConfigError

__all__ = ["MIN_WINDOW_S", "PROMQL_UNITS", "PromQLBudget", "promql_slo", "render_query"]

PROMQL_UNITS: Final = ("", "s", "ms")
MIN_WINDOW_S: Final = 2  # rate()/increase() need two scrapes (1 s apart) inside the window
_NAME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
_KEYS: Final = frozenset({"name", "query", "max", "min", "unit", "metrics"})
_FAMILY_RE: Final = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _fail(msg: str) -> ConfigError:
    return ConfigError(f"invalid SLO spec: {msg}")


def promql_slo(name: str, direction: str) -> str:
    """The SLO name of a server-side budget in results: ``promql_max:NAME`` / ``promql_min:NAME``."""
    return f"promql_{direction}:{name}"


def render_query(query: str, window_s: float) -> str:
    """``query`` with ``$window`` replaced by a PromQL duration of ``window_s`` (at least 2 s)."""
    return query.replace("$window", f"{max(MIN_WINDOW_S, math.ceil(window_s))}s")


def _bound(where: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise _fail(f"{where} must be a finite number, got {raw!r}")
    return float(raw)


@dataclass(frozen=True)
class PromQLBudget:
    """One server-side budget: a named PromQL query whose value must stay within max/min."""

    name: str
    query: str
    max: float | None = None
    min: float | None = None
    unit: str = ""
    metrics: str | None = None  # the metric family the query is written on

    @classmethod
    def parse_many(cls, phase: str, data: Any) -> tuple[PromQLBudget, ...]:
        """``phase.promql``: one mapping or a list of them; names unique within the phase."""
        entries = data if isinstance(data, list) else [data]
        if not entries:
            raise _fail(f"{phase}.promql is an empty list")
        out = tuple(cls.parse(f"{phase}.promql[{i}]", e) for i, e in enumerate(entries))
        names = [b.name for b in out]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise _fail(f"{phase}.promql names {dupes[0]!r} twice")
        return out

    @classmethod
    def parse(cls, where: str, data: Any) -> PromQLBudget:
        """Validate one ``{"name", "query", "max"|"min", "unit"?}`` mapping."""
        if not isinstance(data, Mapping):
            raise _fail(f"{where} must be a mapping with name, query and max or min")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise _fail(f"unknown key {where}.{unknown[0]} (known: {', '.join(sorted(_KEYS))})")
        name, query = data.get("name"), data.get("query")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise _fail(f"{where}.name must be a short name (letters, digits, _ . -), got {name!r}")
        if not isinstance(query, str) or not query.strip():
            raise _fail(f"{where}.query must be a non-empty PromQL string")
        if "max" not in data and "min" not in data:
            raise _fail(f"{where} ({name}) needs a budget: max, min or both")
        high = _bound(f"{where}.max", data["max"]) if "max" in data else None
        low = _bound(f"{where}.min", data["min"]) if "min" in data else None
        if high is not None and low is not None and low > high:
            raise _fail(f"{where}.min ({low:g}) must not exceed {where}.max ({high:g})")
        unit = data.get("unit", "")
        if unit not in PROMQL_UNITS:
            raise _fail(f"{where}.unit must be one of '', 's', 'ms', got {unit!r}")
        family = data.get("metrics")
        if family is not None and (not isinstance(family, str) or not _FAMILY_RE.match(family)):
            raise _fail(
                f"{where}.metrics must be a metric family name like 'triton', got {family!r}"
            )
        return cls(name, query.strip(), high, low, unit, family)

    def bounds(self) -> list[tuple[str, float]]:
        """``(direction, limit)`` for each bound that is set, the ceiling first."""
        out = [("max", self.max)] if self.max is not None else []
        return out + ([("min", self.min)] if self.min is not None else [])

    def to_dict(self) -> dict[str, Any]:
        """JSON form (parses back to an equal budget)."""
        out: dict[str, Any] = {"name": self.name, "query": self.query}
        out.update(self.bounds())
        if self.unit:
            out["unit"] = self.unit
        if self.metrics:
            out["metrics"] = self.metrics
        return out
