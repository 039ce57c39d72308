"""Running drills: the three Chaos Toolkit traps, failure text, dry mode, -x and --lf."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plugin.conftest import Writer, action, ext_action, probe


def test_passing_drill_passes_and_shows_a_summary_row(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment(
        "good",
        probes=[probe("healthy", "value", tolerance=True, v=True)],
        method=[action("figures", "figures", p99=300.0)],
    )
    result = project.runpytest("-m", "drill")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*chaos-rec drills*", "PASSED*good*recovery 3.0s*fault.p99_ms 300ms (≤400ms) ok*"]
    )


def test_trap_steady_state_broken_before_method_fails(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    marker = project.path / "method-ran"
    write_experiment(
        "broken_before",
        probes=[probe("gateway-healthy", "value", tolerance=True, v=False)],
        method=[action("inject", "touch", path=str(marker))],
    )
    result = project.runpytest("-m", "drill")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*drill broken_before FAILED*",
            "*steady state was NOT met before the method*Chaos Toolkit still says 'completed'*"
            "probe gateway-healthy returned false, outside tolerance true*",
        ]
    )
    assert not marker.exists()
    assert "Traceback" not in result.stdout.str()


def test_trap_failed_action_fails_with_its_exception_line(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("bad_action", method=[action("kill-replica", "boom")])
    result = project.runpytest("-m", "drill")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*action kill-replica failed: RuntimeError: injector failed: replica-9 does not exist*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_trap_method_probe_outside_tolerance_is_judged(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment(
        "method_probe",
        method=[probe("fallback-served", "value", tolerance=[0, 5], v=42)],
    )
    result = project.runpytest("-m", "drill")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*method probe fallback-served returned 42, outside tolerance [[]0, 5[]]*does not judge it*"
        ]
    )


def test_deviation_after_method_and_failed_rollback_fail(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    flag = project.path / "flag"
    write_experiment(
        "deviates",
        probes=[probe("no-flag", "absent", tolerance=True, path=str(flag))],
        method=[action("flip", "touch", path=str(flag))],
        rollbacks=[action("undo", "boom")],
    )
    result = project.runpytest("-m", "drill")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*rollback undo failed: RuntimeError: injector failed*",
            "*steady state deviated after the method: probe no-flag returned false*",
        ]
    )


def test_slo_miss_shows_the_verdict_table_not_a_traceback(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("slow", method=[action("figures", "figures", p99=512.3, budget=400.0)])
    result = project.runpytest("-m", "drill")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*drill slow FAILED: slow drill*",
            "*SLO p99_ms missed in phase fault: observed 512.3 ms (budget <= 400 ms)*",
            "*SLO*phase*observed*budget*result*",
            "*p99_ms*fault*512ms*≤ 400ms*MISSED*",
            "*availability*fault*0.99*≥ 0.98*ok*",
            "*recovery: 3.0s*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "def runtest" not in result.stdout.str()


def test_dry_mode_shows_the_plan_and_injects_nothing(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    marker = project.path / "injected"
    write_experiment(
        "plan_me",
        probes=[probe("healthy", "value", tolerance=True, v=True)],
        method=[action("inject", "touch", path=str(marker))],
    )
    result = project.runpytest("-m", "drill", "--drill-dry", "-v", "-rs")
    result.assert_outcomes(skipped=1)  # a dry run passes nothing: it shows what would run
    assert not marker.exists()
    result.stdout.fnmatch_lines(
        [
            "*DRY RUN*",
            "*[[]plan_me[]] drill plan_me: plan_me drill*",
            "*action inject: cr_providers.touch*",
            "DRY*plan_me*",
            "SKIPPED*--drill-dry: nothing injected; drill plan_me: plan_me drill (*plan lines)",
        ]
    )


def test_a_session_without_drills_prints_nothing_of_chaos_rec(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    result = project.runpytest("tests", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # pytest's own header lists the installed plugin ("plugins: chaos-rec-0.1.0"); nothing else
    header = ("plugins:", "rootdir:")  # pytest's own lines (the tmp dir is named after the test)
    out = "\n".join(ln for ln in result.stdout.lines if not ln.startswith(header))
    assert "chaos-rec" not in out
    write_experiment("one")
    with_drills = project.runpytest("-m", "drill", "--drill-dry", "--co")
    with_drills.stdout.fnmatch_lines(["chaos-rec drills: reference stack, seed 1234*"])


def test_exitfirst_and_last_failed_work_as_usual(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("a_fails", method=[action("x", "boom")])
    write_experiment("b_fails", method=[action("x", "boom")])
    write_experiment("c_passes")
    first = project.runpytest("-m", "drill", "-x", "-p", "cacheprovider")
    first.assert_outcomes(failed=1)
    full = project.runpytest("-m", "drill", "-p", "cacheprovider")
    full.assert_outcomes(failed=2, passed=1)
    rerun = project.runpytest("-m", "drill", "--lf", "-p", "cacheprovider")
    rerun.assert_outcomes(failed=2)
    assert "c_passes" not in rerun.stdout.str()


def test_verbose_mode_prints_phases_with_live_figures(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment(
        "live",
        probes=[probe("healthy", "value", tolerance=True, v=True)],
        method=[action("figures", "figures", p99=300.0)],
    )
    result = project.runpytest("-m", "drill", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]live[]]*steady state before: met",
            "*[[]live[]]*method",
            "*[[]live[]]*action figures: succeeded  [[]p99 80ms avail 100.0% fallback 10.0%[]]",
            "*[[]live[]]*steady state after: met  [[]p99 80ms*",
        ]
    )
    quiet = project.runpytest("-m", "drill")
    assert "[live]" not in quiet.stdout.str()


def test_safeguard_abort_fails_the_drill_but_not_the_session(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    write_experiment("a_aborted", method=[action("trip", "safeguard_abort")])
    write_experiment("b_next")
    result = project.runpytest_subprocess("-m", "drill")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*the run was interrupted (signal, safeguard or Ctrl-C)*"])


def test_dry_mode_skips_python_drills(project: pytest.Pytester) -> None:
    (project.path / "tests" / "test_pydry.py").write_text(
        "def test_fault(drill):\n    raise AssertionError('must not run in dry mode')\n"
    )
    result = project.runpytest("-m", "drill", "--drill-dry", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*--drill-dry: Python drills inject faults, not run*"])


def test_dry_run_checks_the_target_for_real(
    project: pytest.Pytester, write_experiment: Writer, deployment: Path, fault_proxy_url: str
) -> None:
    write_experiment(
        "cuts",
        method=[
            ext_action("cut", "cut_link", link="link:feature-store"),
            ext_action("cut-missing", "cut_link", link="link:nope"),
        ],
    )
    result = project.runpytest("-m", "drill", "--drill-dry", "--drill-stack", str(deployment))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*drill cuts: target not ready: gateway http://127.0.0.1:9 does not answer (*); "
            "link:nope: *"
        ]
    )
    assert "link:feature-store:" not in result.stdout.str()  # that link exists
    # something answers on the port, but not with recommendations: still not ready
    wrong = json.loads(deployment.read_text()) | {"gateway_url": fault_proxy_url, "users": [7]}
    deployment.write_text(json.dumps(wrong))
    write_experiment("cuts", method=[ext_action("cut", "cut_link", link="link:feature-store")])
    result = project.runpytest("-m", "drill", "--drill-dry", "--drill-stack", str(deployment))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*target not ready: gateway {fault_proxy_url} gave no readable recommendation for user 7*"
        ]
    )
    with recommender() as url:
        deployment.write_text(json.dumps(wrong | {"gateway_url": url}))
        result = project.runpytest("-m", "drill", "--drill-dry", "--drill-stack", str(deployment))
    result.assert_outcomes(skipped=1)


@contextlib.contextmanager
def recommender() -> Iterator[str]:
    """A loopback HTTP server answering the chaos-rec gateway contract (a stand-in gateway)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"items": [{"item_id": 1}], "fallback": "none"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


