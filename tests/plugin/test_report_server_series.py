"""The report plots server-side (PromQL) series beside the client-side ones; JUnit names them.

The run dir is written with the core's own writer (timeline, phases, server series) and turned
into the session report by the report's own code; the page is then laid out in headless
Chromium, like ``test_report_chromium.py`` does for the client-side plots.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from chaos_rec.core.rundir import RunContext
from chaos_rec.report.files import write_drill_files, write_session_report
from chaos_rec.report.junit import properties
from chaos_rec.report.model import DrillRecord
from chaos_rec.slo.metrics import SecondStats
from chaos_rec.slo.result import SLOResult
from tests.plugin.test_report_chromium import chromium_cmd, dump_dom

T0 = 1_800_000_000


def _run(tmp_path: Path) -> tuple[RunContext, DrillRecord]:
    ctx = RunContext.create(tmp_path / "state", "feature_store_outage")
    rows = []
    for i in range(30):
        s = SecondStats(T0 + i)
        for _ in range(10):
            s.add(
                20.0 + i,
                200,
                "none" if not 10 <= i < 20 else "global_popular",
                failed=False,
                known=True,
            )
        rows.append(s.row("steady"))
    ctx.append_timeline(rows)
    for phase, t in (("steady", T0), ("fault", T0 + 10), ("recovery", T0 + 20)):
        ctx.mark(phase, "test", t=t)
    points = [[T0 + i + 0.5, 0.9 if 10 <= i < 20 else 0.0] for i in range(30)]
    ctx.write_server_series(
        [
            {
                "name": "fallback_share",
                "query": "sum(increase(cr_fallback_total[5s]))",
                "unit": "",
                "series": [
                    {"labels": {"component": "replica-0"}, "points": points},
                    {"labels": {"component": "replica-1"}, "points": points[::2]},
                ],
            },
            {"name": "broken", "query": "nope(", "unit": "", "error": "parse error", "series": []},
        ]
    )
    share = SLOResult("promql_min:fallback_share", "fault", (T0 + 10, T0 + 20), 0.9, 0.8, "", True)
    broken = SLOResult(
        "promql_max:broken", "fault", (T0 + 10, T0 + 20), None, 1.0, "", False, "query failed"
    )
    record = DrillRecord(
        name="feature_store_outage",
        nodeid="experiments/feature_store_outage.json::feature_store_outage",
        title="outage",
        kind="experiment",
        result="failed",
        slos=[share, broken],
        run_dir=str(ctx.run_dir),
    )
    return ctx, record


def test_junit_properties_carry_the_server_side_figures(tmp_path: Path) -> None:
    _, record = _run(tmp_path)
    props = dict(properties(record))
    assert props["slo.fault.promql_min:fallback_share.observed"] == 0.9
    assert props["slo.fault.promql_min:fallback_share.budget"] == 0.8
    assert props["slo.fault.promql_min:fallback_share.passed"] is True
    assert props["slo.fault.promql_max:broken.observed"] == "n/a"
    assert props["slo.fault.promql_max:broken.passed"] is False


@pytest.mark.integration
def test_server_series_are_plotted_phase_by_phase_in_chromium(tmp_path: Path) -> None:
    ctx, record = _run(tmp_path)
    report = tmp_path / "report"
    folder = write_drill_files(report, record, None, ctx.run_dir)
    assert (folder / "server_series.json").is_file()
    html = write_session_report(report, [record])
    text = html.read_text(encoding="utf-8")
    assert 'class="drill-plot server-plot"' in text
    assert "server: fallback_share" in text and "query failed: parse error" in text
    dom, body = dump_dom(html, tmp_path)
    # the client-side plot and the server-side plot, both laid out
    assert 'data-plots="2"' in body and 'data-plots-rendered="2"' in body
    server = dom.stdout[dom.stdout.index('class="drill-plot server-plot"') :]
    assert server.count('class="window-fault"') == 2  # both server panels shade the fault
    assert server.count('class="line replica-0"') == 1 and server.count("line replica-1") == 1
    assert 'class="budget"' in server  # the fault phase's floor of 0.8, dashed
    shot = tmp_path / "shot.png"
    png = subprocess.run(
        [*chromium_cmd(tmp_path), f"--screenshot={shot}", "--window-size=900,1200", html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert png.returncode == 0, png.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
