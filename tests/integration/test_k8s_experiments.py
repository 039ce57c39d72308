"""The Kubernetes experiments, proved offline (no cluster exists here; deploy/k8s/README.md).

Every experiment under deploy/k8s/experiments passes the stock ``chaos validate``; every chaosk8s
activity chaos-rec calls or an experiment names, with its argument names, is one that
``chaos discover chaostoolkit-kubernetes`` lists; the drain is always rolled back; and the drill
plugin collects the experiments as drills of the example deployment file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos_rec.backends.kube import CHAOSK8S_CALLS
from tests.support.chaos_cli import chaos
from tests.support.k8s import EXAMPLE, EXPERIMENTS, K8S, ROOT

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=[e.name for e in EXPERIMENTS])
def test_every_kubernetes_experiment_passes_chaos_validate(
    experiment: Path, tmp_path: Path
) -> None:
    env = {"PYTHONPATH": str(ROOT), "CHAOS_REC_DRILL_STACK": str(EXAMPLE),
           "CHAOS_REC_K8S_DRAIN_NODE": "gpu-node-1", "CHAOS_REC_KUBE_CONTEXT": "gpu-staging"}  # fmt: skip
    out = chaos("--no-log-file", "validate", str(experiment), cwd=tmp_path, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "experiment syntax and semantic look valid" in out.stderr


@pytest.fixture(scope="module")
def discovered(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], set[str]]:
    where = tmp_path_factory.mktemp("discover")
    out = chaos(
        "--no-log-file", "discover", "--no-install", "--no-system-info",
        "--discovery-path", str(where / "d.json"), "chaostoolkit-kubernetes", cwd=where, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    activities = json.loads((where / "d.json").read_text())["activities"]
    assert len(activities) > 50
    return {(a["mod"], a["name"]): {arg["name"] for arg in a.get("arguments", [])}
            for a in activities}  # fmt: skip


def _chaosk8s_activities() -> Iterator[tuple[str, str, str, set[str]]]:
    for experiment in EXPERIMENTS:
        data = json.loads(experiment.read_text())
        hypothesis = data.get("steady-state-hypothesis", {}).get("probes", [])
        for activity in [*hypothesis, *data["method"], *data.get("rollbacks", [])]:
            provider = activity["provider"]
            if provider.get("module", "").startswith("chaosk8s"):
                yield (experiment.name, provider["module"], provider["func"],
                       set(provider.get("arguments", {})))  # fmt: skip


def test_the_backend_calls_only_what_chaos_discover_lists(
    discovered: dict[tuple[str, str], set[str]],
) -> None:
    for method, (module, func, arguments) in CHAOSK8S_CALLS.items():
        assert (module, func) in discovered, method
        assert arguments <= discovered[(module, func)], (
            method,
            arguments - discovered[(module, func)],
        )


def test_the_experiments_name_only_discovered_activities_and_arguments(
    discovered: dict[tuple[str, str], set[str]],
) -> None:
    used = list(_chaosk8s_activities())
    funcs = {func for _, _, func, _ in used}
    assert {"drain_nodes", "uncordon_node", "deployment_fully_available", "add_latency",
            "delete_network_fault"} <= funcs  # fmt: skip
    for experiment, module, func, arguments in used:
        assert (module, func) in discovered, (experiment, module, func)
        unknown = arguments - discovered[(module, func)]
        assert not unknown, (experiment, func, unknown)


def test_the_drain_is_rolled_back_by_uncordoning_the_same_node_always() -> None:
    data = json.loads((K8S / "experiments" / "gpu_node_drain.json").read_text())
    (drain,) = [a for a in data["method"] if a["provider"].get("func") == "drain_nodes"]
    (uncordon,) = [a for a in data["rollbacks"] if a["provider"].get("func") == "uncordon_node"]
    assert drain["provider"]["arguments"]["name"] == uncordon["provider"]["arguments"]["name"]
    assert data["runtime"]["rollbacks"]["strategy"] == "always"
    for activity in (drain, uncordon):
        assert activity["provider"]["secrets"] == ["k8s"]  # the pinned KUBERNETES_CONTEXT


def _collect(**env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("CHAOS_REC_K8S_DRAIN_NODE", "CHAOS_REC_KUBE_CONTEXT")}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "-m", "drill", "--drill-path", str(K8S / "experiments"), "--drill-stack", str(EXAMPLE),
         str(K8S / "experiments")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**environ, "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip


def test_the_drill_plugin_collects_the_experiments_as_drills_of_the_example() -> None:
    out = _collect(CHAOS_REC_K8S_DRAIN_NODE="gpu-node-1", CHAOS_REC_KUBE_CONTEXT="in-cluster")
    assert out.returncode == 0, out.stdout[-2000:]
    assert "gpu_node_drain.json::gpu_node_drain" in out.stdout
    assert "feature_store_latency.chaos-mesh.json::feature_store_latency.chaos-mesh" in out.stdout
    # the node to drain is never guessed: without it the drill does not even collect
    out = _collect(CHAOS_REC_KUBE_CONTEXT="in-cluster")
    assert out.returncode != 0
    assert "environment key that does not exist: CHAOS_REC_K8S_DRAIN_NODE" in out.stdout