GLOBAL_CONTROL = """
import os

def _say(text):
    with open(os.environ["CR_SEEN"], "a") as fh:
        fh.write(text + "\\n")

def before_experiment_control(context, **kwargs):
    _say("control before " + context["title"])

def notify(channel, event):
    _say("event " + event["name"])
"""


def test_the_ctk_settings_file_brings_global_controls_and_notifications(
    project: pytest.Pytester, write_experiment: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = project.path / "seen.txt"
    monkeypatch.setenv("CR_SEEN", str(seen))
    project.makepyfile(cr_globalctl=GLOBAL_CONTROL)
    settings = project.path / "ctk-settings.yaml"
    settings.write_text(
        "controls:\n  recorder:\n    provider:\n      type: python\n      module: cr_globalctl\n"
        "notifications:\n  - type: plugin\n    module: cr_globalctl\n"
    )
    write_experiment("noted")
    result = project.runpytest("-m", "drill", "--drill-ctk-settings", str(settings))
    result.assert_outcomes(passed=1)
    assert seen.read_text().splitlines() == [
        "event run-started",
        "control before noted drill",
        "event run-completed",
    ]
    result = project.runpytest("-m", "drill", "--drill-ctk-settings", "nope.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # before any drill
    result.stderr.fnmatch_lines(["*Chaos Toolkit settings file not found: *nope.yaml*"])
