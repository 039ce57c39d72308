"""The resilience score: one number per drill and per run, 0-100 (docs/scoring.md).

A drill's score is the weighted share of its SLO checks that held:
``100 x sum(w_i x passed_i) / sum(w_i)``, with the weight of a check by what its miss means for
users: 3 for errors (``availability``, ``max_timeout_ratio``, server-side ``promql`` budgets), 2
for latency (``*_ms``), 1 for degradation and recovery (``max_fallback_ratio``,
``min_quality_ratio``, ``max_recovery_s``). The load generator's own checks
(``min_send_ratio``, ``max_generator_lag_ms``) weigh 0: when one misses, the run measured the
generator and the drill has no score. A drill that failed for any other reason than an SLO (an
action failed, the steady state was broken before the fault, a rollback failed, interrupted or
aborted by the safeguard) scores 0 — the ``slo-met-so-far`` probe's deviation after the method
only restates the SLO misses and counts as them; a skipped
or dry drill has none. The run's score is the mean of its drills' scores.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from chaos_rec.report.model import DrillRecord
from chaos_rec.slo.result import SLOResult

__all__ = ["GENERATOR", "drill_score", "run_score", "weight"]

GENERATOR: Final = frozenset({"min_send_ratio", "max_generator_lag_ms"})
# a problem that restates an SLO miss (the catalogue's slo-met-so-far probe after the method):
# the verdict already counts the miss, so it does not void the run
RESTATED: Final = "steady state deviated after the method: probe slo-met-so-far"
_ERRORS: Final = frozenset({"availability", "max_timeout_ratio"})


def weight(row: SLOResult) -> int:
    """How much one SLO check counts (0 for the load generator's own checks)."""
    name = row.slo
    if name in GENERATOR:
        return 0
    if name in _ERRORS or name.startswith("promql"):
        return 3
    if name.endswith("_ms"):
        return 2
    return 1


def drill_score(record: DrillRecord) -> float | None:
    """0-100 for one drill; None when skipped, dry, or the generator could not offer the load."""
    if record.result in ("skipped", "dry"):
        return None
    if any(row.slo in GENERATOR and not row.passed for row in record.slos):
        return None
    if any(not p.startswith(RESTATED) for p in record.problems) or record.result == "interrupted":
        return 0.0
    weighted = [(weight(row), row.passed) for row in record.slos if weight(row)]
    total = sum(w for w, _ in weighted)
    if not total:
        return 100.0 if record.result == "passed" else 0.0
    return round(100.0 * sum(w for w, ok in weighted if ok) / total, 1)


def run_score(records: Iterable[DrillRecord]) -> tuple[float | None, int]:
    """The mean of the drills' scores, and how many drills had one."""
    scores = [s for s in (drill_score(r) for r in records) if s is not None]
    if not scores:
        return None, 0
    return round(sum(scores) / len(scores), 1), len(scores)
