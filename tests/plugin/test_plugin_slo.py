"""SLO specs: validated at collection, evaluated by the SLO engine when no verdict was written."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.plugin.conftest import Writer, action

SPEC = {"steady": {"p99_ms": 250}, "fault": {"p99_ms": 400, "availability": 0.98}, "window_s": 2}


def _slo_ext(spec: dict[str, object]) -> dict[str, object]:
    return {"extensions": [{"name": "chaos_rec", "slo": spec}]}


def test_invalid_slo_spec_fails_collection_with_the_engine_message(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("bad_slo", extra=_slo_ext({"fault": {"p99_ms": -1}}))
    result = project.runpytest("-m", "drill")
    result.stdout.fnmatch_lines(
        [
            "*bad_slo.json: bad_slo.json extensions.chaos_rec.slo: invalid SLO spec: fault.p99_ms must be > 0 ms*"
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_slo_engine_judges_the_timeline_when_no_verdict_was_written(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment(
        "slow", method=[action("load", "figures", p99=700.0, verdict=False)], extra=_slo_ext(SPEC)
    )
    result = project.runpytest("-m", "drill")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*SLO p99_ms missed in phase fault (window *): observed 700* > budget 400 ms*"]
    )


def test_drill_slo_file_is_the_default_spec_and_reaches_the_experiment(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    spec_file = project.path / "slo.json"
    spec_file.write_text(json.dumps(SPEC))
    write_experiment("ok", method=[action("load", "figures", p99=300.0, verdict=False)])
    result = project.runpytest("-m", "drill", "--drill-slo", "slo.json", "--drill-report", "out")
    result.assert_outcomes(passed=1)
    journal = json.loads((project.path / "out" / "drills" / "ok" / "journal.json").read_text())
    assert {"name": "chaos_rec", "slo": SPEC} in journal["experiment"]["extensions"]
    result.stdout.fnmatch_lines(["PASSED*ok*fault.p99_ms 300ms (≤400ms) ok*"])


def test_slo_spec_without_any_load_figures_fails(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("no_load", extra=_slo_ext(SPEC))
    result = project.runpytest("-m", "drill")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*an SLO spec is set but the run left no load timeline*"])


def test_python_drill_assert_slo_fails_with_the_verdict_table(project: pytest.Pytester) -> None:
    spec = json.dumps(SPEC)
    project.makepyfile(
        test_pyslo=textwrap.dedent(
            f"""
            import json, time

            def _rows(drill, p99):
                t0 = int(time.time()) - 12
                with (drill.run_dir / "timeline.jsonl").open("w") as fh:
                    for i in range(12):
                        phase = "steady" if i < 4 else ("fault" if i < 8 else "recovery")
                        fh.write(json.dumps({{"t": t0 + i, "phase": phase, "requests": 50, "failures": 0,
                            "status": {{"200": 50}}, "p50_ms": 20, "p95_ms": 40,
                            "p99_ms": p99 if phase == "fault" else 60, "max_ms": 90,
                            "tiers": {{"none": 50}}}}) + "\\n")
                (drill.run_dir / "phases.jsonl").write_text("".join(
                    json.dumps({{"t": t0 + s, "phase": ph, "by": "test"}}) + "\\n"
                    for s, ph in ((0, "steady"), (4, "fault"), (8, "recovery"))))

            def test_passes(drill):
                _rows(drill, 300)
                time.sleep(0.4)
                drill.assert_slo({spec})

            def test_misses(drill):
                _rows(drill, 900)
                drill.assert_slo({spec})
            """
        )
    )
    (project.path / "test_pyslo.py").rename(project.path / "tests" / "test_pyslo.py")
    result = project.runpytest("-m", "drill", "--junitxml", "j.xml", "--drill-report", "rep")
    result.assert_outcomes(passed=1, failed=1)
    record = json.loads(
        (project.path / "rep" / "drills" / "test_passes" / "record.json").read_text()
    )
    assert 0.4 <= record["duration_s"] < 30  # the report shows how long the drill ran
    result.stdout.fnmatch_lines(
        [
            "*drill test_misses FAILED*",
            "*SLO p99_ms missed in phase fault*observed 900* ms > budget 400 ms*",
            "*p99_ms*fault*900ms*≤ 400ms*MISSED*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert 'name="slo.fault.p99_ms.observed" value="900.0"' in (project.path / "j.xml").read_text()


def test_verdict_marked_into_the_journal_by_the_control_is_read_without_false_deviation(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    control = {"name": "mimic", "provider": {"type": "python", "module": "cr_providers"}}
    write_experiment("marked", extra={"controls": [control]})
    result = project.runpytest("-m", "drill")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*- safeguard tripped: availability 0.31 < 0.5 for 10 s*", "*recovery: 4.0s*"]
    )
    failure = out.split("FAILURES")[1].split("chaos-rec drills")[0]
    assert failure.count("SLO p99_ms missed in phase fault") == 1
    assert "deviated" not in failure and "Chaos Toolkit marked" not in failure
