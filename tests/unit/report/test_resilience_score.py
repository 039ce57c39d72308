"""The resilience score: weighted share of SLO checks held, never made up from a void run."""

from __future__ import annotations

from chaos_rec.report.junit import properties
from chaos_rec.report.model import DrillRecord
from chaos_rec.report.score import drill_score, run_score
from chaos_rec.report.terminal import summary_lines
from chaos_rec.slo.result import SLOResult


def _row(slo: str, passed: bool) -> SLOResult:
    return SLOResult(slo, "fault", None, 1.0, 1.0, "", passed)


def _rec(*rows: SLOResult, result: str = "passed", **kw: object) -> DrillRecord:
    return DrillRecord("d", "n", "t", "experiment", result=result, slos=list(rows), **kw)  # type: ignore[arg-type]


def test_weights_follow_what_a_miss_means_for_users() -> None:
    avail_miss = _rec(_row("availability", False), _row("p99_ms", True), result="failed")
    latency_miss = _rec(_row("availability", True), _row("p99_ms", False), result="failed")
    assert drill_score(avail_miss) == 40.0  # 2 of 5
    assert drill_score(latency_miss) == 60.0  # 3 of 5
    assert drill_score(_rec(_row("max_fallback_ratio", False), _row("promql_max:e", True),
                            result="failed")) == 75.0  # fmt: skip
    assert drill_score(_rec(_row("availability", True))) == 100.0


def test_no_score_without_a_measurement_and_zero_for_a_broken_run() -> None:
    assert drill_score(_rec(result="skipped")) is None
    assert drill_score(_rec(result="dry")) is None
    generator = _rec(_row("availability", True), _row("min_send_ratio", False), result="failed")
    assert drill_score(generator) is None
    broken = _rec(_row("availability", True), result="failed", problems=["action x failed"])
    assert drill_score(broken) == 0.0
    restated = _rec(_row("availability", True), _row("p99_ms", False), result="failed",
                    problems=["steady state deviated after the method: probe slo-met-so-far "
                              "returned false, outside tolerance true"])  # fmt: skip
    assert drill_score(restated) == 60.0  # the miss counts once, in the verdict
    total, n = run_score([_rec(_row("availability", True)), broken, _rec(result="skipped")])
    assert (total, n) == (50.0, 2)


def test_the_score_is_in_the_terminal_summary_and_junit() -> None:
    rec = _rec(_row("availability", True), _row("p99_ms", False), result="failed")
    lines = summary_lines([rec])
    assert "score  60" in lines[0]
    assert lines[-1].startswith("resilience score 60.0/100 over 1 of 1 drills")
    assert ("drill.resilience_score", 60.0) in properties(rec)
