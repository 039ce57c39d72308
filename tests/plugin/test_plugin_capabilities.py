"""Capabilities at both doors, with the real catalogue drills against a deployment file.

The deployment speaks OIP v2 without a fallback marker and names a replica and a real fault
proxy but no processes backend: `gpu_node_loss` (needs `processes`) is skipped under pytest and stopped by
`chaos run` before any fault, each with one line naming the capability.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chaos_rec.toxiproxy.client import ToxiproxyClient
from tests.plugin.conftest import Writer, probe
from tests.support.chaos_cli import chaos

ROOT = Path(__file__).parents[2]
OIP = {"kind": "oip-v2", "model": "recommender", "items_output": "item_ids"}


@pytest.fixture
def oip_deployment(project: pytest.Pytester, fault_proxy_url: str) -> Path:
    path = project.path / "oip.json"
    path.write_text(json.dumps({
        "gateway_url": "http://127.0.0.1:9", "toxiproxy_url": fault_proxy_url, "traffic": OIP,
        "users": [1, 2, 3], "replicas": [{"name": "r0", "http_url": "http://127.0.0.1:9"}],
    }))  # fmt: skip
    for name in ("gpu_node_loss", "gpu_node_hang"):
        shutil.copy(ROOT / "experiments" / f"{name}.json", project.path / "experiments")
    return path


def test_a_drill_whose_capability_is_missing_is_skipped_with_the_reason(
    project: pytest.Pytester, oip_deployment: Path
) -> None:
    result = project.runpytest("-m", "drill", "--drill-stack", str(oip_deployment), "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([
        "*drill gpu_node_hang: the target lacks processes (kill, hang and resume a replica and "
        "wait until it is restored; needed by hang_replica (hang-replica-0))*",
        "*drill gpu_node_loss: the target lacks processes *needed by kill_replica*",
    ])  # fmt: skip
    assert "Traceback" not in result.stdout.str()


@pytest.mark.integration
def test_chaos_run_stops_before_any_fault_naming_the_capability(
    tmp_path: Path, oip_deployment: Path, fault_proxy_url: str
) -> None:
    journal = tmp_path / "journal.json"
    experiment = json.loads((ROOT / "experiments" / "gpu_node_loss.json").read_text())
    experiment["configuration"]["chaos_rec_target"] = str(oip_deployment)
    path = tmp_path / "gpu_node_loss.json"
    path.write_text(json.dumps(experiment))
    env = {"CHAOS_REC_STATE_DIR": str(tmp_path / "state")}
    proc = chaos(
        "run", "--journal-path", str(journal), str(path), cwd=tmp_path, env=env, timeout=120
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert (
        f"chaos-rec: target {oip_deployment} lacks processes (kill, hang and resume a replica "
        "and wait until it is restored; needed by kill_replica (kill-replica-0)): stopped before "
        "any fault"
    ) in out
    ran = json.loads(journal.read_text())["run"] if journal.exists() else []
    assert [a for a in ran if a["activity"]["type"] == "action"] == []  # nothing was injected
    assert not (tmp_path / "state" / "stack.json").exists()  # no stack, no load
    assert ToxiproxyClient(fault_proxy_url).toxics("feature-store") == []


PROMQL_SLO = {"fault": {"promql": {"name": "errors", "query": "sum(up)", "max": 1}}}


def test_a_promql_drill_is_skipped_on_a_deployment_without_prometheus(
    project: pytest.Pytester, write_experiment: Writer
) -> None:
    dep = project.path / "deployment.json"
    dep.write_text(json.dumps({"gateway_url": "http://127.0.0.1:9"}))
    write_experiment(
        "server_side", extra={"extensions": [{"name": "chaos_rec", "slo": PROMQL_SLO}]}
    )
    write_experiment("client_side", method=[probe("noop", "value", v=1)])
    result = project.runpytest("-m", "drill", "--drill-stack", str(dep), "-rs")
    result.assert_outcomes(skipped=1, passed=1)
    result.stdout.fnmatch_lines(
        ["*drill server_side: the target lacks prometheus (a Prometheus that scrapes the target "
         "(server-side SLOs); needed by the server-side budget errors)*"]
    )  # fmt: skip
