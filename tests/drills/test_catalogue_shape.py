"""The catalogue's shape: every experiment is valid, complete, and has a sensitivity case.

Pure and fast (no stack): chaoslib validation, the one control, an SLO spec that parses, an
actionable description, a fault removed in the method and a rollback behind it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.drill.experiment import load_drill
from chaos_rec.slo import SLOSpec
from tests.sensitivity.test_drills_sensitive import CASES

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
FILES = sorted(EXPERIMENTS.glob("*.json"))
ISSUE_DRILLS = {
    "gpu_node_loss",
    "gpu_node_hang",
    "feature_store_latency",
    "feature_store_outage",
    "feature_store_blackhole",
    "feature_store_data_loss",
    "network_partition",
    "bandwidth_degradation",
    "bad_model_rollout",
    "traffic_spike",
}
INJECT = {
    "kill_replica": "wait_replica_restored",
    "hang_replica": "resume_replica",
    "add_toxic": "remove_toxic",
    "cut_link": "restore_link",
    "restart_redis_empty": "rematerialize_features",
    "spike_load": "end_spike",
    "push_corrupt_bundle": "restore_bundle",
}
CONTROL = {"name": "chaos-rec", "provider": {"type": "python", "module": "chaos_rec.controls"}}


def _funcs(activities: list[dict[str, Any]]) -> list[str]:
    return [a["provider"].get("func", "") for a in activities]


def test_the_catalogue_holds_every_scenario_of_the_issue_and_a_compound_one() -> None:
    names = {f.stem for f in FILES}
    assert names >= ISSUE_DRILLS
    compound = [f for f in FILES if "compound" in json.loads(f.read_text())["tags"]]
    assert compound, "no compound scenario"


def test_every_drill_has_a_sensitivity_case() -> None:
    assert {f.stem for f in FILES} == {c.drill for c in CASES}


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_experiment_is_a_complete_drill(path: Path) -> None:
    spec = load_drill(path)  # chaoslib validation + SLO spec
    exp = spec.experiment
    assert exp["controls"] == [CONTROL]
    slo = SLOSpec.parse(spec.slo or {})
    assert {"steady", "fault", "recovery"} <= set(slo.phases)
    assert slo.phases["fault"].availability is not None
    assert len(exp["description"]) > 300 and "Look at" in exp["description"]
    assert exp["tags"]
    probes = _funcs(exp["steady-state-hypothesis"]["probes"])
    assert {"gateway_ready", "replicas_ready", "slo_met"} <= set(probes)
    method = _funcs(exp["method"])
    injected = [f for f in method if f in INJECT]
    assert injected, "the method injects no fault"
    for fault in injected:  # removed in the method, not only by the rollbacks
        assert INJECT[fault] in method[method.index(fault) :], f"{fault} is never undone"
    assert "time_to_recover" in method
    assert exp["rollbacks"], "no rollback behind the method"
