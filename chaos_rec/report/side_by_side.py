"""Drill by drill, one column per report folder: the table the README shows for two deployments.

A cell is the drill's result, then why: the first missed SLO (``availability`` in fault 0.06 <
0.95), the first problem line (an aborted run, a failed action), or the capability a skipped
drill lacked; a passed drill shows its score.
"""

from __future__ import annotations

from collections.abc import Sequence

from chaos_rec.report.model import DrillRecord
from chaos_rec.report.score import drill_score
from chaos_rec.report.terminal import comparator, fmt_number

__all__ = ["cell", "side_by_side"]


def cell(rec: DrillRecord | None) -> str:
    """``passed (score 100)``, ``FAILED: p99_ms in fault 2185ms > 400ms``, ``skipped: …``."""
    if rec is None:
        return "not run"
    if rec.result == "skipped":
        return "skipped: " + (rec.problems[0] if rec.problems else "no reason recorded")
    score = drill_score(rec)
    scored = "" if score is None else f" (score {score:.0f})"
    if rec.result == "passed":
        return f"passed{scored}"
    missed = [r for r in rec.slos if not r.passed]
    if missed:
        r = missed[0]
        more = f"; +{len(missed) - 1} more" if len(missed) > 1 else ""
        why = f"{r.slo} in {r.phase} {fmt_number(r.observed, r.unit)}, budget {comparator(r)} {fmt_number(r.budget, r.unit)}{more}"
    else:
        why = rec.problems[0] if rec.problems else "no reason recorded"
    return f"**{rec.result.upper()}**{scored}: {why}"


def side_by_side(columns: Sequence[tuple[str, Sequence[DrillRecord]]]) -> list[str]:
    """A markdown table: one row per drill (in first-seen order), one column per report."""
    names: dict[str, None] = {}
    for _, records in columns:
        for rec in records:
            names.setdefault(rec.name, None)
    by_col = [{r.name: r for r in records} for _, records in columns]
    lines = ["| drill | " + " | ".join(title for title, _ in columns) + " |",
             "| --- |" + " --- |" * len(columns)]  # fmt: skip
    for name in names:
        cells = [cell(col.get(name)).replace("|", "\\|") for col in by_col]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return lines
