"""The plugin starts the reference stack once per session for experiment drills."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos_rec import stack
from chaos_rec.errors import StackNotRunning
from tests.plugin.conftest import Writer, action
from tests.support.procs import free_port

CONTROL = {"name": "chaos-rec", "provider": {"type": "python", "module": "chaos_rec.controls"}}
NO_LOAD = {
    "chaos_rec_load": False,
    "chaos_rec_warmup_s": 0,
    "chaos_rec_safeguard_availability": None,
}

SUPERVISOR_PID = """
def supervisor_pid(state_dir, out):
    import json
    from pathlib import Path
    pid = json.loads((Path(state_dir) / "stack.json").read_text())["supervisor"]["pid"]
    with open(out, "a") as fh:
        fh.write(f"{pid}\\n")
    return pid
"""


@pytest.mark.integration
def test_one_reference_stack_for_all_experiment_drills_and_stopped_after(
    project: pytest.Pytester,
    write_experiment: Writer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "state"
    monkeypatch.setenv("CHAOS_REC_STATE_DIR", str(state_dir))
    monkeypatch.setenv("CHAOS_REC_BASE_PORT", str(free_port()))
    monkeypatch.setenv("CHAOS_REC_REPLICAS", "0")
    monkeypatch.setenv("CHAOS_REC_GATEWAY", "false")
    monkeypatch.setenv("CHAOS_REC_TOXIPROXY", "false")
    project.makepyfile(cr_stackprobe=SUPERVISOR_PID)
    pids = tmp_path / "pids.txt"
    for name in ("first", "second"):
        write_experiment(
            name,
            method=[action("pid", "supervisor_pid", state_dir=str(state_dir), out=str(pids))],
            extra={"controls": [CONTROL], "configuration": NO_LOAD},
        )
        path = project.path / "experiments" / f"{name}.json"
        exp = json.loads(path.read_text())
        exp["method"][0]["provider"]["module"] = "cr_stackprobe"
        path.write_text(json.dumps(exp))
    result = project.runpytest_subprocess("-m", "drill", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*started the reference stack in*"])
    seen = pids.read_text().split()
    assert len(seen) == 2 and seen[0] == seen[1], seen  # the same supervisor served both drills
    with pytest.raises(StackNotRunning):
        stack.load_state(state_dir)  # the session stopped the stack it started
