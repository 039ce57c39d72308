"""A committed drill runs standalone with the stock Chaos Toolkit CLI and exits 0 on a healthy stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sensitivity.stackutil import EXPERIMENTS, catalogue_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """State dir of a live reference stack (reused via CHAOS_REC_CATALOGUE_STATE_DIR)."""
    with catalogue_stack(tmp_path_factory.mktemp("chaos-run-stack")) as sdir:
        yield sdir


def _chaos(args: list[str], sdir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CHAOS_REC_STATE_DIR=str(sdir), HF_HUB_OFFLINE="1")
    env["TRANSFORMERS_OFFLINE"] = "1"
    chaos = str(Path(sys.executable).parent / "chaos")
    return subprocess.run(
        [chaos, "--no-version-check", *args],
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.json")), ids=lambda p: p.stem)
def test_chaos_validate_accepts_every_experiment(path: Path, tmp_path: Path) -> None:
    res = subprocess.run(
        [str(Path(sys.executable).parent / "chaos"), "--no-version-check", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.timeout(500)
def test_chaos_run_gpu_node_loss_standalone_exits_0(stack_dir: Path, tmp_path: Path) -> None:
    journal = tmp_path / "journal.json"
    res = _chaos(
        ["run", "--journal-path", str(journal), str(EXPERIMENTS / "gpu_node_loss.json")],
        stack_dir,
        tmp_path,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    data = json.loads(journal.read_text(encoding="utf-8"))
    assert data["status"] == "completed" and data["deviated"] is False
    verdict = data["chaos_rec"]
    assert verdict["passed"] is True and verdict["problems"] == []
    judged = {(r["slo"], r["phase"]) for r in verdict["slo"]["results"]}
    assert {("availability", "fault"), ("max_recovery_s", "recovery")} <= judged
    run_dir = Path(verdict["run_dir"])
    phases = [json.loads(x)["phase"] for x in (run_dir / "phases.jsonl").read_text().splitlines()]
    assert phases[:3] == ["steady", "fault", "recovery"]
    actions = {r["activity"]["name"]: r["status"] for r in data["run"]}
    assert actions["kill-replica-0"] == "succeeded"
    assert actions["wait-for-replica-0"] == "succeeded"
