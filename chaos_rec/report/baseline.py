"""Baseline mode: compare a drill's figures with a previous report, flag regressions."""

from __future__ import annotations

from pathlib import Path

from chaos_rec.report.files import load_report
from chaos_rec.report.model import DrillRecord
from chaos_rec.slo.result import direction_of

# Absolute slack per unit, so that noise on tiny figures is not a regression.
FLOOR = {"ms": 5.0, "s": 1.0}
RATIO_FLOOR = 0.002


def load_baseline(report_dir: Path) -> dict[str, DrillRecord]:
    """The drills of a previous report folder, by name."""
    return {r.name: r for r in load_report(report_dir)}


def _badness(slo: str, value: float) -> float:
    """Map a figure so that larger is always worse (availability 0.999 → 0.001 unavailability)."""
    return 1.0 - value if direction_of(slo) == "min" else value


def regressed(slo: str, unit: str, observed: float, base: float, tolerance: float) -> bool:
    """True when ``observed`` is worse than ``base`` by more than tolerance (relative) + floor."""
    now, then = _badness(slo, observed), _badness(slo, base)
    floor = FLOOR.get(unit, RATIO_FLOOR)
    return now > then * (1.0 + tolerance) + floor


def compare(record: DrillRecord, base: DrillRecord, tolerance: float) -> list[str]:
    """One line per figure that got worse than the baseline beyond the tolerance."""
    lines: list[str] = []
    old = {r.key: r for r in base.slos}
    for row in record.slos:
        prev = old.get(row.key)
        if prev is None or prev.observed is None or row.observed is None:
            continue
        if regressed(row.slo, row.unit, row.observed, prev.observed, tolerance):
            lines.append(
                f"{row.key} {row.observed:g} {row.unit} vs baseline {prev.observed:g} {row.unit} "
                f"(tolerance {tolerance:.0%})".replace("  ", " ")
            )
    if (
        record.recovery_s is not None
        and base.recovery_s is not None
        and regressed("max_recovery_s", "s", record.recovery_s, base.recovery_s, tolerance)
    ):
        lines.append(
            f"recovery {record.recovery_s:.1f} s vs baseline {base.recovery_s:.1f} s (tolerance {tolerance:.0%})"
        )
    return lines
