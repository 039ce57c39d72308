"""Terminal rendering: the per-drill summary rows, the verdict table and a failed drill's text."""

from __future__ import annotations

from chaos_rec.report.model import DrillRecord
from chaos_rec.report.score import drill_score, run_score
from chaos_rec.slo.result import SLOResult


def fmt_number(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value:.0f}ms"
    if unit == "s":
        return f"{value:.1f}s"
    if unit in ("ratio", "") and 0 <= value <= 1:
        return f"{value:.4g}"
    return f"{value:g}{unit}"


def comparator(row: SLOResult) -> str:
    return "≥" if row.direction == "min" else "≤"


def slo_cell(row: SLOResult) -> str:
    """``fault.p99_ms 312ms/400ms ✓`` style cell."""
    mark = "ok" if row.passed else "MISS"
    return f"{row.phase}.{row.slo} {fmt_number(row.observed, row.unit)} ({comparator(row)}{fmt_number(row.budget, row.unit)}) {mark}"


def verdict_table(record: DrillRecord) -> list[str]:
    """The SLO verdict as an aligned text table."""
    header = ("SLO", "phase", "observed", "budget", "result")
    rows = [
        (
            r.slo,
            r.phase,
            fmt_number(r.observed, r.unit),
            f"{comparator(r)} " + fmt_number(r.budget, r.unit),
            "ok" if r.passed else "MISSED",
        )
        for r in record.slos
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    if record.recovery_s is not None or record.max_recovery_s is not None:
        budget = "" if record.max_recovery_s is None else f" (budget {record.max_recovery_s:g}s)"
        lines.append(f"recovery: {fmt_number(record.recovery_s, 's')}{budget}")
    return lines


def failure_text(record: DrillRecord) -> str:
    """The verdict table and problems: what a failed drill says instead of a traceback."""
    lines = [f"drill {record.name} {record.result.upper()}: {record.title}"]
    lines += [f"  - {p}" for p in record.problems]
    lines += [f"  - SLO {r.line().removeprefix('SLO ')}" for r in record.slos if not r.passed]
    lines += [f"  - regression: {r}" for r in record.regressions]
    if record.slos:
        lines += ["", *verdict_table(record)]
    if record.run_dir:
        lines.append(f"run dir: {record.run_dir}")
    return "\n".join(lines)


def summary_lines(records: list[DrillRecord]) -> list[str]:
    """One row per drill: result, score, SLOs observed vs budget, recovery time; then the run's
    resilience score."""
    lines: list[str] = []
    width = max((len(r.name) for r in records), default=0)
    for rec in records:
        result = rec.result.upper()
        recovery = (
            f"recovery {fmt_number(rec.recovery_s, 's')}"
            if rec.recovery_s is not None
            else "recovery n/a"
        )
        if rec.max_recovery_s is not None:
            recovery += f" (≤{rec.max_recovery_s:g}s)"
        cells = "; ".join(slo_cell(r) for r in rec.slos) or "no SLO figures"
        score = drill_score(rec)
        scored = "score  -" if score is None else f"score {score:3.0f}"
        lines.append(f"{result:<11} {rec.name:<{width}}  {scored}  {recovery}  {cells}")
        if rec.result == "dry":
            lines += [f"    {p}" for p in rec.plan]
        for problem in rec.problems:
            lines.append(f"    - {problem}")
        for note in rec.notes:
            lines.append(f"    · {note}")
        for reg in rec.regressions:
            lines.append(f"    - regression: {reg}")
    total, scored_n = run_score(records)
    if total is not None:
        lines.append(
            f"resilience score {total:.1f}/100 over {scored_n} of {len(records)} drills "
            "(weighted share of SLO checks held; docs/scoring.md)"
        )
    return lines
