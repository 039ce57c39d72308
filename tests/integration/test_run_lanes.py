"""`make test`'s lane runner on a small project: real pytest lanes, real signals, one exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support import cpu_share
from tests.support.lanes import REPO, YIELDING_SHARE
from tests.support.offline import offline_env
from tests.support.procs import default_sigint, ignore_sigint, pids_with_env, wait_gone

pytestmark = pytest.mark.integration

SLEEPER = """
import os, pathlib, time

def test_sleeps():
    cgroups = pathlib.Path("/proc/self/cgroup").read_text()
    pathlib.Path(os.environ["LANE_STARTED"], os.environ["CHAOS_REC_TEST_LANE"][0]).write_text(cgroups)
    time.sleep(float(os.environ.get("LANE_SLEEP", "0")))
"""


def _project(tmp: Path, lane0: str = SLEEPER, lane1: str = SLEEPER) -> Path:
    """A project of the suite's shape: lane 1 runs experiments/, tests/drills/ (both empty
    here) and tests/sensitivity/."""
    root = tmp / "proj"
    for rel, text in (("tests/unit/test_a.py", lane0), ("tests/sensitivity/test_b.py", lane1)):
        (root / rel).parent.mkdir(parents=True)
        (root / rel).write_text(text, encoding="utf-8")
    (root / "experiments").mkdir()
    (root / "tests" / "drills").mkdir()
    (root / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n', encoding="utf-8"
    )
    (tmp / "started").mkdir()
    return root


def _runner(root: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tests.support.run_lanes", "--root", str(root), "--", *args]
    return subprocess.Popen(
        cmd, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=offline_env(LANE_STARTED=str(root.parent / "started"), **env),
        preexec_fn=default_sigint,
    )  # fmt: skip


def test_a_green_run_merges_both_lanes_junit_and_exits_0(tmp_path: Path) -> None:
    root = _project(tmp_path)
    junit = tmp_path / "reports" / "junit.xml"
    proc = _runner(root, f"--junitxml={junit}")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "[0] tests/unit/test_a.py ." in out and "[1] tests/sensitivity/test_b.py ." in out
    cases = [c.get("classname") for c in ET.parse(junit).getroot().iter("testcase")]
    assert sorted(cases) == ["tests.sensitivity.test_b", "tests.unit.test_a"]
    assert "run_lanes: 2 lane(s) in" in out
    started = root.parent / "started"
    probe = cpu_share.make(f"chaos-rec-probe-{uuid.uuid4().hex[:8]}", 0.5)
    if isinstance(probe, str):  # no cpu cgroup here: lane 0 says so and runs at the full weight
        assert f"run_lanes: lane 0 runs at the full CPU weight: {probe}" in out, out
        return
    probe.remove()
    group = f"chaos-rec-lane0-{proc.pid}"
    weight = round(cpu_share.FULL[probe.control] * YIELDING_SHARE)
    assert f"yields the CPU: {probe.control} {weight} of" in out
    assert f"/{group}\n" in (started / "0").read_text()  # the lane's pytest ran in the group
    # the drill lane stays where the runner was (this test's own group: in `make test`, lane 0's)
    assert (started / "1").read_text() == Path("/proc/self/cgroup").read_text()
    assert not (probe.path.parent / group).exists()  # and the group is gone afterwards


def test_a_failing_lane_fails_the_run_and_an_empty_lane_is_a_failure(tmp_path: Path) -> None:
    root = _project(tmp_path, lane1="def test_fails():\n    assert False\n")
    proc = _runner(root)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "run_lanes: lane 1: exit 1" in out, out
    proc = _runner(root, "-k", "test_sleeps")  # selects only lane 0's test
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "run_lanes: lane 1: exit 5 in" in out and "(collected no tests: a failure)" in out


def _wait_started(tmp: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while len(list((tmp / "started").iterdir())) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "lanes did not start"
        time.sleep(0.1)


def test_ctrl_c_reaches_every_lane_once_and_leaves_nothing_running(tmp_path: Path) -> None:
    root = _project(tmp_path)
    mark = uuid.uuid4().hex
    proc = _runner(root, LANE_SLEEP="60", LANES_TEST_MARK=mark)
    _wait_started(tmp_path, proc)
    proc.send_signal(signal.SIGINT)  # the runner alone, as a terminal's Ctrl-C reaches it
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out  # pytest's INTERRUPTED, from the first lane
    assert out.count("KeyboardInterrupt") >= 2 and "[0]" in out and "[1]" in out
    assert "run_lanes: lane 0: exit 2" in out and "run_lanes: lane 1: exit 2" in out
    assert wait_gone(lambda: pids_with_env("LANES_TEST_MARK", mark), 10.0) == []


def test_an_inherited_ignore_of_sigint_is_respected_by_runner_and_lanes(tmp_path: Path) -> None:
    root = _project(tmp_path)
    cmd = [sys.executable, "-m", "tests.support.run_lanes", "--root", str(root)]
    env = offline_env(LANE_STARTED=str(tmp_path / "started"), LANE_SLEEP="2")
    proc = subprocess.Popen(
        cmd, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
        preexec_fn=ignore_sigint,
    )  # fmt: skip
    _wait_started(tmp_path, proc)
    os.kill(proc.pid, signal.SIGINT)  # ignored, as by `nohup` or a background job
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "KeyboardInterrupt" not in out, out
