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

import itertools
import math
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from chaos_rec.errors import ConfigError
from chaos_rec.load.metrics import (
    availability,
    fallback_ratio,
    latency_percentile,
)
from chaos_rec.runctx import PHASES, phase_at

__all__ = ["PhaseBudget", "SLOResult", "SLOSpec", "Verdict", "evaluate"]

# budget key -> (unit, direction: "max" means observed must be <= budget)
_PHASE_KEYS: Final[dict[str, tuple[str, str]]] = {
    "p50_ms": ("ms", "max"),
    "p95_ms": ("ms", "max"),
    "p99_ms": ("ms", "max"),
    "availability": ("", "min"),
    "max_fallback_ratio": ("", "max"),
    "min_quality_ratio": ("", "min"),
}
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
    availability: float | None = None
    max_fallback_ratio: float | None = None
    min_quality_ratio: float | None = None

    @classmethod
    def parse(cls, phase: str, data: Any) -> PhaseBudget:
        """Validate one phase's budget mapping."""
        if not isinstance(data, Mapping):
            raise _fail(f"{phase} must be a mapping of budgets, got {type(data).__name__}")
        values: dict[str, float] = {}
        for key, raw in data.items():
            if key not in _PHASE_KEYS:
                known = ", ".join(_PHASE_KEYS)
                raise _fail(f"unknown key {phase}.{key} (known: {known})")
            v = _number(f"{phase}.{key}", raw)
            if key.endswith("_ms") and v <= 0:
                raise _fail(f"{phase}.{key} must be > 0 ms, got {raw!r}")
            if key in ("availability", "max_fallback_ratio") and not 0 <= v <= 1:
                raise _fail(f"{phase}.{key} must be within [0, 1], got {raw!r}")
            if key == "min_quality_ratio" and not 0 < v <= 2:
                raise _fail(f"{phase}.{key} must be within (0, 2], got {raw!r}")
            values[key] = v
        order = [(k, values[k]) for k in ("p50_ms", "p95_ms", "p99_ms") if k in values]
        for (ka, va), (kb, vb) in itertools.pairwise(order):
            if va > vb:
                raise _fail(f"{phase}.{ka} ({va:g}) must not exceed {phase}.{kb} ({vb:g})")
        return cls(**values)

    def items(self) -> list[tuple[str, float]]:
        """The set budgets as (key, value) pairs."""
        return [(k, v) for k in _PHASE_KEYS if (v := getattr(self, k)) is not None]

    def to_dict(self) -> dict[str, float]:
        """JSON form."""
        return dict(self.items())


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
        if not any(b.items() for b in phases.values()) and recovery is None and quality is None:
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

    def to_dict(self) -> dict[str, Any]:
        """JSON form (parses back to an equal spec)."""
        out: dict[str, Any] = {p: b.to_dict() for p, b in self.phases.items()}
        out["window_s"] = self.window_s
        if self.max_recovery_s is not None:
            out["max_recovery_s"] = self.max_recovery_s
        if self.min_quality_ratio is not None:
            out["min_quality_ratio"] = self.min_quality_ratio
        return out


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t))


def _fmt(v: float, unit: str) -> str:
    if unit == "ms":
        return f"{v:.1f} ms"
    if unit == "s":
        return f"{v:.1f} s"
    return f"{v:.4g}"


def _fmt_budget(v: float, unit: str) -> str:
    return f"{v:g} {unit}".rstrip()


@dataclass(frozen=True)
class SLOResult:
    """The judgement of one SLO in one phase (worst window)."""

    slo: str
    phase: str
    window: tuple[float, float]
    observed: float | None
    budget: float
    unit: str
    passed: bool
    note: str = ""

    @property
    def direction(self) -> str:
        """``max`` when observed must stay at or below the budget, else ``min``."""
        if self.slo == "max_recovery_s":
            return "max"
        return _PHASE_KEYS[self.slo][1]

    def line(self) -> str:
        """One line naming the SLO, phase, window, observed value and budget."""
        verb = "met" if self.passed else "missed"
        win = f"{_clock(self.window[0])}–{_clock(self.window[1])}"
        head = f"SLO {self.slo} {verb} in phase {self.phase} (window {win})"
        budget = _fmt_budget(self.budget, self.unit)
        if self.observed is None:
            return f"{head}: not measured ({self.note or 'no data'}); budget {budget}"
        cmp = (
            (">" if not self.passed else "<=")
            if self.direction == "max"
            else ("<" if not self.passed else ">=")
        )
        return f"{head}: observed {_fmt(self.observed, self.unit)} {cmp} budget {budget}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "slo": self.slo,
            "phase": self.phase,
            "window": list(self.window),
            "observed": self.observed,
            "budget": self.budget,
            "unit": self.unit,
            "passed": self.passed,
            "note": self.note,
            "line": self.line(),
        }


