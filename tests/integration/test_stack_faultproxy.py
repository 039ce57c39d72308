"""The stack with its fault proxy: links created at start, `repair` undoes every fault."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import pytest
import redis

from chaos_rec.stack import StackConfig, down, load_state, repair, signal_component, up
from chaos_rec.stack.procs import is_alive, port_in_use
from tests.support.procs import free_port
from tests.support.stacks import free_base_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("chaos_rec.toxiproxy") is None, reason="no fault proxy yet"
    ),
]


def test_links_then_repair_undoes_faults(tmp_path: Path) -> None:
    cfg = StackConfig.from_dict(
        {"state_dir": tmp_path / "s", "base_port": free_base_port(), "replicas": 0,
         "gateway": False, "toxiproxy": True, "toxiproxy_port": free_port(),
         "prometheus": False, "ready_timeout_s": 20.0}
    )  # fmt: skip
    state = up(cfg)
    try:
        api = state["toxiproxy_url"]
        assert api == f"http://127.0.0.1:{cfg.toxiproxy_port}"
        assert [c["name"] for c in state.components()] == ["redis", "toxiproxy"]
        proxies = httpx.get(f"{api}/proxies", timeout=5).json()
        link = proxies["feature-store"]
        assert link["listen"] == f"127.0.0.1:{cfg.base_port + 1}"
        assert link["upstream"] == f"127.0.0.1:{cfg.base_port}"
        via_link = redis.Redis(port=cfg.base_port + 1, socket_timeout=2)
        assert via_link.ping()
        via_link.close()
        # faults: a toxic, a disabled link, a paused process
        httpx.post(f"{api}/proxies/feature-store/toxics", timeout=5,
                   json={"name": "slow", "type": "latency", "attributes": {"latency": 500}})  # fmt: skip
        httpx.post(f"{api}/proxies/feature-store", json={"enabled": False}, timeout=5)
        signal_component("redis", "stop", state_dir=cfg.state_dir)
        done = repair(cfg.state_dir)
        assert "resumed redis" in done
        assert "removed toxics from feature-store: slow" in done
        assert "re-enabled proxy feature-store" in done
        link = httpx.get(f"{api}/proxies/feature-store", timeout=5).json()
        assert link["enabled"] is True and link["toxics"] == []
        assert load_state(cfg.state_dir).component("redis")["status"] == "ready"
        assert repair(cfg.state_dir) == []  # nothing left to undo
        # a killed fault proxy comes back with its links (post-start hook runs again)
        signal_component("toxiproxy", "kill", state_dir=cfg.state_dir)
        assert "waited for toxiproxy to be ready again" in repair(cfg.state_dir)
        assert "feature-store" in httpx.get(f"{api}/proxies", timeout=5).json()
        assert load_state(cfg.state_dir).component("toxiproxy")["restarts"] == 1
    finally:
        pids = [c["pid"] for c in load_state(cfg.state_dir, require_live=False).components()]
        down(cfg.state_dir)
    assert not any(is_alive(p) for p in pids if p)
    assert not port_in_use(cfg.base_port + 1) and not port_in_use(cfg.toxiproxy_port)
