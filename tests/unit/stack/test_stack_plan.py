"""The component registry: order, ports, commands and links per docs/contracts.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import chaos_rec.stack as stack_pkg
from chaos_rec.errors import ConfigError, StackError, StackNotRunning
from chaos_rec.stack import StackConfig, StackState
from chaos_rec.stack.components import (
    ComponentSpec,
    Hook,
    StackPlan,
    _order,
    build_plan,
    find_redis_binary,
    missing_modules,
    start_waves,
)
from chaos_rec.stack.prometheus import MISSING_LINE, scrape_config
from chaos_rec.stack.readiness import Check
from chaos_rec.stack.state import read_state, write_state


def cfg(tmp_path: Path, **over: object) -> StackConfig:
    values: dict[str, object] = {"state_dir": tmp_path, "base_port": 20000, "bundle": tmp_path}
    values["prometheus"] = False  # its own tests below (whether it is installed varies)
    values.update(over)
    return StackConfig.from_dict(values)


def test_public_surface_is_pinned() -> None:
    assert sorted(stack_pkg.__all__) == sorted(
        ["ComponentState", "LinkState", "StackConfig", "StackState", "down", "load_state",
         "repair", "restart_component", "signal_component", "up", "wait_component_ready"]
    )  # fmt: skip


def test_full_plan_order_ports_and_commands(tmp_path: Path) -> None:
    plan = build_plan(cfg(tmp_path, replicas=2, admin_token="t0k"))
    names = [c.name for c in plan.components]
    assert names == ["redis", "toxiproxy", "replica-0", "replica-1", "gateway"]
    r1 = plan.component("replica-1")
    assert r1.ports == {"http": 20110, "grpc": 20111} and r1.replica == 1
    assert r1.endpoints["redis"] == "redis://127.0.0.1:20001/0"  # through the feature-store link
    cmd = list(r1.cmd)
    assert cmd[1:3] == ["-m", "serving.model_server"]
    assert cmd[cmd.index("--grpc-port") + 1] == "20111"
    # the token never goes on a command line (ps shows it to every local user)
    assert not any("t0k" in arg for c in plan.components for arg in c.cmd)
    assert "admin_token" not in plan.config.to_dict()  # nor into the config or state files
    assert r1.ready == Check("http", "http://127.0.0.1:20110/v2/health/ready")
    gw = list(plan.component("gateway").cmd)
    assert gw[gw.index("--replicas") + 1] == "replica-0=127.0.0.1:20200,replica-1=127.0.0.1:20201"
    assert gw[gw.index("--port") + 1] == "20010"
    assert plan.links == {
        "feature-store": {"listen": "127.0.0.1:20001", "upstream": "127.0.0.1:20000"},
        "replica-0": {"listen": "127.0.0.1:20200", "upstream": "127.0.0.1:20101"},
        "replica-1": {"listen": "127.0.0.1:20201", "upstream": "127.0.0.1:20111"},
    }
    assert plan.toxiproxy_url == "http://127.0.0.1:8474"
    assert plan.gateway_url == "http://127.0.0.1:20010"
    hooks = [h.name for h in plan.component("redis").hooks]
    assert hooks == ["materialize", "holdout"]
    assert [h.name for h in plan.component("toxiproxy").hooks] == ["links"]
    redis_cmd = plan.component("redis").cmd
    assert "--save" in redis_cmd and redis_cmd[redis_cmd.index("--save") + 1] == ""


def test_no_proxy_means_direct_wiring(tmp_path: Path) -> None:
    plan = build_plan(cfg(tmp_path, replicas=1, toxiproxy=False))
    assert [c.name for c in plan.components] == ["redis", "replica-0", "gateway"]
    assert plan.links == {} and plan.toxiproxy_url is None
    gw = list(plan.component("gateway").cmd)
    assert gw[gw.index("--replicas") + 1] == "replica-0=127.0.0.1:20101"
    assert plan.component("replica-0").endpoints["redis"] == "redis://127.0.0.1:20000/0"


def test_external_proxy_gets_links_but_is_not_started(tmp_path: Path) -> None:
    plan = build_plan(cfg(tmp_path, replicas=1, toxiproxy_url="http://10.0.0.1:8474/"))
    assert "toxiproxy" not in [c.name for c in plan.components]
    assert plan.toxiproxy_url == "http://10.0.0.1:8474"
    assert "links" in [h.name for h in plan.component("redis").hooks]


def test_redis_only_plan_needs_no_other_modules(tmp_path: Path) -> None:
    plan = build_plan(cfg(tmp_path, replicas=0, gateway=False, toxiproxy=False))
    assert [c.name for c in plan.components] == ["redis"]
    assert plan.component("redis").hooks == () and missing_modules(plan) == []


def test_missing_module_is_reported(tmp_path: Path) -> None:
    spec = ComponentSpec(
        "x", "replica", ("true",), Check("tcp", "127.0.0.1:1"), {}, {},
        requires=("no_such_module_xyz",), hooks=(Hook("h", requires=("chaos_rec.nope",)),),
    )  # fmt: skip
    plan = StackPlan(config=cfg(tmp_path), components=(spec,))
    assert missing_modules(plan) == ["no_such_module_xyz", "chaos_rec.nope"]


def test_order_respects_dependencies_and_rejects_cycles() -> None:
    def spec(name: str, *deps: str) -> ComponentSpec:
        return ComponentSpec(name, "r", ("x",), Check("tcp", "h:1"), {}, {}, depends_on=deps)

    ordered = _order([spec("gw", "a", "b"), spec("b", "a"), spec("a")])
    assert [s.name for s in ordered] == ["a", "b", "gw"]
    with pytest.raises(ConfigError, match="cycle"):
        _order([spec("a", "b"), spec("b", "a")])


def test_redis_binary_errors() -> None:
    with pytest.raises(ConfigError, match="not found or not executable"):
        find_redis_binary("/nonexistent/redis-server")
    assert Path(find_redis_binary(None)).name.startswith("redis-server")


def test_state_roundtrip_and_helpers(tmp_path: Path) -> None:
    with pytest.raises(StackNotRunning):
        read_state(tmp_path)
    comp = {"name": "replica-1", "role": "replica", "replica": 1, "pid": None}
    write_state(tmp_path, {"version": 1, "state_dir": str(tmp_path),
                           "components": {"replica-1": comp, "redis": {"role": "redis"}}})  # fmt: skip
    state = read_state(tmp_path)
    assert isinstance(state, StackState) and state.state_dir == tmp_path
    assert state.replicas() == [comp] and state.control_url is None
    with pytest.raises(StackError, match="no component 'gateway'"):
        state.component("gateway")
    (tmp_path / "stack.json").write_text("{broken")
    with pytest.raises(StackError, match="corrupt stack state"):
        read_state(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["stack.json"]  # no temp files left


def test_replicas_start_together_after_their_dependencies(tmp_path: Path) -> None:
    plan = build_plan(cfg(tmp_path, replicas=3))
    waves = [[s.name for s in wave] for wave in start_waves(plan.components)]
    assert waves == [["redis"], ["toxiproxy"], ["replica-0", "replica-1", "replica-2"], ["gateway"]]
    assert start_waves(()) == []


def _fake_prometheus(tmp_path: Path) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "prometheus"
    exe.write_text("#!/bin/sh\n", encoding="utf-8")
    exe.chmod(0o755)
    return bindir


def test_prometheus_scrapes_every_component_with_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(_fake_prometheus(tmp_path)))
    plan = build_plan(cfg(tmp_path, replicas=2, prometheus=True, toxiproxy_port=20400))
    spec = plan.component("prometheus")
    assert plan.prometheus_url == "http://127.0.0.1:20020" == spec.endpoints["http"]
    assert spec.ready == Check("http", "http://127.0.0.1:20020/-/ready")
    cmd = list(spec.cmd)
    assert cmd[1:3] == ["-m", "chaos_rec.stack.prometheus_launcher"]
    assert cmd[cmd.index("--binary") + 1] == str(tmp_path / "bin" / "prometheus")
    assert cmd[cmd.index("--listen") + 1] == "127.0.0.1:20020"
    assert cmd[cmd.index("--dir") + 1] == str(tmp_path / "prometheus")
    targets = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--target"]
    assert targets == [
        "replica-0=http://127.0.0.1:20100/metrics",
        "replica-1=http://127.0.0.1:20110/metrics",
        "gateway=http://127.0.0.1:20010/metrics",
        "toxiproxy=http://127.0.0.1:20400/metrics",
    ]
    assert plan.notes == ()
    assert cfg(tmp_path, prometheus=True).ports()["prometheus"] == 20020


def test_without_the_binary_the_stack_plans_without_prometheus_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no prometheus here
    plan = build_plan(cfg(tmp_path, replicas=1, prometheus=True))
    assert "prometheus" not in [s.name for s in plan.components]
    assert plan.prometheus_url is None
    assert plan.notes == (MISSING_LINE,)
    assert MISSING_LINE.startswith("prometheus not available: no prometheus binary on PATH")


def test_a_configured_prometheus_binary_that_is_absent_is_one_clear_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="prometheus binary '/nope/prometheus' not found"):
        build_plan(cfg(tmp_path, replicas=1, prometheus=True, prometheus_binary="/nope/prometheus"))


def test_scrape_config_is_one_job_per_component_each_second() -> None:
    config = json.loads(scrape_config([("replica-0", "http://127.0.0.1:20100/metrics")]))
    assert config["global"]["scrape_interval"] == "1s"
    [job] = config["scrape_configs"]
    assert job == {
        "job_name": "replica-0",
        "scheme": "http",
        "metrics_path": "/metrics",
        "static_configs": [{"targets": ["127.0.0.1:20100"], "labels": {"component": "replica-0"}}],
    }
