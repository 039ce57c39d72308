"""A committed drill runs standalone with the stock Chaos Toolkit CLI and exits 0 on a healthy stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sensitivity.stackutil import EXPERIMENTS, catalogue_stack
from tests.support.chaos_cli import chaos

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """State dir of a live reference stack (reused via CHAOS_REC_CATALOGUE_STATE_DIR)."""
    with catalogue_stack(tmp_path_factory.mktemp("chaos-run-stack")) as sdir:
        yield sdir


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.json")), ids=lambda p: p.stem)
def test_chaos_validate_accepts_every_experiment(path: Path, tmp_path: Path) -> None:
    res = chaos("validate", str(path), cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.timeout(500)
def test_chaos_run_gpu_node_loss_standalone_exits_0(stack_dir: Path, tmp_path: Path) -> None:
    journal = tmp_path / "journal.json"
    res = chaos(
        "run", "--journal-path", str(journal), str(EXPERIMENTS / "gpu_node_loss.json"),
        cwd=tmp_path, env={"CHAOS_REC_STATE_DIR": str(stack_dir)},
    )  # fmt: skip
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
