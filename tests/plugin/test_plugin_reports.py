"""Reports: report folder files, JUnit properties, baseline regressions, the report CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from chaos_rec.cli import main as cli_main
from tests.plugin.conftest import Writer, action, probe


def _two_drills(write_experiment: Writer, p99: float = 300.0) -> None:
    write_experiment(
        "feature_store_slow",
        probes=[probe("healthy", "value", tolerance=True, v=True)],
        method=[action("figures", "figures", p99=p99)],
    )
    write_experiment("bad_action", method=[action("kill", "boom")])


def test_report_dir_holds_journal_timeline_and_one_html(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    _two_drills(write_experiment)
    result = project.runpytest("-m", "drill", "--drill-report", "out")
    result.assert_outcomes(passed=1, failed=1)
    out = project.path / "out"
    drill = out / "drills" / "feature_store_slow"
    journal = json.loads((drill / "journal.json").read_text())
    assert (
        journal["status"] == "completed"
        and journal["experiment"]["title"] == "feature_store_slow drill"
    )
    assert journal["experiment"]["configuration"]["chaos_rec_seed"] == 1234
    rows = list(csv.DictReader((drill / "timeline.csv").open()))
    assert len(rows) == 12 and rows[5]["phase"] == "fault" and float(rows[5]["p99_ms"]) == 300.0
    assert float(rows[5]["availability"]) == pytest.approx(0.99)
    assert float(rows[0]["fallback_ratio"]) == pytest.approx(0.1)
    assert len(json.loads((drill / "timeline.json").read_text())) == 12
    summary = json.loads((out / "summary.json").read_text())
    assert [d["name"] for d in summary["drills"]] == ["bad_action", "feature_store_slow"]
    html = (out / "report.html").read_text()
    assert (
        html.count('<svg class="drill-plot"') == 1
        and html.count('<svg class="drill-plot empty"') == 1
    )
    assert (
        "<script src" not in html and "<link" not in html and "http://" not in html.split("<svg")[0]
    )
    result.stdout.fnmatch_lines([f"report: {out / 'report.html'}"])


def test_junit_xml_carries_slo_figures_as_properties(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    _two_drills(write_experiment)
    project.runpytest("-m", "drill", "--junitxml", "junit.xml")
    root = ET.parse(project.path / "junit.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["feature_store_slow"].iter("property")}
    assert props["drill.result"] == "passed"
    assert props["slo.fault.p99_ms.observed"] == "300.0"
    assert props["slo.fault.p99_ms.budget"] == "400.0"
    assert props["slo.fault.availability.passed"] == "True"
    assert props["drill.recovery_s"] == "3.0"
    failed = {p.get("name"): p.get("value") for p in cases["bad_action"].iter("property")}
    assert failed["drill.result"] == "failed"


def test_baseline_flags_regressions_beyond_tolerance(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    _two_drills(write_experiment, p99=300.0)
    project.runpytest("-m", "drill", "--drill-report", "base")
    _two_drills(write_experiment, p99=390.0)  # still within the 400 ms budget, but 30 % worse
    result = project.runpytest("-m", "drill", "-k", "slow", "--drill-baseline", "base")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*regression: fault.p99_ms 390 ms vs baseline 300 ms (tolerance 10%)*"]
    )
    _two_drills(write_experiment, p99=320.0)  # within tolerance
    ok = project.runpytest("-m", "drill", "-k", "slow", "--drill-baseline", "base")
    ok.assert_outcomes(passed=1)


def test_missing_baseline_is_one_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--drill-baseline", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*chaos-rec: --drill-baseline: * holds no summary.json of a report*"]
    )
    assert "Traceback" not in result.stderr.str()


def test_report_cli_rerenders_and_compares(
    project: pytest.Pytester, write_experiment: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    _two_drills(write_experiment, p99=300.0)
    project.runpytest("-m", "drill", "-k", "slow", "--drill-report", "a")
    _two_drills(write_experiment, p99=390.0)
    project.runpytest("-m", "drill", "-k", "slow", "--drill-report", "b")
    (project.path / "b" / "report.html").unlink()
    assert cli_main(["report", str(project.path / "b")]) == 0
    assert (project.path / "b" / "report.html").is_file()
    rc = cli_main(["report", str(project.path / "b"), "--baseline", str(project.path / "a")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "regression: fault.p99_ms 390 ms vs baseline 300 ms" in out
    assert cli_main(["report", str(project.path / "missing")]) == 1
    assert "no drill report in" in capsys.readouterr().err


def test_bad_drill_stack_file_is_one_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--drill-stack", "nope.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*chaos-rec: --drill-stack: no such deployment file: nope.json*"])


def test_slo_file_option_is_validated(project: pytest.Pytester) -> None:
    (project.path / "slo.json").write_text("[1, 2]")
    result = project.runpytest("--drill-slo", "slo.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*chaos-rec: SLO file * must hold an object, got list*"])


def test_saved_journal_renders_with_chaostoolkit_reporting(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    _two_drills(write_experiment)
    project.runpytest("-m", "drill", "--drill-report", "out")
    path = project.path / "out" / "drills" / "feature_store_slow" / "journal.json"
    # chaosreport is imported in a child process: importing it here disturbs later pytester runs
    code = (
        "import json, sys, warnings; warnings.simplefilter('ignore');"
        "from chaosreport import generate_report, generate_report_header;"
        "p = sys.argv[1];"
        "print(generate_report_header([p], 'markdown'));"
        "print(generate_report(json.load(open(p)), 'markdown'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "This report aggregates 1 experiments" in out.stdout
    assert "feature_store_slow drill" in out.stdout and "figures" in out.stdout
