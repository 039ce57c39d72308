"""The whole reference stack (fault proxy, 2 replicas, gateway) through `chaos-rec stack`."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from chaos_rec.stack import load_state, signal_component, wait_component_ready
from chaos_rec.stack.procs import is_alive, port_in_use
from tests.support import stacks
from tests.support.procs import free_port
from tests.support.stacks import free_base_port

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = Path(os.environ.get("CHAOS_REC_BUNDLE", ROOT / "bundles" / "reference"))
NEEDED = ("serving.model_server", "serving.gateway", "chaos_rec.toxiproxy", "training")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not (BUNDLE / "manifest.json").exists(), reason=f"no bundle at {BUNDLE}"),
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in NEEDED), reason="stack parts missing"
    ),
]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return stacks.cli(*args, timeout=600)  # a full stack loads the model: minutes on 2 cores


def test_full_stack_up_recommend_survive_replica_loss_down(tmp_path: Path) -> None:
    sdir = tmp_path / "state"
    base, tox = free_base_port(), free_port()
    cfg = tmp_path / "stack.toml"
    cfg.write_text(f'[stack]\nmodel_server_threads = 1\nbundle = "{BUNDLE}"\n')
    res = cli("stack", "up", "--config", str(cfg), "--state-dir", str(sdir), "--replicas", "2",
              "--base-port", str(base), "--toxiproxy-port", str(tox))  # fmt: skip
    try:
        assert res.returncode == 0, res.stderr + _logs(sdir)
        status = cli("stack", "status", "--state-dir", str(sdir), "--json")
        state = json.loads(status.stdout)
        names = list(state["components"])
        scraped = ["prometheus"] if shutil.which("prometheus") else []  # make sysdeps has it
        assert names == ["redis", "toxiproxy", "replica-0", "replica-1", "gateway", *scraped]
        assert all(c["status"] == "ready" for c in state["components"].values())
        assert state["holdout"] and Path(state["holdout"]).exists()
        proxies = httpx.get(f"{state['toxiproxy_url']}/proxies", timeout=5).json()
        assert sorted(proxies) == ["feature-store", "replica-0", "replica-1"]
        holdout = json.loads(Path(state["holdout"]).read_text())
        user = int(holdout[0]["user_id"])
        url = state["gateway_url"] + "/v1/recommend"
        body = httpx.post(url, json={"user_id": user, "k": 5, "query": None}, timeout=30).json()
        assert len(body["items"]) == 5 and body["replica"] in ("replica-0", "replica-1")
        assert body["fallback"] == "none"  # features came from Redis through the link
        # lose a "GPU node": the gateway keeps answering, the supervisor brings it back
        signal_component("replica-0", "kill", state_dir=sdir)
        for _ in range(5):
            r = httpx.post(url, json={"user_id": user, "k": 5, "query": None}, timeout=30)
            assert r.status_code == 200
        wait_component_ready("replica-0", 300, state_dir=sdir)
        assert load_state(sdir).component("replica-0")["restarts"] == 1
    finally:
        pids = _pids(sdir)
        down = cli("stack", "down", "--state-dir", str(sdir))
    assert down.returncode == 0, down.stderr
    assert not any(is_alive(p) for p in pids)
    assert not any(port_in_use(p) for p in (base, base + 1, base + 10, base + 100, base + 200, tox))


def _logs(sdir: Path) -> str:
    out = []
    for log in sorted((sdir / "logs").glob("*.log")) if (sdir / "logs").exists() else []:
        out.append(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-15:]))
    return "\n".join(out)


def _pids(sdir: Path) -> list[int]:
    path = sdir / "stack.json"
    if not path.exists():
        return []
    comps = json.loads(path.read_text())["components"].values()
    return [int(c["pid"]) for c in comps if c["pid"]]
