"""SLO engine: spec validation table and evaluation over synthetic timelines."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.errors import ConfigError
from chaos_rec.slo import SLOSpec, evaluate
from chaos_rec.slo.metrics import SecondStats

T0 = 1_800_000_000  # 2027-01-15T08:00:00Z


def row(
    t: int, *, ms: float = 20.0, n: int = 10, errors: int = 0, fallback: int = 0
) -> dict[str, Any]:
    s = SecondStats(t)
    for i in range(n):
        failed = i < errors
        tier = None if failed else ("global_popular" if i < errors + fallback else "none")
        s.add(ms, 503 if failed else 200, tier, failed=failed, known=True)
    return s.row("steady")


GOOD = {"steady": {"p50_ms": 60, "p99_ms": 250, "availability": 0.995}, "window_s": 5}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "it is empty"),
        ([], "expected a mapping"),
        ({"stedy": {"p50_ms": 1}}, "unknown key 'stedy'"),
        ({"steady": {"p50": 1}}, "unknown key steady.p50"),
        ({"steady": 5}, "steady must be a mapping"),
        ({"steady": {"p99_ms": -1}}, "steady.p99_ms must be > 0 ms"),
        ({"steady": {"p99_ms": "fast"}}, "steady.p99_ms must be a number"),
        ({"steady": {"p99_ms": True}}, "steady.p99_ms must be a number"),
        ({"steady": {"p99_ms": float("nan")}}, "must be finite"),
        ({"fault": {"availability": 99.5}}, "fault.availability must be within [0, 1]"),
        ({"fault": {"max_fallback_ratio": -0.1}}, "fault.max_fallback_ratio must be within [0, 1]"),
        (
            {"steady": {"p50_ms": 300, "p99_ms": 100}},
            "steady.p50_ms (300) must not exceed steady.p99_ms",
        ),
        ({"steady": {"p99_ms": 100}, "window_s": 0}, "window_s must be within [1, 3600]"),
        ({"steady": {"p99_ms": 100}, "max_recovery_s": 0}, "max_recovery_s must be > 0"),
        ({"min_quality_ratio": 0}, "min_quality_ratio must be within (0, 2]"),
        ({"steady": {}}, "no budget is set"),
    ],
)
def test_invalid_specs_are_rejected_with_one_clear_line(spec: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        SLOSpec.parse(spec)
    text = str(info.value)
    assert text.startswith("invalid SLO spec: ")
    assert message in text
    assert "\n" not in text


def test_contract_example_parses_and_round_trips() -> None:
    data = {
        "steady": {"p50_ms": 60, "p99_ms": 250, "availability": 0.995},
        "fault": {"p99_ms": 400, "availability": 0.99, "max_fallback_ratio": 1.0},
        "recovery": {"p99_ms": 250, "availability": 0.995, "max_fallback_ratio": 0.05},
        "max_recovery_s": 20,
        "min_quality_ratio": 0.85,
        "window_s": 5,
    }
    spec = SLOSpec.parse(data)
    assert spec.phases["fault"].p99_ms == 400
    assert spec.max_recovery_s == 20
    assert SLOSpec.parse(spec.to_dict()) == spec


def test_spec_from_experiment_and_pyproject(tmp_path: Path) -> None:
    exp = {"extensions": [{"name": "other"}, {"name": "chaos_rec", "slo": GOOD}]}
    assert SLOSpec.from_experiment(exp) == SLOSpec.parse(GOOD)
    assert SLOSpec.from_experiment({"extensions": []}) is None
    py = tmp_path / "pyproject.toml"
    py.write_text("[tool.chaos_rec.slo]\nwindow_s = 3\n[tool.chaos_rec.slo.fault]\np99_ms = 400\n")
    spec = SLOSpec.from_pyproject(py)
    assert spec is not None and spec.window_s == 3 and spec.phases["fault"].p99_ms == 400
    py.write_text("[tool.chaos_rec.slo.fault]\np99_ms = -4\n")
    with pytest.raises(ConfigError, match=r"fault\.p99_ms"):
        SLOSpec.from_pyproject(py)


def test_healthy_run_passes() -> None:
    spec = SLOSpec.parse(GOOD)
    verdict = evaluate(spec, [row(T0 + i) for i in range(20)], [])
    assert verdict.passed
    assert verdict.lines() == []
    p50 = next(r for r in verdict.results if r.slo == "p50_ms")
    assert p50.observed == pytest.approx(20.0, rel=0.05)


def test_latency_miss_names_slo_phase_window_observed_and_budget() -> None:
    spec = SLOSpec.parse({"fault": {"p99_ms": 400}, "window_s": 5})
    rows = [row(T0 + i) for i in range(10)] + [row(T0 + 10 + i, ms=512.0) for i in range(5)]
    rows += [row(T0 + 15 + i) for i in range(5)]
    phases = [
        {"t": T0, "phase": "steady", "by": "x"},
        {"t": T0 + 10, "phase": "fault", "by": "x"},
        {"t": T0 + 15, "phase": "recovery", "by": "x"},
    ]
    verdict = evaluate(spec, rows, phases)
    assert not verdict.passed
    (line,) = verdict.lines()
    assert line.startswith("SLO p99_ms missed in phase fault (window 08:00:10–08:00:15): observed ")
    assert line.endswith(" ms > budget 400 ms")
    observed = float(line.split("observed ")[1].split(" ms")[0])
    assert observed == pytest.approx(512.0, rel=0.05)


def test_availability_and_fallback_judged_per_window() -> None:
    spec = SLOSpec.parse(
        {"steady": {"availability": 0.99, "max_fallback_ratio": 0.1}, "window_s": 5}
    )
    rows = [row(T0 + i) for i in range(10)]
    rows[7] = row(T0 + 7, errors=5)  # one window: 5 of 50 failed -> 0.9
    rows[2] = row(T0 + 2, fallback=5)  # other window: 5 of 50 degraded -> 0.1 (ok)
    verdict = evaluate(spec, rows, [])
    by = {r.slo: r for r in verdict.results}
    assert by["availability"].observed == pytest.approx(0.9)
    assert not by["availability"].passed
    assert by["availability"].window == (T0 + 5, T0 + 10)
    assert by["max_fallback_ratio"].observed == pytest.approx(0.1)
    assert by["max_fallback_ratio"].passed
    assert "observed 0.9 < budget 0.99" in verdict.lines()[0]


def test_recovery_time_is_first_good_window_after_the_recovery_mark() -> None:
    spec = SLOSpec.parse({"recovery": {"availability": 0.99}, "max_recovery_s": 5, "window_s": 3})
    rows = [row(T0 + i) for i in range(5)]
    rows += [row(T0 + 5 + i, errors=10) for i in range(5)]  # fault
    rows += [row(T0 + 10 + i, errors=10) for i in range(8)]  # still broken 8 s into recovery
    rows += [row(T0 + 18 + i) for i in range(6)]
    phases = [
        {"t": T0 + 5, "phase": "fault", "by": "a"},
        {"t": T0 + 10.2, "phase": "recovery", "by": "b"},
    ]
    verdict = evaluate(spec, rows, phases)
    assert verdict.recovery_s == pytest.approx(18 - 10.2)
    rec = next(r for r in verdict.results if r.slo == "max_recovery_s")
    assert not rec.passed
    assert "observed 7.8 s > budget 5 s" in rec.line()


def test_quality_not_measured_is_a_miss_and_measured_is_judged() -> None:
    spec = SLOSpec.parse({"min_quality_ratio": 0.85})
    v = evaluate(spec, [], [])
    assert not v.passed and "not measured" in v.lines()[0]
    q = {
        "measurements": [
            {"t": T0, "phase": "fault", "ratio": 0.8},
            {"t": T0, "phase": "recovery", "ratio": 0.97},
        ]
    }
    v = evaluate(spec, [], [], q)
    assert not v.passed
    assert "SLO min_quality_ratio missed in phase fault" in v.lines()[0]
    q["measurements"][0]["ratio"] = 0.9
    assert evaluate(spec, [], [], q).passed


def test_phase_that_never_happened_is_not_judged_and_table_renders() -> None:
    spec = SLOSpec.parse({"fault": {"p99_ms": 10}, "steady": {"p99_ms": 100}})
    v = evaluate(spec, [row(T0 + i) for i in range(5)], [])
    assert [r.phase for r in v.results] == ["steady"]
    assert "p99_ms" in v.table() and "yes" in v.table()
    assert v.to_dict()["passed"] is True


def test_a_short_last_window_is_merged_into_the_previous_one() -> None:
    spec = SLOSpec.parse({"steady": {"p50_ms": 100}, "window_s": 5})
    rows = [row(T0 + i) for i in range(5)] + [row(T0 + 5 + i, ms=300.0) for i in range(2)]
    (res,) = evaluate(spec, rows, []).results
    assert res.window == (T0, T0 + 7)
    assert res.observed == pytest.approx(20.0, rel=0.05)  # 50 of 70 requests at 20 ms


def test_a_second_in_which_the_fault_begins_is_judged_as_fault_not_steady() -> None:
    spec = SLOSpec.parse(
        {"steady": {"availability": 0.99}, "fault": {"availability": 0.3}, "window_s": 5}
    )
    rows = [row(T0 + i) for i in range(10)]
    rows[9] = row(T0 + 9, errors=6)  # the spike starts 0.3 s into this second: 6 of 10 shed
    rows += [row(T0 + 10 + i, errors=5) for i in range(5)]
    phases = [
        {"t": T0, "phase": "steady", "by": "x"},
        {"t": T0 + 9.3, "phase": "fault", "by": "x"},
        {"t": T0 + 15, "phase": "recovery", "by": "x"},
    ]
    verdict = evaluate(spec, rows, phases)
    by = {(r.slo, r.phase): r for r in verdict.results}
    assert by[("availability", "steady")].passed
    assert by[("availability", "steady")].window == (T0, T0 + 9)  # second 9 is not in it
    assert by[("availability", "fault")].window[0] == T0 + 9


def test_accepted_latency_leaves_out_fast_sheds() -> None:
    s = SecondStats(T0)
    for _ in range(50):
        s.add(2.0, 503, None, failed=True, known=True)  # shed at once
    for _ in range(50):
        s.add(280.0, 200, "none", failed=False, known=True)  # accepted, slow
    rows = [s.row("fault")]
    spec = SLOSpec.parse({"fault": {"p50_ms": 100, "accepted_p50_ms": 100}, "window_s": 1})
    verdict = evaluate(spec, rows, [{"t": T0, "phase": "fault", "by": "x"}])
    by = {r.slo: r for r in verdict.results}
    assert by["p50_ms"].passed  # the sheds drag the all-answers median down to 2 ms
    assert not by["accepted_p50_ms"].passed
    assert by["accepted_p50_ms"].observed == pytest.approx(280.0, rel=0.05)
    assert rows[0]["ok_max_ms"] == 280.0 and sum(rows[0]["ok_hist"].values()) == 50


def test_accepted_latency_budgets_are_validated_like_the_others() -> None:
    with pytest.raises(ConfigError, match=r"fault.accepted_p50_ms \(300\) must not exceed"):
        SLOSpec.parse({"fault": {"accepted_p50_ms": 300, "accepted_p99_ms": 100}})


def test_timeout_ratio_counts_504s_and_transport_failures_not_sheds() -> None:
    s = SecondStats(T0)
    for code, n in ((200, 70), (503, 20), (504, 8), (0, 2)):
        for _ in range(n):
            s.add(5.0, code, "none" if code == 200 else None, failed=code != 200, known=True)
    spec = SLOSpec.parse({"fault": {"max_timeout_ratio": 0.05}, "window_s": 1})
    verdict = evaluate(spec, [s.row("fault")], [{"t": T0, "phase": "fault", "by": "x"}])
    (res,) = verdict.results
    assert res.observed == pytest.approx(0.10) and not res.passed
    assert "max_timeout_ratio missed in phase fault" in res.line()
    with pytest.raises(ConfigError, match=r"fault.max_timeout_ratio must be within \[0, 1\]"):
        SLOSpec.parse({"fault": {"max_timeout_ratio": 2}})


def test_margin_of_ceilings_and_floors() -> None:
    from chaos_rec.slo.result import margin

    assert margin("p99_ms", 300.0, 400.0) == pytest.approx(0.25)
    assert margin("max_recovery_s", 12.0, 10.0) == pytest.approx(-0.2)
    assert margin("availability", 0.99, 0.97) == pytest.approx(2 / 3)
    assert margin("availability", 0.96, 0.97) == pytest.approx(-1 / 3)
    assert margin("min_send_ratio", 1.0, 0.9) == pytest.approx(1.0)
    assert margin("availability", 0.4, 0.1) == pytest.approx(0.75)  # a goodput floor
    assert margin("availability", 0.0, 0.1) == -1.0
    assert margin("max_fallback_ratio", 1.0, 1.0) is None  # "any share may fall back"
    assert margin("max_fallback_ratio", 0.1, 0.25) == pytest.approx(0.6)
    assert margin("availability", 1.0, 1.0) is None and margin("p99_ms", None, 400.0) is None


def test_capacity_probe_seconds_are_not_judged_and_generator_misses_say_so() -> None:
    spec = SLOSpec.parse(
        {
            "steady": {"availability": 0.97},
            "fault": {"min_send_ratio": 0.9, "max_generator_lag_ms": 150},
        }
    )
    t0 = 1_700_000_000
    ok = {"requests": 50, "status": {"200": 50}, "sent": 50, "target_rps": 50.0, "gen_lag_ms": 3.0}
    probe = {"requests": 90, "status": {"503": 90}, "closed": 8}  # would miss availability
    late = {
        "requests": 40,
        "status": {"200": 40},
        "sent": 40,
        "target_rps": 100.0,
        "gen_lag_ms": 200.0,
    }
    timeline = [{"t": t0 + i, **ok} for i in range(5)] + [
        {"t": t0 + 5 + i, **probe} for i in range(3)
    ]
    timeline += [{"t": t0 + 8 + i, **late} for i in range(5)]
    phases = [{"t": t0, "phase": "steady", "by": "t"}, {"t": t0 + 8, "phase": "fault", "by": "t"}]
    verdict = evaluate(spec, timeline, phases)
    got = {(r.slo, r.phase): (r.observed, r.passed) for r in verdict.results}
    assert got[("availability", "steady")] == (1.0, True)
    assert got[("min_send_ratio", "fault")] == (0.4, False)
    assert got[("max_generator_lag_ms", "fault")] == (200.0, False)
    assert all("the load generator could not offer the load" in line for line in verdict.lines())


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"fault": {"min_send_ratio": 1.5}}, "fault.min_send_ratio must be within [0, 1]"),
        ({"fault": {"max_generator_lag_ms": 0}}, "fault.max_generator_lag_ms must be > 0 ms"),
    ],
)
def test_generator_budgets_are_validated(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)):
        SLOSpec.parse(data)
