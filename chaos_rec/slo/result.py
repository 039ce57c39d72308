"""SLO results: one judged SLO per phase, and the verdict of a whole run."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chaos_rec.slo.spec import GENERATOR_KEYS, PHASE_KEYS

__all__ = ["SLOResult", "Verdict", "direction_of", "margin"]


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


def direction_of(slo: str) -> str:
    """``max`` when an SLO's observed value must stay at or below its budget, else ``min``.

    ``max_recovery_s``, ``promql_max:NAME``, and a name the spec does not know (read back from an old report), are
    ceilings.
    """
    if slo.startswith("promql_min:"):  # a server-side floor (chaos_rec.slo.promql)
        return "min"
    return PHASE_KEYS[slo][1] if slo in PHASE_KEYS else "max"


def margin(slo: str, observed: float | None, budget: float) -> float | None:
    """Headroom left, as a share: 1 = as far from the budget as can be, 0 = at it, < 0 = missed.

    A ceiling (latency, ratios of bad requests, recovery time): (budget - observed) / budget.
    A floor of 0.5 or more on a share that is at best 1 (availability, send ratio, quality): an
    error budget, so the part of (1 - budget) not used: availability 0.99 against 0.97 keeps
    0.67 of its budget of failures. A lower floor (the spike's goodput floor of 0.1): how far
    the observed value may fall, as a share of itself, before it fails: (observed - budget) /
    observed. None where there is no limit to keep (a share's ceiling of 1) or no value.
    """
    if observed is None:
        return None
    if direction_of(slo) == "max":
        if slo.endswith("_ratio") and budget >= 1:
            return None  # a share can never exceed 1: such a ceiling sets no limit
        return (budget - observed) / budget if budget > 0 else None
    if budget >= 0.5:
        return (observed - budget) / (1.0 - budget) if budget < 1 else None
    return (observed - budget) / observed if observed > 0 else -1.0


@dataclass(frozen=True)
class SLOResult:
    """The judgement of one SLO in one phase (worst window); the one result every report renders.

    ``window`` is None only for a result read back from a report that did not record it.
    ``note`` says why a figure was not measured; ``recorded_line`` is the line a result read
    back from a file was recorded with (see :meth:`from_dict`). Both are text about the figures,
    not part of the result's value: a report keeps the note only inside its line.
    """

    slo: str
    phase: str
    window: tuple[float, float] | None
    observed: float | None
    budget: float
    unit: str
    passed: bool
    note: str = field(default="", compare=False)
    recorded_line: str = field(default="", compare=False, repr=False)

    @property
    def direction(self) -> str:
        """``max`` when observed must stay at or below the budget, else ``min``."""
        return direction_of(self.slo)

    @property
    def key(self) -> str:
        """Stable key for baselines and JUnit properties: ``phase.slo``."""
        return f"{self.phase}.{self.slo}"

    def line(self) -> str:
        """One line naming the SLO, phase, window, observed value and budget.

        A result read back from a file says the line it was recorded with; one without a
        window, only its figures and budget.
        """
        if self.recorded_line:
            return self.recorded_line
        if self.window is None:
            return self._figures_line()
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
        line = f"{head}: observed {_fmt(self.observed, self.unit)} {cmp} budget {budget}"
        if self.slo in GENERATOR_KEYS and not self.passed:
            line += (
                " — the load generator could not offer the load, so this window measured the"
                " generator, not the deployment (give it CPU, or lower the load)"
            )
        return line

    def _figures_line(self) -> str:
        """The short line of a result known by its figures only (no window, no recorded line)."""
        obs = "n/a" if self.observed is None else f"{self.observed:g}"
        cmp = ">=" if self.direction == "min" else "<="
        state = "met" if self.passed else "missed"
        return (
            f"SLO {self.slo} {state} in phase {self.phase}: observed {obs} {self.unit} "
            f"(budget {cmp} {self.budget:g} {self.unit})"
        ).replace("  ", " ")

    def to_dict(self) -> dict[str, Any]:
        """JSON form in a verdict (``slo_verdict.json``, the journal's ``chaos_rec``)."""
        return {
            "slo": self.slo,
            "phase": self.phase,
            "window": None if self.window is None else list(self.window),
            "observed": self.observed,
            "budget": self.budget,
            "unit": self.unit,
            "passed": self.passed,
            "note": self.note,
            "line": self.line(),
        }

    def to_report_dict(self) -> dict[str, Any]:
        """JSON form in a report (``summary.json``, ``record.json``): no note, plus the key."""
        return {
            "slo": self.slo,
            "phase": self.phase,
            "observed": self.observed,
            "budget": self.budget,
            "unit": self.unit,
            "passed": self.passed,
            "window": None if self.window is None else list(self.window),
            "line": self.line(),
            "key": self.key,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SLOResult:
        """Read either JSON form back, also from older files (missing keys get defaults).

        The line is kept as recorded, so that a result says what it said when it was judged;
        one recorded without a line (a verdict written by another tool) says the short form.
        """
        window = data.get("window")
        observed = data.get("observed")
        result = cls(
            slo=str(data.get("slo", "?")),
            phase=str(data.get("phase", "-")),
            window=(float(window[0]), float(window[1])) if window else None,
            observed=None if observed is None else float(observed),
            budget=float(data.get("budget", 0.0)),
            unit=str(data.get("unit", "") or ""),
            passed=bool(data.get("passed", False)),
            note=str(data.get("note", "") or ""),
        )
        line = str(data.get("line", "") or "")
        return replace(result, recorded_line=line or result._figures_line())


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
