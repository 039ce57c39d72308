"""The two-deployment table: result and the reason, per drill and report."""

from __future__ import annotations

from chaos_rec.report.model import DrillRecord
from chaos_rec.report.side_by_side import cell, side_by_side
from chaos_rec.slo.result import SLOResult


def _rec(
    name: str, result: str, *rows: SLOResult, problems: list[str] | None = None
) -> DrillRecord:
    return DrillRecord(name, name, name, "experiment", result=result, slos=list(rows),  # type: ignore[arg-type]
                       problems=problems or [])  # fmt: skip


def test_each_cell_says_why() -> None:
    ok = SLOResult("availability", "fault", None, 1.0, 0.95, "", True)
    slow = SLOResult("p99_ms", "fault", None, 2185.0, 400.0, "ms", False)
    assert cell(_rec("a", "passed", ok)) == "passed (score 100)"
    assert cell(_rec("a", "failed", ok, slow)) == (
        "**FAILED** (score 60): p99_ms in fault 2185ms, budget ≤ 400ms"
    )
    assert cell(_rec("a", "skipped", problems=["the target lacks processes (…)"])) == (
        "skipped: the target lacks processes (…)"
    )
    aborted = _rec("a", "failed", ok, problems=["safeguard aborted the run | at 3 s"])
    assert cell(aborted) == "**FAILED** (score 0): safeguard aborted the run | at 3 s"
    assert cell(None) == "not run"


def test_rows_follow_the_first_report_and_pipes_are_escaped() -> None:
    a = [_rec("x", "passed"), _rec("y", "passed")]
    b = [_rec("y", "failed", problems=["p | q"])]
    lines = side_by_side([("reference", a), ("triton", b)])
    assert lines[0] == "| drill | reference | triton |"
    assert lines[2].startswith("| `x` | passed") and lines[2].endswith("| not run |")
    assert lines[3].endswith("p \\| q |")
