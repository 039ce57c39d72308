"""Server-side (PromQL) SLO budgets: parsing, and judging against a fake ServerMetrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from chaos_rec.errors import ConfigError, ProbeError
from chaos_rec.slo import SLOSpec, evaluate
from chaos_rec.slo.promql import render_query
from chaos_rec.slo.promql_judge import judge_promql, phase_spans, server_series
from chaos_rec.slo.result import SLOResult, direction_of, margin
from chaos_rec.slo.server import Sample, Series

T0 = 1_800_000_000.0
SHARE = "sum(increase(cr_fallback_total{tier!='none'}[$window])) / sum(increase(cr_fallback_total[$window]))"
PHASES = [
    {"phase": "steady", "t": T0},
    {"phase": "fault", "t": T0 + 10},
    {"phase": "recovery", "t": T0 + 25},
]
END = T0 + 40


@dataclass
class FakeServer:
    """Answers each rendered query from a table: a value, a list of values, or an error."""

    answers: dict[str, Any]
    asked: list[tuple[str, float]] = field(default_factory=list)
    scraped: float = END + 1

    def instant(self, query: str, at: float) -> list[Sample]:
        self.asked.append((query, at))
        answer = self.answers[query]
        if isinstance(answer, Exception):
            raise answer
        values = answer if isinstance(answer, list) else [answer]
        return [Sample({"component": f"replica-{i}"}, float(v)) for i, v in enumerate(values)]

    def series(self, query: str, start: float, end: float, step: float) -> list[Series]:
        return [Series({"component": "replica-0"}, ((start, 0.1), (end, 0.2)))]

    def latest(self) -> float:
        return self.scraped


def spec(**fault: Any) -> SLOSpec:
    entry = {"name": "fallback_share", "query": SHARE, **fault}
    return SLOSpec.parse({"fault": {"promql": entry}})


@pytest.mark.parametrize(
    ("promql", "message"),
    [
        (5, "fault.promql[0] must be a mapping"),
        ([], "fault.promql is an empty list"),
        ({"query": "up", "max": 1}, "fault.promql[0].name must be a short name"),
        ({"name": "bad name", "query": "up", "max": 1}, "must be a short name"),
        ({"name": "a", "query": " ", "max": 1}, "fault.promql[0].query must be a non-empty"),
        ({"name": "a", "query": "up"}, "fault.promql[0] (a) needs a budget: max, min or both"),
        ({"name": "a", "query": "up", "max": "low"}, "fault.promql[0].max must be a finite"),
        ({"name": "a", "query": "up", "max": float("inf")}, "must be a finite number"),
        ({"name": "a", "query": "up", "min": 2, "max": 1}, "min (2) must not exceed"),
        ({"name": "a", "query": "up", "max": 1, "unit": "kg"}, "unit must be one of"),
        ({"name": "a", "query": "up", "max": 1, "mx": 2}, "unknown key fault.promql[0].mx"),
        (
            [{"name": "a", "query": "up", "max": 1}, {"name": "a", "query": "up", "min": 0}],
            "fault.promql names 'a' twice",
        ),
    ],
)
def test_bad_promql_budgets_are_one_clear_line(promql: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        SLOSpec.parse({"fault": {"promql": promql}})
    assert str(info.value).startswith("invalid SLO spec: ")
    assert message in str(info.value)


def test_a_promql_budget_alone_is_a_spec_and_round_trips() -> None:
    parsed = spec(max=0.5, unit="")
    assert [(p, b.name, b.max, b.min) for p, b in parsed.promql] == [
        ("fault", "fallback_share", 0.5, None)
    ]
    assert SLOSpec.parse(parsed.to_dict()) == parsed
    assert "promql" not in SLOSpec.parse({"steady": {"p99_ms": 100}}).to_dict()["steady"]


def test_window_is_the_phase_length_at_least_two_scrapes() -> None:
    assert render_query("rate(x[$window])", 14.2) == "rate(x[15s])"
    assert render_query("rate(x[$window])", 0.5) == "rate(x[2s])"
    assert render_query("up", 10) == "up"


def test_phase_spans_end_at_the_next_mark_and_the_run_end() -> None:
    assert phase_spans(PHASES, END) == [
        ("steady", T0, T0 + 10),
        ("fault", T0 + 10, T0 + 25),
        ("recovery", T0 + 25, END),
    ]


def test_the_fault_phase_is_queried_once_at_its_end_over_its_length() -> None:
    server = FakeServer({render_query(SHARE, 15): 0.2})
    [result] = judge_promql(spec(max=0.5), PHASES, END, server)
    assert server.asked == [(render_query(SHARE, 15), T0 + 25)]
    assert (result.slo, result.phase, result.window) == (
        "promql_max:fallback_share",
        "fault",
        (T0 + 10, T0 + 25),
    )
    assert result.passed and result.observed == pytest.approx(0.2)
    assert "SLO promql_max:fallback_share met in phase fault (window " in result.line()
    assert "observed 0.2 <= budget 0.5" in result.line()


def test_a_ceiling_takes_the_worst_series_and_fails_above_it() -> None:
    server = FakeServer({render_query(SHARE, 15): [0.1, 0.7, 0.3]})
    [result] = judge_promql(spec(max=0.5), PHASES, END, server)
    assert not result.passed and result.observed == pytest.approx(0.7)
    assert "observed 0.7 > budget 0.5" in result.line()


def test_min_and_max_are_two_results_with_their_directions() -> None:
    server = FakeServer({render_query(SHARE, 15): [0.3, 0.05]})
    high, low = judge_promql(spec(max=0.5, min=0.1), PHASES, END, server)
    assert (high.slo, high.passed) == ("promql_max:fallback_share", True)
    assert (low.slo, low.passed, low.observed) == ("promql_min:fallback_share", False, 0.05)
    assert direction_of(low.slo) == "min" and direction_of(high.slo) == "max"
    assert "observed 0.05 < budget 0.1" in low.line()
    assert margin(high.slo, 0.3, 0.5) == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ([], "returned no series (wrong metric or label?)"),
        ([float("nan")], "returned NaN"),
        (
            ProbeError("Prometheus at http://x refused query 'q' (HTTP 400): parse error"),
            "query failed: Prometheus at http://x refused",
        ),
    ],
)
def test_an_empty_result_nan_or_error_fails_never_passes(answer: Any, why: str) -> None:
    server = FakeServer({render_query(SHARE, 15): answer})
    [result] = judge_promql(spec(max=0.5), PHASES, END, server)
    assert not result.passed and result.observed is None
    assert "not measured (" in result.line() and why in result.line()
    assert "phase fault" in result.line() and "budget 0.5" in result.line()


def test_without_a_server_every_promql_check_fails_saying_where_to_set_it() -> None:
    [result] = judge_promql(spec(max=0.5), PHASES, END, None)
    assert not result.passed
    assert "set prometheus_url" in result.line()


def test_a_phase_that_did_not_happen_is_not_judged() -> None:
    assert judge_promql(spec(max=0.5), PHASES[:1], T0 + 5, FakeServer({})) == []


def test_evaluate_adds_server_results_to_the_client_side_verdict() -> None:
    rows = [{"t": int(T0) + i, "n": 0} for i in range(40)]
    server = FakeServer({render_query(SHARE, 15): 0.9})
    verdict = evaluate(spec(max=0.5), rows, PHASES, None, server)
    assert not verdict.passed
    assert [r.slo for r in verdict.misses()] == ["promql_max:fallback_share"]
    assert isinstance(verdict.results[0], SLOResult)
    assert SLOResult.from_dict(verdict.results[0].to_dict()).direction == "max"


def test_server_series_use_the_spec_window_and_keep_errors() -> None:
    parsed = spec(max=0.5)

    class Broken(FakeServer):
        def series(self, query: str, start: float, end: float, step: float) -> list[Series]:
            raise ProbeError("Prometheus at http://x: connection refused")

    [ok] = server_series(parsed, T0, END, FakeServer({}))
    assert ok["query"] == render_query(SHARE, parsed.window_s)
    assert ok["series"][0]["points"] == [[T0, 0.1], [END, 0.2]]
    [bad] = server_series(parsed, T0, END, Broken({}))
    assert bad["series"] == [] and "connection refused" in bad["error"]


def test_a_python_drill_judges_promql_budgets_with_the_server_it_is_given(tmp_path: Any) -> None:
    from chaos_rec.core.rundir import RunContext
    from chaos_rec.drill.python_drill import PythonDrill
    from chaos_rec.report.model import DrillRecord

    ctx = RunContext.create(tmp_path, "py")
    ctx.append_timeline([{"t": int(T0) + i, "n": 0} for i in range(40)])
    for mark in PHASES:
        ctx.mark(str(mark["phase"]), "test", t=float(mark["t"]))
    drill = PythonDrill(DrillRecord("py", "py", "py", "python"), ctx.run_dir, None, print)
    budget = {"fault": {"promql": {"name": "fallback_share", "query": SHARE, "max": 0.5}}}
    drill.assert_slo(budget, server=FakeServer({render_query(SHARE, 15): 0.1}))
    assert [(r.slo, r.passed) for r in drill.record.slos] == [("promql_max:fallback_share", True)]
    with pytest.raises(pytest.fail.Exception):
        drill.assert_slo(budget, server=FakeServer({render_query(SHARE, 15): 0.9}))
    assert "SLO promql_max:fallback_share missed in phase fault" in drill.record.slos[0].line()


def test_a_fail_fast_stop_leaves_out_the_server_budgets_of_phases_after_it() -> None:
    entry = {"name": "fallback_share", "query": SHARE, "max": 0.5}
    both = SLOSpec.parse({"fault": {"promql": entry}, "recovery": {"promql": entry}})
    rows = [{"t": int(T0) + i, "n": 0} for i in range(40)]
    server = FakeServer({render_query(SHARE, 15): 0.9})  # fault and recovery: 15 s each
    full = evaluate(both, rows, PHASES, None, server)
    assert [r.phase for r in full.misses()] == ["fault", "recovery"]
    stopped = evaluate(both, rows, PHASES, None, server, until=T0 + 25)  # recovery: none judged
    assert [(r.phase, r.slo) for r in stopped.results] == [("fault", "promql_max:fallback_share")]
