"""The reference stack's Prometheus: up with the stack, scraping it, in status, gone after down."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chaos_rec.stack import StackConfig, down, load_state, up
from chaos_rec.stack.procs import is_alive, port_in_use

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="no prometheus binary"),
]

BASE, TOX = 19540, 19595  # redis 19540, prometheus 19560 (no replicas, no gateway)


def _targets(url: str) -> dict[str, str]:
    data = httpx.get(url + "/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    return {t["labels"]["component"]: t["health"] for t in data}


def test_prometheus_runs_with_the_stack_and_is_gone_after_down(tmp_path: Path) -> None:
    sdir = tmp_path / "state"
    cfg = StackConfig(
        state_dir=sdir, base_port=BASE, replicas=0, gateway=False, toxiproxy_port=TOX, setup=False
    )
    state = up(cfg)
    try:
        url = state["prometheus_url"]
        assert url == f"http://127.0.0.1:{BASE + 20}"
        comp = state.component("prometheus")
        assert comp["status"] == "ready" and (sdir / "prometheus" / "prometheus.yml").is_file()
        deadline = time.monotonic() + 20
        while _targets(url).get("toxiproxy") != "up" and time.monotonic() < deadline:
            time.sleep(0.5)  # discovery applies its targets within ~5 s
        assert _targets(url) == {"toxiproxy": "up"}
        status = subprocess.run(
            [sys.executable, "-m", "chaos_rec", "stack", "status", "--state-dir", str(sdir)],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert f"prometheus_url: {url}" in status.stdout
        assert "prometheus  ready" in status.stdout
        assert load_state(sdir).get("notes") == []
        pid = comp["pid"]
    finally:
        down(sdir)
    assert pid is not None and not is_alive(pid)
    assert not port_in_use(BASE + 20)
    assert not (sdir / "prometheus").exists()  # its config and samples went with the stack


def test_without_the_binary_the_stack_comes_up_and_status_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdir = tmp_path / "state"
    redis = shutil.which("redis-server")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    if redis:
        (bindir / "redis-server").symlink_to(redis)
    monkeypatch.setenv("PATH", f"{bindir}:{Path(sys.executable).parent}")
    cfg = StackConfig(
        state_dir=sdir, base_port=BASE, replicas=0, gateway=False, toxiproxy_port=TOX, setup=False
    )
    state = up(cfg)
    try:
        assert "prometheus" not in state.get("components", {})
        assert state["prometheus_url"] is None
        [note] = state["notes"]
        assert note.startswith("prometheus not available: no prometheus binary on PATH")
        status = subprocess.run(
            [sys.executable, "-m", "chaos_rec", "stack", "status", "--state-dir", str(sdir)],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert f"note: {note}" in status.stdout
    finally:
        down(sdir)
