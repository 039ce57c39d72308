"""SLO spec: per-phase budgets, recovery time, quality and window; validated up front."""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from chaos_rec.errors import ConfigError
from chaos_rec.slo.phases import PHASES
from chaos_rec.slo.promql import PromQLBudget

__all__ = ["GENERATOR_KEYS", "PHASE_KEYS", "PhaseBudget", "SLOSpec"]

PHASE_KEYS: Final[dict[str, tuple[str, str]]] = {
    "p50_ms": ("ms", "max"),
    "p95_ms": ("ms", "max"),
    "p99_ms": ("ms", "max"),
    "accepted_p50_ms": ("ms", "max"),  # of answered requests only (sheds and errors left out)
    "accepted_p95_ms": ("ms", "max"),
    "accepted_p99_ms": ("ms", "max"),
    "availability": ("", "min"),
    "max_fallback_ratio": ("", "max"),
    "max_timeout_ratio": ("", "max"),  # share of 504s and transport timeouts
    "min_quality_ratio": ("", "min"),
    # the load generator's own health: below/above these, the window measured the generator
    "min_send_ratio": ("", "min"),  # (sent + held up by the deployment) / its schedule
    "max_generator_lag_ms": ("ms", "max"),  # median of its event loop's worst delay per second
}
GENERATOR_KEYS: Final = frozenset({"min_send_ratio", "max_generator_lag_ms"})
_TOP_KEYS: Final = frozenset({*PHASES, "max_recovery_s", "min_quality_ratio", "window_s"})


def _fail(msg: str) -> ConfigError:
    return ConfigError(f"invalid SLO spec: {msg}")


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{where} must be a number, got {value!r}")
    f = float(value)
    if not math.isfinite(f):
        raise _fail(f"{where} must be finite, got {value!r}")
    return f


@dataclass(frozen=True)
class PhaseBudget:
    """Budgets of one phase; None means not judged."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    accepted_p50_ms: float | None = None
    accepted_p95_ms: float | None = None
    accepted_p99_ms: float | None = None
    availability: float | None = None
    max_fallback_ratio: float | None = None
    max_timeout_ratio: float | None = None
    min_quality_ratio: float | None = None
    min_send_ratio: float | None = None
    max_generator_lag_ms: float | None = None
    promql: tuple[PromQLBudget, ...] = ()  # server-side budgets (chaos_rec.slo.promql)

    @classmethod
    def parse(cls, phase: str, data: Any) -> PhaseBudget:
        """Validate one phase's budget mapping."""
        if not isinstance(data, Mapping):
            raise _fail(f"{phase} must be a mapping of budgets, got {type(data).__name__}")
        values: dict[str, float] = {}
        for key, raw in data.items():
            if key == "promql":
                continue
            if key not in PHASE_KEYS:
                known = ", ".join([*PHASE_KEYS, "promql"])
                raise _fail(f"unknown key {phase}.{key} (known: {known})")
            v = _number(f"{phase}.{key}", raw)
            if key.endswith("_ms") and v <= 0:
                raise _fail(f"{phase}.{key} must be > 0 ms, got {raw!r}")
            if (
                key in ("availability", "max_fallback_ratio", "max_timeout_ratio", "min_send_ratio")
                and not 0 <= v <= 1
            ):
                raise _fail(f"{phase}.{key} must be within [0, 1], got {raw!r}")
            if key == "min_quality_ratio" and not 0 < v <= 2:
                raise _fail(f"{phase}.{key} must be within (0, 2], got {raw!r}")
            values[key] = v
        for prefix in ("", "accepted_"):
            keys = (f"{prefix}p50_ms", f"{prefix}p95_ms", f"{prefix}p99_ms")
            order = [(k, values[k]) for k in keys if k in values]
            for (ka, va), (kb, vb) in itertools.pairwise(order):
                if va > vb:
                    raise _fail(f"{phase}.{ka} ({va:g}) must not exceed {phase}.{kb} ({vb:g})")
        promql = PromQLBudget.parse_many(phase, data["promql"]) if "promql" in data else ()
        return cls(**values, promql=promql)

    def items(self) -> list[tuple[str, float]]:
        """The set budgets as (key, value) pairs."""
        return [(k, v) for k in PHASE_KEYS if (v := getattr(self, k)) is not None]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = dict(self.items())
        if self.promql:
            out["promql"] = [b.to_dict() for b in self.promql]
        return out


@dataclass(frozen=True)
class SLOSpec:
    """A validated SLO spec: per-phase budgets, recovery time, quality, window."""

    phases: Mapping[str, PhaseBudget] = field(default_factory=dict)
    max_recovery_s: float | None = None
    min_quality_ratio: float | None = None
    window_s: float = 5.0

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> SLOSpec:
        """Validate a spec mapping; raises ConfigError naming the bad key."""
        if not isinstance(data, Mapping):
            raise _fail(f"expected a mapping, got {type(data).__name__}")
        if not data:
            raise _fail("it is empty; set at least one budget")
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise _fail(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})")
        phases = {p: PhaseBudget.parse(p, data[p]) for p in PHASES if p in data}
        window = _number("window_s", data.get("window_s", 5))
        if not 1 <= window <= 3600:
            raise _fail(f"window_s must be within [1, 3600] seconds, got {data['window_s']!r}")
        recovery = None
        if "max_recovery_s" in data:
            recovery = _number("max_recovery_s", data["max_recovery_s"])
            if recovery <= 0:
                raise _fail(f"max_recovery_s must be > 0, got {data['max_recovery_s']!r}")
        quality = None
        if "min_quality_ratio" in data:
            quality = _number("min_quality_ratio", data["min_quality_ratio"])
            if not 0 < quality <= 2:
                raise _fail(f"min_quality_ratio must be within (0, 2], got {quality:g}")
        spec = cls(phases, recovery, quality, window)
        budgets = any(b.items() or b.promql for b in phases.values())
        if not budgets and recovery is None and quality is None:
            raise _fail("no budget is set in any phase")
        return spec

    @classmethod
    def from_experiment(cls, experiment: Mapping[str, Any]) -> SLOSpec | None:
        """The spec in ``extensions[name=chaos_rec].slo``, or None when there is none."""
        for ext in experiment.get("extensions") or []:
            if isinstance(ext, Mapping) and ext.get("name") == "chaos_rec" and "slo" in ext:
                return cls.parse(ext["slo"])
        return None

    @classmethod
    def from_pyproject(cls, path: Path) -> SLOSpec | None:
        """The spec in ``[tool.chaos_rec.slo]`` of a pyproject.toml, or None."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        slo = data.get("tool", {}).get("chaos_rec", {}).get("slo")
        return None if slo is None else cls.parse(slo)

    @property
    def promql(self) -> list[tuple[str, PromQLBudget]]:
        """Every server-side budget as ``(phase, budget)``."""
        return [(p, b) for p, budget in self.phases.items() for b in budget.promql]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (parses back to an equal spec)."""
        out: dict[str, Any] = {p: b.to_dict() for p, b in self.phases.items()}
        out["window_s"] = self.window_s
        if self.max_recovery_s is not None:
            out["max_recovery_s"] = self.max_recovery_s
        if self.min_quality_ratio is not None:
            out["min_quality_ratio"] = self.min_quality_ratio
        return out