@dataclass(frozen=True)
class Verdict:
    """Structured result of an SLO evaluation."""

    passed: bool
    results: list[SLOResult]
    recovery_s: float | None

    def misses(self) -> list[SLOResult]:
        """The failed results."""
        return [r for r in self.results if not r.passed]

    def lines(self) -> list[str]:
        """One line per miss (empty when passed)."""
        return [r.line() for r in self.misses()]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what ``slo_verdict.json`` holds)."""
        return {
            "passed": self.passed,
            "recovery_s": self.recovery_s,
            "misses": self.lines(),
            "results": [r.to_dict() for r in self.results],
        }

    def table(self) -> str:
        """A plain-text table of every result."""
        head = f"{'SLO':<20} {'phase':<9} {'observed':>12} {'budget':>10}  ok"
        rows = [head, "-" * len(head)]
        for r in self.results:
            obs = "n/a" if r.observed is None else _fmt(r.observed, r.unit)
            ok = "yes" if r.passed else "NO"
            budget = _fmt_budget(r.budget, r.unit)
            rows.append(f"{r.slo:<20} {r.phase:<9} {obs:>12} {budget:>10}  {ok}")
        return "\n".join(rows)


def _label(
    timeline: Sequence[Mapping[str, Any]], phases: Sequence[Mapping[str, Any]]
) -> list[tuple[str, Mapping[str, Any]]]:
    rows = sorted(timeline, key=lambda r: int(r["t"]))
    if phases:
        return [(phase_at(phases, float(r["t"])), r) for r in rows]
    return [(str(r.get("phase", "steady")), r) for r in rows]


def _stretches(
    labelled: list[tuple[str, Mapping[str, Any]]], phase: str
) -> list[list[Mapping[str, Any]]]:
    out: list[list[Mapping[str, Any]]] = []
    current: list[Mapping[str, Any]] = []
    for p, row in labelled:
        if p == phase:
            current.append(row)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _windows(rows: list[Mapping[str, Any]], window_s: float) -> list[list[Mapping[str, Any]]]:
    if not rows:
        return []
    size = max(1, int(window_s))
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    if len(chunks) > 1 and len(chunks[-1]) < size:
        tail = chunks.pop()
        chunks[-1] = chunks[-1] + tail
    return chunks


def _measure(key: str, rows: Sequence[Mapping[str, Any]]) -> float | None:
    if key.endswith("_ms"):
        return latency_percentile(rows, float(key[1:3]))
    if key == "availability":
        return availability(rows)
    if key == "max_fallback_ratio":
        return fallback_ratio(rows)
    raise AssertionError(key)


def _span(rows: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    return float(rows[0]["t"]), float(rows[-1]["t"]) + 1.0


def _ok(value: float, budget: float, direction: str) -> bool:
    return value <= budget if direction == "max" else value >= budget


def _judge_phase(
    phase: str, budget: PhaseBudget, stretches: list[list[Mapping[str, Any]]], window_s: float
) -> list[SLOResult]:
    results: list[SLOResult] = []
    windows = [w for s in stretches for w in _windows(s, window_s)]
    for key, limit in budget.items():
        if key == "min_quality_ratio":
            continue  # judged from quality measurements
        unit, direction = _PHASE_KEYS[key]
        worst: tuple[float, tuple[float, float]] | None = None
        for w in windows:
            value = _measure(key, w)
            if value is None:
                continue
            if worst is None or not _ok(value, worst[0], direction):
                worst = (value, _span(w))
        if worst is None:
            span = _span(windows[0]) if windows else (0.0, 0.0)
            note = "no requests completed in this phase"
            results.append(
                SLOResult(key, phase, span, None, limit, unit, key == "max_fallback_ratio", note)
            )
            continue
        value, span = worst
        results.append(
            SLOResult(key, phase, span, value, limit, unit, _ok(value, limit, direction))
        )
    return results


def _recovery(
    labelled: list[tuple[str, Mapping[str, Any]]],
    phases: Sequence[Mapping[str, Any]],
    budget: PhaseBudget | None,
    window_s: float,
) -> tuple[float | None, float | None, tuple[float, float]]:
    """(recovery mark time, seconds to the first good window, that window)."""
    marks = [float(m["t"]) for m in phases if m.get("phase") == "recovery"]
    if not marks:
        return None, None, (0.0, 0.0)
    start = marks[-1]
    rows = [r for p, r in labelled if float(r["t"]) >= math.ceil(start)]
    size = max(1, int(window_s))
    checks = [(k, v) for k, v in (budget.items() if budget else []) if k != "min_quality_ratio"]
    if not checks:
        checks = [("availability", 0.99)]
    for i in range(0, max(0, len(rows) - size + 1)):
        win = rows[i : i + size]
        good = True
        for key, limit in checks:
            value = _measure(key, win)
            if value is None or not _ok(value, limit, _PHASE_KEYS[key][1]):
                good = False
                break
        if good:
            return start, max(0.0, float(win[0]["t"]) - start), _span(win)
    end = float(rows[-1]["t"]) + 1.0 if rows else start
    return start, None, (start, max(end, start))


def evaluate(
    spec: SLOSpec,
    timeline: Sequence[Mapping[str, Any]],
    phases: Sequence[Mapping[str, Any]],
    quality: Mapping[str, Any] | None = None,
) -> Verdict:
    """Judge a load timeline (and quality measurements) against an SLO spec."""
    labelled = _label(timeline, phases)
    results: list[SLOResult] = []
    for phase, budget in spec.phases.items():
        stretches = _stretches(labelled, phase)
        if not stretches:
            continue  # the phase never happened in this run
        results.extend(_judge_phase(phase, budget, stretches, spec.window_s))
    rec_start, recovery_s, rec_win = _recovery(
        labelled, phases, spec.phases.get("recovery"), spec.window_s
    )
    if spec.max_recovery_s is not None and rec_start is not None:
        ok = recovery_s is not None and recovery_s <= spec.max_recovery_s
        note = ""
        if recovery_s is None:
            measured = rec_win[1] - rec_win[0]
            note = (
                f"no good {spec.window_s:g}s window in the {measured:.0f}s measured after the "
                "fault was removed"
            )
        results.append(
            SLOResult(
                "max_recovery_s",
                "recovery",
                rec_win,
                recovery_s,
                spec.max_recovery_s,
                "s",
                ok,
                note,
            )
        )
    results.extend(_judge_quality(spec, quality))
    return Verdict(all(r.passed for r in results), results, recovery_s)


def _judge_quality(spec: SLOSpec, quality: Mapping[str, Any] | None) -> list[SLOResult]:
    wanted: dict[str, float] = {}
    if spec.min_quality_ratio is not None:
        wanted["*"] = spec.min_quality_ratio
    for phase, budget in spec.phases.items():
        if budget.min_quality_ratio is not None:
            wanted[phase] = budget.min_quality_ratio
    if not wanted:
        return []
    measurements = list((quality or {}).get("measurements") or [])
    out: list[SLOResult] = []
    for phase, limit in wanted.items():
        rows = [m for m in measurements if phase == "*" or m.get("phase") == phase]
        label = "any" if phase == "*" else phase
        if not rows:
            note = "no quality measurement; call the probe quality_ratio"
            out.append(
                SLOResult("min_quality_ratio", label, (0.0, 0.0), None, limit, "", False, note)
            )
            continue
        worst = min(rows, key=lambda m: float(m["ratio"]))
        t = float(worst.get("t", 0.0))
        span = (t - float(worst.get("duration_s", 0.0)), t)
        ratio = float(worst["ratio"])
        out.append(
            SLOResult(
                "min_quality_ratio",
                str(worst.get("phase", label)),
                span,
                ratio,
                limit,
                "",
                ratio >= limit,
            )
        )
    return out
