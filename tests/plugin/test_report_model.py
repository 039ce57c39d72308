"""Pure checks of the report pieces: baseline direction, phase spans, records round-trip."""

from __future__ import annotations

from chaos_rec.report.baseline import compare, regressed
from chaos_rec.report.model import DrillRecord
from chaos_rec.report.svg import drill_svg, phase_spans
from chaos_rec.report.terminal import failure_text, summary_lines
from chaos_rec.slo.result import SLOResult


def test_regression_direction_follows_the_slo() -> None:
    assert regressed("p99_ms", "ms", 390.0, 300.0, 0.10)
    assert not regressed("p99_ms", "ms", 320.0, 300.0, 0.10)
    assert not regressed("p99_ms", "ms", 100.0, 300.0, 0.10)  # faster is never a regression
    # availability: 0.990 vs 0.999 is ten times the errors
    assert regressed("availability", "", 0.990, 0.999, 0.10)
    assert not regressed("availability", "", 0.9995, 0.999, 0.10)


def test_compare_names_the_figure_and_the_baseline() -> None:
    row = SLOResult("p99_ms", "fault", None, 390.0, 400.0, "ms", True)
    base = DrillRecord(
        "d",
        "n",
        "t",
        "experiment",
        slos=[SLOResult("p99_ms", "fault", None, 300.0, 400.0, "ms", True)],
    )
    now = DrillRecord("d", "n", "t", "experiment", slos=[row], recovery_s=30.0)
    base.recovery_s = 10.0
    assert compare(now, base, 0.1) == [
        "fault.p99_ms 390 ms vs baseline 300 ms (tolerance 10%)",
        "recovery 30.0 s vs baseline 10.0 s (tolerance 10%)",
    ]


def test_record_round_trips_through_dict() -> None:
    rec = DrillRecord(
        "d",
        "experiments/d.json::d",
        "title",
        "experiment",
        result="failed",
        problems=["action x failed: boom"],
        recovery_s=2.5,
        slos=[
            SLOResult(
                "availability",
                "fault",
                (1.0, 6.0),
                0.97,
                0.99,
                "",
                False,
                recorded_line="SLO availability missed",
            )
        ],
    )
    back = DrillRecord.from_dict(rec.to_dict())
    assert back == rec
    assert "SLO availability missed" in failure_text(back)


def test_phase_spans_from_marks_and_from_rows() -> None:
    rows = [{"t": 100 + i, "phase": "steady" if i < 3 else "fault"} for i in range(6)]
    marks = [
        {"t": 100, "phase": "steady"},
        {"t": 102.5, "phase": "fault"},
        {"t": 104, "phase": "recovery"},
    ]
    assert phase_spans(marks, rows) == [
        ("steady", 100, 102.5),
        ("fault", 102.5, 104),
        ("recovery", 104, 106),
    ]
    assert phase_spans([], rows) == [("steady", 100, 103), ("fault", 103, 106)]


def test_svg_draws_budgets_and_windows_and_survives_empty_rows() -> None:
    rows = [
        {"t": 100 + i, "phase": "fault", "requests": 0, "failures": 0, "p99_ms": None}
        for i in range(3)
    ]
    svg = drill_svg(
        rows,
        [{"t": 100, "phase": "fault"}],
        [SLOResult("p99_ms", "fault", None, None, 400, "ms", False)],
    )
    assert svg.count('class="window-fault"') == 3 and svg.count('class="budget"') == 1
    assert "no load timeline" in drill_svg([], [], [])


def test_summary_row_shows_observed_vs_budget_and_recovery() -> None:
    rec = DrillRecord(
        "gpu",
        "n",
        "t",
        "experiment",
        recovery_s=8.2,
        max_recovery_s=20,
        slos=[SLOResult("availability", "fault", None, 0.996, 0.99, "", True)],
    )
    assert summary_lines([rec]) == [
        "PASSED      gpu  score 100  recovery 8.2s (≤20s)  fault.availability 0.996 (≥0.99) ok",
        "resilience score 100.0/100 over 1 of 1 drills (weighted share of SLO checks held; "
        "docs/scoring.md)",
    ]
