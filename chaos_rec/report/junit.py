"""SLO figures as JUnit XML properties (``record_property`` pairs)."""

from __future__ import annotations

from chaos_rec.report.model import DrillRecord
from chaos_rec.report.score import drill_score


def properties(record: DrillRecord) -> list[tuple[str, object]]:
    """(name, value) pairs for one drill: result, recovery, each SLO's observed/budget/pass."""
    props: list[tuple[str, object]] = [("drill.result", record.result), ("drill.seed", record.seed)]
    if record.recovery_s is not None:
        props.append(("drill.recovery_s", round(record.recovery_s, 3)))
    score = drill_score(record)
    if score is not None:
        props.append(("drill.resilience_score", score))
    for row in record.slos:
        base = f"slo.{row.key}"
        props.append(
            (f"{base}.observed", "n/a" if row.observed is None else round(row.observed, 6))
        )
        props.append((f"{base}.budget", row.budget))
        props.append((f"{base}.passed", row.passed))
    for n, reg in enumerate(record.regressions):
        props.append((f"regression.{n}", reg))
    return props
