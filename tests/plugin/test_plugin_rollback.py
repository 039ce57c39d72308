"""Rollback guarantee: Ctrl-C, failures and crashed sessions leave no fault behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from chaos_rec.toxiproxy.client import ToxiproxyClient
from tests.plugin.conftest import Writer, action
from tests.support.procs import default_sigint, pids_mentioning, sigint_reaches_children, wait_gone


def _toxics(url: str) -> dict[str, list[str]]:
    return {
        n: [t["name"] for t in p.get("toxics", [])]
        for n, p in ToxiproxyClient(url).proxies().items()
    }


def test_ctrl_c_during_an_experiment_rolls_back_and_leaves_no_toxic(
    project: pytest.Pytester, write_experiment: Writer, deployment: Path, fault_proxy_url: str
) -> None:
    rolled_back = project.path / "rolled-back"
    write_experiment(
        "a_interrupted",
        method=[
            action("inject", "add_toxic", url=fault_proxy_url, link="feature-store"),
            action("ctrl-c", "sigint"),
        ],
        rollbacks=[action("rollback", "touch", path=str(rolled_back))],
    )
    write_experiment("b_never_runs")
    result = project.runpytest_subprocess("-m", "drill", "--drill-stack", str(deployment), "-v")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert rolled_back.exists()
    assert _toxics(fault_proxy_url) == {"feature-store": []}
    assert not (project.path / ".chaos-rec" / "drill-in-progress.json").exists()
    out = result.stdout.str()
    assert "b_never_runs PASSED" not in out
    result.stdout.fnmatch_lines(
        ["*plugin repair: fault proxy: reset feature-store*", "*KeyboardInterrupt*"]
    )


def test_failed_drill_without_rollbacks_is_repaired_by_the_plugin(
    project: pytest.Pytester, write_experiment: Writer, deployment: Path, fault_proxy_url: str
) -> None:
    write_experiment(
        "leaky",
        method=[
            action("inject", "add_toxic", url=fault_proxy_url, link="feature-store"),
            action("fails", "boom"),
        ],
    )
    result = project.runpytest(
        "-m", "drill", "--drill-stack", str(deployment), "--drill-report", "r"
    )
    result.assert_outcomes(failed=1)
    assert _toxics(fault_proxy_url) == {"feature-store": []}
    journal = json.loads((project.path / "r" / "drills" / "leaky" / "journal.json").read_text())
    assert journal["experiment"]["configuration"]["chaos_rec_target"] == str(deployment)


def test_next_session_repairs_what_a_crashed_one_left(
    project: pytest.Pytester, write_experiment: Writer, deployment: Path, fault_proxy_url: str
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = project.path / ".chaos-rec"
    state.mkdir()
    (state / "drill-in-progress.json").write_text(
        json.dumps(
            {
                "pid": dead.pid,
                "drill": "gpu_node_loss",
                "started": 0,
                "toxiproxy_url": fault_proxy_url,
            }
        )
    )
    ToxiproxyClient(fault_proxy_url).add_toxic(
        "feature-store", "latency", {"latency": 500}, name="left"
    )
    ToxiproxyClient(fault_proxy_url).disable("feature-store")
    write_experiment("next_drill")
    result = project.runpytest("-m", "drill", "--drill-stack", str(deployment))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*drill gpu_node_loss (pid *) did not finish: repaired fault proxy: reset feature-store*"]
    )
    assert _toxics(fault_proxy_url) == {"feature-store": []}
    assert ToxiproxyClient(fault_proxy_url).get_proxy("feature-store")["enabled"] is True


def test_python_drill_fault_proxy_context_managers_and_ctrl_c(
    project: pytest.Pytester, deployment: Path, fault_proxy_url: str
) -> None:
    project.makepyfile(
        test_pydrill=textwrap.dedent(
            f"""
            import json, os, signal, time
            from chaos_rec.toxiproxy.client import ToxiproxyClient

            def test_toxic_and_cut(drill, fault_proxy):
                with fault_proxy.toxic("feature-store", "latency", latency=200) as toxic:
                    names = [t["name"] for t in ToxiproxyClient("{fault_proxy_url}").toxics("feature-store")]
                    assert names == [toxic["name"]]
                with fault_proxy.cut("feature-store"):
                    assert ToxiproxyClient("{fault_proxy_url}").get_proxy("feature-store")["enabled"] is False
                phases = [p["phase"] for p in drill.phases()]
                assert phases == ["fault", "recovery", "fault", "recovery"]
                assert ToxiproxyClient("{fault_proxy_url}").toxics("feature-store") == []

            def test_zz_interrupted(drill, fault_proxy):
                ToxiproxyClient("{fault_proxy_url}").add_toxic("feature-store", "timeout", {{"timeout": 0}})
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            """
        )
    )
    (project.path / "test_pydrill.py").rename(project.path / "tests" / "test_pydrill.py")
    with sigint_reaches_children():  # the child Ctrl-Cs itself: it must not inherit SIG_IGN
        result = project.runpytest_subprocess("-m", "drill", "--drill-stack", str(deployment), "-v")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*test_toxic_and_cut PASSED*"])
    assert _toxics(fault_proxy_url) == {"feature-store": []}
    assert not (project.path / ".chaos-rec" / "drill-in-progress.json").exists()


def test_a_second_live_session_on_the_same_state_dir_is_refused(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = project.path / ".chaos-rec"
        state.mkdir()
        marker = {"pid": other.pid, "drill": "gpu_node_loss", "started": 0, "toxiproxy_url": None}
        (state / "drill-in-progress.json").write_text(json.dumps(marker))
        write_experiment("mine")
        result = project.runpytest("-m", "drill")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [f"drill mine: another drill session (pid {other.pid}) is running drill gpu_node_loss*"]
        )
        assert json.loads((state / "drill-in-progress.json").read_text())["pid"] == other.pid
    finally:
        other.kill()
        other.wait()


def test_timeout_mid_drill_still_repairs(
    project: pytest.Pytester, write_experiment: Writer, deployment: Path, fault_proxy_url: str
) -> None:
    write_experiment(
        "hangs",
        method=[
            action("inject", "add_toxic", url=fault_proxy_url, link="feature-store"),
            action("hang", "nap", seconds=30),
        ],
    )
    result = project.runpytest_subprocess(
        "-m", "drill", "--drill-stack", str(deployment), "-p", "timeout", "--timeout", "2"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout*", "INTERRUPTED*hangs*"])
    assert _toxics(fault_proxy_url) == {"feature-store": []}
    assert not (project.path / ".chaos-rec" / "drill-in-progress.json").exists()


def test_python_drill_fault_errors_are_one_line(
    project: pytest.Pytester, deployment: Path, fault_proxy_url: str
) -> None:
    project.makepyfile(
        test_pybad=textwrap.dedent(
            """
            def test_unknown_link(drill, fault_proxy):
                with fault_proxy.toxic("no-such-link", "latency", latency=10):
                    pass
            """
        )
    )
    (project.path / "test_pybad.py").rename(project.path / "tests" / "test_pybad.py")
    result = project.runpytest("-m", "drill", "--drill-stack", str(deployment))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["drill test_unknown_link: ProxyError: *no-such-link*"])
    assert (
        "Traceback" not in result.stdout.str()
        and "def test_unknown_link" not in result.stdout.str()
    )


# Moments of a drill to Ctrl-C: seconds after its in-progress marker appeared (the steady-state
# hypothesis, the toxic going in, the fault held, the next action).
DRILL_MOMENTS = (0.0, 0.2, 0.5, 1.0, 1.6, 2.4)


@pytest.mark.parametrize("delay", DRILL_MOMENTS, ids=[f"drill+{d}s" for d in DRILL_MOMENTS])
def test_ctrl_c_at_any_moment_of_a_drill_leaves_nothing(
    project: pytest.Pytester,
    write_experiment: Writer,
    deployment: Path,
    fault_proxy_url: str,
    delay: float,
    record_property: Callable[[str, object], None],
) -> None:
    write_experiment(
        "a_swept",
        method=[
            action("nap", "nap", seconds=0.3),
            action("inject", "add_toxic", url=fault_proxy_url, link="feature-store"),
            action("hold", "nap", seconds=3),
        ],
    )
    marker = project.path / ".chaos-rec" / "drill-in-progress.json"
    cmd = [sys.executable, "-m", "pytest", "-m", "drill", "--drill-stack", str(deployment)]
    proc = project.popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    left = wait_gone(lambda: pids_mentioning(str(project.path)), 5.0)
    record_property(
        "signal_sweep", {"moment": f"drill+{delay}s", "rc": proc.returncode, "leftovers": len(left)}
    )
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out.decode()[-2000:] + err.decode()
    assert _toxics(fault_proxy_url) == {"feature-store": []}
    assert ToxiproxyClient(fault_proxy_url).get_proxy("feature-store")["enabled"] is True
    assert not marker.exists()
    assert left == []


def test_recovery_stops_the_load_generator_a_crashed_session_left(tmp_path: Path) -> None:
    from chaos_rec.core.guard import DrillGuard

    state = tmp_path / "state"
    run = state / "runs" / "20261201T000000Z-crashed"
    run.mkdir(parents=True)
    # a stand-in for a Locust that outlived its session (stop_stale checks the command line)
    stray = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "locust"], start_new_session=True
    )
    (run / "load.pid").write_text(str(stray.pid))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (state / "drill-in-progress.json").write_text(json.dumps({"pid": dead.pid, "drill": "d"}))
    lines = DrillGuard(state).recover()
    assert stray.wait(timeout=5) != 0  # killed
    assert lines == [
        f"drill d (pid {dead.pid}) did not finish: repaired stopped the load generator of run "
        f"{run.name}"
    ]
    assert not (run / "load.pid").exists()
