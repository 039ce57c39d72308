"""Fail-fast: a phase that ended with a missed load budget is settled, and the run stops there.

``first_missed_phase`` finds it only once the phase has ended (its windows can no longer
change), and the same miss is what the whole run's verdict reports; ``evaluate(until=…)`` does
not judge the phases that began at or after the stop; the safeguard trips on it and the core
judge reads the stop back from ``safeguard.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaos_rec.core.judge import judge_run
from chaos_rec.core.rundir import RunContext
from chaos_rec.core.safeguard import SAFEGUARD_FILE, Safeguard, fail_fast_until
from chaos_rec.slo import SLOSpec, evaluate
from chaos_rec.slo.judge import first_missed_phase
from chaos_rec.slo.metrics import SecondStats

T0 = 1_800_000_000
SPEC = {
    "steady": {"p99_ms": 250, "availability": 0.99},
    "fault": {"p99_ms": 400, "availability": 0.95},
    "recovery": {"p99_ms": 250, "availability": 0.99},
    "max_recovery_s": 10,
    "min_quality_ratio": 0.8,
    "window_s": 2,
}
MARKS = [
    {"t": T0, "phase": "steady", "by": "x"},
    {"t": T0 + 4.5, "phase": "fault", "by": "x"},  # second T0+4 is touched by the fault: fault
    {"t": T0 + 10.3, "phase": "recovery", "by": "x"},  # second T0+10 is still fault
]


def _row(t: int, *, ms: float = 20.0, errors: int = 0) -> dict[str, Any]:
    s = SecondStats(t)
    for i in range(20):
        failed = i < errors
        s.add(ms, 503 if failed else 200, None if failed else "none", failed=failed, known=True)
    return s.row("steady")


def _timeline(seconds: int, *, fault_errors: int = 0) -> list[dict[str, Any]]:
    """Seconds T0.. of a run whose fault (T0+4..T0+10) fails ``fault_errors`` of 20 requests."""
    return [_row(T0 + i, errors=fault_errors if 4 <= i <= 10 else 0) for i in range(seconds)]


def test_a_miss_is_settled_only_once_the_phase_has_ended() -> None:
    spec = SLOSpec.parse(SPEC)
    assert first_missed_phase(spec, _timeline(9, fault_errors=10), MARKS) is None  # fault goes on
    assert first_missed_phase(spec, _timeline(11, fault_errors=10), MARKS) is None  # T0+10: fault
    miss = first_missed_phase(spec, _timeline(12, fault_errors=10), MARKS)
    assert miss is not None and miss.phase == "fault" and miss.until == T0 + 11
    assert [(r.slo, r.observed) for r in miss.misses] == [("availability", pytest.approx(0.5))]


def test_a_run_that_meets_its_budgets_never_trips() -> None:
    spec = SLOSpec.parse(SPEC)
    assert first_missed_phase(spec, _timeline(20, fault_errors=0), MARKS) is None


def test_a_steady_miss_does_not_stop_the_run_before_its_fault() -> None:
    rows = _timeline(20)
    rows[1] = _row(T0 + 1, ms=900.0)
    spec = SLOSpec.parse(SPEC)
    assert first_missed_phase(spec, rows, MARKS) is None  # the fault is still injected
    assert not evaluate(spec, rows, MARKS).passed  # and the steady miss still fails the run
    rows[6] = _row(T0 + 6, ms=900.0)
    miss = first_missed_phase(spec, rows, MARKS)
    assert miss is not None and miss.phase == "fault" and [r.slo for r in miss.misses] == ["p99_ms"]


def test_the_settled_miss_is_the_one_the_whole_runs_verdict_reports() -> None:
    spec = SLOSpec.parse(SPEC)
    rows = _timeline(25, fault_errors=10)
    early = first_missed_phase(spec, rows[:12], MARKS)
    assert early is not None
    final = evaluate(spec, rows, MARKS)
    (missed,) = [r for r in final.results if r.phase == "fault" and not r.passed]
    assert (missed.slo, missed.observed, missed.window) == (
        early.misses[0].slo, early.misses[0].observed, early.misses[0].window,
    )  # fmt: skip


def test_phases_that_began_at_the_stop_are_not_judged_but_quality_is() -> None:
    spec = SLOSpec.parse(SPEC)
    rows = _timeline(13, fault_errors=10)  # two seconds of "recovery" while the run stopped
    rows[12] = _row(T0 + 12, errors=20)  # the stop's own second: must not be charged
    quality = {"measurements": [{"phase": "recovery", "ratio": 0.5, "t": T0 + 12}]}
    full = evaluate(spec, rows, MARKS, quality)
    stopped = evaluate(spec, rows, MARKS, quality, until=T0 + 11)
    assert {r.phase for r in full.results} >= {"recovery"}
    assert {(r.slo, r.phase) for r in stopped.results} == {
        ("p99_ms", "steady"), ("availability", "steady"), ("p99_ms", "fault"),
        ("availability", "fault"), ("min_quality_ratio", "recovery"),
    }  # fmt: skip
    assert stopped.recovery_s is None and not stopped.passed
    assert [r.slo for r in stopped.results if not r.passed] == ["availability", "min_quality_ratio"]


def _ctx(tmp_path: Path, rows: list[dict[str, Any]]) -> RunContext:
    ctx = RunContext(tmp_path / "run")
    ctx.append_timeline(rows)
    for m in MARKS:
        ctx.mark(str(m["phase"]), "test", t=float(m["t"]))
    return ctx


def test_the_safeguard_trips_on_a_settled_miss_only_when_fail_fast_is_on(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, _timeline(12, fault_errors=10))
    assert Safeguard(ctx, None, 10.0).check() is None
    trip = Safeguard(ctx, None, 10.0, SLOSpec.parse(SPEC)).check()
    assert trip is not None and trip.until == T0 + 11
    assert trip.reason == (
        "fail-fast: phase fault missed its SLOs (availability 0.5 vs 0.95); stopped there and "
        "rolled back, later phases not judged"
    )


def test_the_judge_reads_the_stop_back_and_leaves_the_later_phases_out(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, _timeline(14, fault_errors=10))
    spec = {k: v for k, v in SPEC.items() if k != "min_quality_ratio"}
    ran_on = judge_run(ctx, spec, stored=False)
    assert any(r.slo == "max_recovery_s" for r in ran_on.verdict.results)  # type: ignore[union-attr]
    ctx.write_json(SAFEGUARD_FILE, {"t": T0 + 12, "reason": "fail-fast: …", "until": T0 + 11})
    assert fail_fast_until(ctx) == T0 + 11
    stopped = judge_run(ctx, spec, stored=False)
    assert stopped.verdict is not None and not stopped.passed
    assert {r.phase for r in stopped.verdict.results} == {"steady", "fault"}
    assert [line.split(" (")[0] for line in stopped.problems] == [
        "SLO availability missed in phase fault"
    ]


def test_an_availability_safeguard_trip_leaves_the_whole_run_judged(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, _timeline(14))
    ctx.write_json(SAFEGUARD_FILE, {"t": T0 + 12, "reason": "safeguard: …"})
    assert fail_fast_until(ctx) is None


def test_a_judged_phase_is_not_charged_with_the_seconds_after_the_stop() -> None:
    marks = [*MARKS, {"t": T0 + 14.5, "phase": "fault", "by": "x"},
             {"t": T0 + 20.3, "phase": "recovery", "by": "x"}]  # fmt: skip
    rows = [_row(T0 + i, errors=10 if 14 <= i <= 20 else (20 if i > 20 else 0)) for i in range(25)]
    spec = SLOSpec.parse(SPEC)
    miss = first_missed_phase(spec, rows[:22], marks)
    assert miss is not None and miss.phase == "fault" and miss.until == T0 + 21
    stopped = evaluate(spec, rows, marks, until=miss.until)
    recovery = [r for r in stopped.results if r.phase == "recovery"]
    assert recovery and all(r.passed for r in recovery if r.slo != "min_quality_ratio")
    assert not any(r.slo == "max_recovery_s" for r in stopped.results)
    assert not next(r for r in evaluate(spec, rows, marks).results
                    if (r.slo, r.phase) == ("availability", "recovery")).passed  # fmt: skip
