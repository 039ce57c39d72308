"""The Chaos Toolkit Toxiproxy extension (chaostoxi) works unchanged against our fault proxy."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.toxiproxy.client import ToxiproxyClient
from chaos_rec.toxiproxy.testing import running_fault_proxy
from tests.support.chaos_cli import chaos

pytestmark = pytest.mark.integration


@pytest.fixture
def api() -> Iterator[str]:
    with running_fault_proxy(seed=3) as url:
        yield url


def _action(name: str, module: str, func: str, **arguments: Any) -> dict[str, Any]:
    return {
        "type": "action",
        "name": name,
        "provider": {"type": "python", "module": module, "func": func, "arguments": arguments},
    }


def _probe(name: str, module: str, func: str, **arguments: Any) -> dict[str, Any]:
    activity = _action(name, module, func, **arguments)
    activity["type"] = "probe"
    return activity


PA = "chaostoxi.proxy.actions"
PP = "chaostoxi.proxy.probes"
TA = "chaostoxi.toxic.actions"


def _experiment(redis_port: int) -> dict[str, Any]:
    toxics = [
        _action(
            "latency",
            TA,
            "create_latency_toxic",
            for_proxy="fs",
            toxic_name="lat",
            latency=50,
            jitter=5,
        ),
        _action(
            "bandwidth",
            TA,
            "create_bandwith_degradation_toxic",
            for_proxy="fs",
            toxic_name="bw",
            rate=100,
        ),
        _action(
            "slow_close",
            TA,
            "create_slow_connection_close_toxic",
            for_proxy="fs",
            toxic_name="sc",
            delay=10,
        ),
        _action(
            "timeout", TA, "create_timeout_toxic", for_proxy="fs", toxic_name="to", timeout=1000
        ),
        _action(
            "slicer",
            TA,
            "create_slicer_toxic",
            for_proxy="fs",
            toxic_name="sl",
            average_size=10,
            size_variation=2,
            delay=100,
        ),
        _action(
            "limit_data",
            TA,
            "create_limiter_toxic",
            for_proxy="fs",
            toxic_name="ld",
            bytes_limit=4096,
        ),
        _action(
            "reset_peer",
            TA,
            "create_toxic",
            for_proxy="fs",
            toxic_name="rp",
            toxic_type="reset_peer",
            stream="upstream",
            toxicity=0.5,
            attributes={"timeout": 100},
        ),
        _action(
            "noop",
            TA,
            "create_toxic",
            for_proxy="fs",
            toxic_name="np",
            toxic_type="noop",
            attributes={},
        ),
    ]
    return {
        "version": "1.0.0",
        "title": "chaostoxi drives the chaos-rec fault proxy",
        "description": "every chaostoxi action and probe against our Toxiproxy API",
        "configuration": {},  # toxiproxy_url is filled in by the test
        "steady-state-hypothesis": {
            "title": "nothing special",
            "probes": [
                {
                    "type": "probe",
                    "name": "python-alive",
                    "tolerance": 0,
                    "provider": {"type": "process", "path": sys.executable, "arguments": "-c pass"},
                }
            ],
        },
        "method": [
            _action(
                "create",
                PA,
                "create_proxy",
                proxy_name="fs",
                upstream_host="127.0.0.1",
                upstream_port=redis_port,
            ),
            _probe("exists", PP, "proxy_exist", proxy_name="fs"),
            _probe("listen", PP, "get_proxy_attribute", proxy_name="fs", attribute="listen"),
            *toxics,
            _probe("toxics", PP, "get_proxy_attribute", proxy_name="fs", attribute="toxics"),
            _action("drop-latency", TA, "delete_toxic", for_proxy="fs", toxic_name="lat"),
            _action("disable", PA, "disable_proxy", proxy_name="fs"),
            _probe(
                "enabled-after-disable",
                PP,
                "get_proxy_attribute",
                proxy_name="fs",
                attribute="enabled",
            ),
            _action("enable", PA, "enable_proxy", proxy_name="fs"),
            _action(
                "modify",
                PA,
                "modify_proxy",
                proxy_name="fs",
                upstream_address=f"localhost:{redis_port}",
            ),
            _probe("upstream", PP, "get_proxy_attribute", proxy_name="fs", attribute="upstream"),
            _action("reset", PA, "reset"),
            _probe(
                "toxics-after-reset", PP, "get_proxy_attribute", proxy_name="fs", attribute="toxics"
            ),
            _action(
                "duplicate-create",
                PA,
                "create_proxy",
                proxy_name="fs",
                upstream_host="127.0.0.1",
                upstream_port=redis_port,
            ),
            _action(
                "forbidden-upstream",
                PA,
                "create_proxy",
                proxy_name="evil",
                upstream_host="10.1.2.3",
                upstream_port=6379,
            ),
        ],
        "rollbacks": [_action("delete", PA, "delete_proxy", proxy_name="fs")],
    }


def test_chaostoxi_experiment_runs_unchanged(api: str, redis_url: str, tmp_path: Path) -> None:
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    exp = _experiment(redis_port)
    exp["configuration"] = {"toxiproxy_url": api}
    (tmp_path / "exp.json").write_text(json.dumps(exp))
    journal_path = tmp_path / "journal.json"
    proc = chaos(
        "--settings", str(tmp_path / "settings.yaml"), "run", "--journal-path", str(journal_path),
        "--rollback-strategy", "always", "exp.json", cwd=tmp_path, timeout=120,
    )  # fmt: skip
    journal = json.loads(journal_path.read_text())
    runs = {r["activity"]["name"]: r for r in journal["run"]}
    status = {name: r["status"] for name, r in runs.items()}
    expected_failures = {"duplicate-create", "forbidden-upstream"}
    assert {n for n, s in status.items() if s != "succeeded"} == expected_failures, proc.stderr[
        -3000:
    ]
    assert "AssertionError" in runs["duplicate-create"]["exception"][-1]

    assert runs["exists"]["output"] is True
    assert runs["listen"]["output"].startswith("127.0.0.1:")  # 0.0.0.0 binds loopback
    toxics = {t["name"]: t for t in runs["toxics"]["output"]}
    assert set(toxics) == {"lat", "bw", "sc", "to", "sl", "ld", "rp", "np"}
    assert toxics["lat"]["attributes"] == {"latency": 50, "jitter": 5}
    assert toxics["sl"]["attributes"] == {"average_size": 10, "size_variation": 2, "delay": 100}
    assert toxics["ld"]["attributes"] == {"bytes": 4096}
    assert toxics["rp"]["stream"] == "upstream" and toxics["rp"]["toxicity"] == 0.5
    assert runs["enabled-after-disable"]["output"] is False
    assert runs["upstream"]["output"] == f"localhost:{redis_port}"
    assert runs["toxics-after-reset"]["output"] == []

    assert journal["rollbacks"][0]["status"] == "succeeded"
    assert ToxiproxyClient(api).proxies() == {}  # the rollback deleted the proxy
