"""One SLO result type: its two JSON forms, old report rows read back, its direction and line."""

from __future__ import annotations

from typing import Any

import pytest

from chaos_rec.report.baseline import regressed
from chaos_rec.report.model import DrillRecord
from chaos_rec.report.terminal import failure_text, slo_cell, verdict_table
from chaos_rec.slo.result import SLOResult, direction_of

T0 = 1_800_000_000  # 2027-01-15T08:00:00Z
REPORT_KEYS = ["slo", "phase", "observed", "budget", "unit", "passed", "window", "line", "key"]
VERDICT_KEYS = ["slo", "phase", "window", "observed", "budget", "unit", "passed", "note", "line"]
MISS = SLOResult("p99_ms", "fault", (T0, T0 + 5), 512.3, 400.0, "ms", False)
NOT_MEASURED = SLOResult(
    "max_recovery_s", "recovery", (T0, T0 + 9), None, 20.0, "s", False, "no good 5s window"
)


def test_engine_line_names_window_direction_and_budget() -> None:
    assert MISS.line() == (
        "SLO p99_ms missed in phase fault (window 08:00:00–08:00:05): "
        "observed 512.3 ms > budget 400 ms"
    )
    floor = SLOResult("availability", "fault", (T0, T0 + 5), 0.995, 0.99, "", True)
    assert floor.line().endswith("observed 0.995 >= budget 0.99")
    assert NOT_MEASURED.line() == (
        "SLO max_recovery_s missed in phase recovery (window 08:00:00–08:00:09): "
        "not measured (no good 5s window); budget 20 s"
    )


@pytest.mark.parametrize(
    ("slo", "direction"),
    [
        ("availability", "min"),
        ("min_quality_ratio", "min"),
        ("min_send_ratio", "min"),
        ("p99_ms", "max"),
        ("accepted_p95_ms", "max"),
        ("max_fallback_ratio", "max"),
        ("max_generator_lag_ms", "max"),
        ("max_recovery_s", "max"),
        ("no_such_slo", "max"),  # a name read back from an old report is a ceiling
    ],
)
def test_direction_comes_from_the_spec_table(slo: str, direction: str) -> None:
    row = SLOResult(slo, "fault", None, 0.5, 0.9, "", False)
    assert direction_of(slo) == direction == row.direction
    sign = "≥" if direction == "min" else "≤"
    assert f"({sign}0.9)" in slo_cell(row)
    assert f"{sign} 0.9" in verdict_table(DrillRecord("d", "n", "t", "python", slos=[row]))[2]
    worse = 0.1 if direction == "min" else 0.95
    assert regressed(slo, "", worse, 0.5, 0.1)


def test_key_is_phase_dot_slo() -> None:
    assert MISS.key == "fault.p99_ms"


def test_verdict_form_round_trips() -> None:
    for result in (MISS, NOT_MEASURED):
        data = result.to_dict()
        assert list(data) == VERDICT_KEYS
        back = SLOResult.from_dict(data)
        assert back == result
        assert back.note == result.note and back.window == result.window
        assert back.line() == result.line() == data["line"]
        assert back.to_dict() == data


def test_report_form_keeps_todays_keys_and_round_trips() -> None:
    data = NOT_MEASURED.to_report_dict()
    assert list(data) == REPORT_KEYS
    assert data["window"] == [T0, T0 + 9] and data["key"] == "recovery.max_recovery_s"
    back = SLOResult.from_dict(data)
    assert back == NOT_MEASURED
    assert back.line() == NOT_MEASURED.line()  # the note lives on inside the line
    assert back.to_report_dict() == data


def test_old_record_row_reads_back_as_it_was_written() -> None:
    old: dict[str, Any] = {  # asdict(SLORow) | {"key": ...}, as in existing record.json files
        "slo": "availability",
        "phase": "fault",
        "observed": 0.97,
        "budget": 0.99,
        "unit": "",
        "passed": False,
        "window": [T0 + 4.0, T0 + 8.0],
        "line": "SLO availability missed in phase fault (window 08:00:04–08:00:08): ...",
        "key": "fault.availability",
    }
    row = SLOResult.from_dict(old)
    assert (row.slo, row.phase, row.window, row.observed, row.budget, row.unit) == (
        "availability",
        "fault",
        (T0 + 4.0, T0 + 8.0),
        0.97,
        0.99,
        "",
    )
    assert row.passed is False and row.key == old["key"] and row.direction == "min"
    assert row.line() == old["line"]
    assert row.to_report_dict() == old


def test_rows_without_window_or_line_say_their_figures() -> None:
    no_window = SLOResult.from_dict(
        {
            "slo": "min_quality_ratio",
            "phase": "fault",
            "observed": None,
            "budget": 0.85,
            "unit": "",
            "passed": False,
            "window": None,
            "line": "",
        }
    )
    assert no_window.window is None and no_window.to_report_dict()["window"] is None
    assert no_window.line() == (
        "SLO min_quality_ratio missed in phase fault: observed n/a (budget >= 0.85 )"
    )
    # a verdict written by another tool, with a window but no line (tests/plugin's `figures`)
    lineless = SLOResult.from_dict(
        {"slo": "p99_ms", "phase": "fault", "window": [T0, T0 + 4], "observed": 512.3,
         "budget": 400.0, "unit": "ms", "passed": False}
    )  # fmt: skip
    assert lineless.line() == (
        "SLO p99_ms missed in phase fault: observed 512.3 ms (budget <= 400 ms)"
    )
    built = SLOResult("p99_ms", "fault", None, 512.3, 400.0, "ms", False)
    assert built.line() == lineless.line()


def test_missing_keys_get_defaults() -> None:
    row = SLOResult.from_dict({})
    assert (row.slo, row.phase, row.window, row.observed, row.budget) == ("?", "-", None, None, 0.0)
    assert (row.unit, row.passed, row.note, row.direction) == ("", False, "", "max")


def test_record_round_trips_with_engine_results_and_keeps_its_keys() -> None:
    rec = DrillRecord(
        "d", "n", "t", "experiment", result="failed", slos=[MISS, NOT_MEASURED], recovery_s=None
    )
    data = rec.to_dict()
    assert list(data) == [
        "name", "nodeid", "title", "kind", "result", "problems", "slos", "recovery_s",
        "max_recovery_s", "regressions", "duration_s", "seed", "run_dir", "plan", "notes",
    ]  # fmt: skip
    assert [list(s) for s in data["slos"]] == [REPORT_KEYS, REPORT_KEYS]
    back = DrillRecord.from_dict(data)
    assert back == rec and back.to_dict() == data
    text = failure_text(back)
    assert f"  - {MISS.line()}" in text
    assert "not measured (no good 5s window)" in text
