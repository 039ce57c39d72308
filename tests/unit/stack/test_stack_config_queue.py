"""Replica and gateway settings of the stack reach their command lines (and are validated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos_rec.errors import ConfigError
from chaos_rec.stack.components import build_plan
from chaos_rec.stack.config import StackConfig


def test_queue_capacity_reaches_every_replica_command(tmp_path: Path) -> None:
    cfg = StackConfig.from_dict(
        {"state_dir": str(tmp_path), "replicas": 2, "model_server_queue_capacity": 12}
    )
    replicas = [s for s in build_plan(cfg).components if s.role == "replica"]
    assert len(replicas) == 2
    for spec in replicas:
        i = spec.cmd.index("--queue-capacity")
        assert spec.cmd[i + 1] == "12"


def test_model_in_process_is_off_by_default_and_reaches_replicas_when_set(tmp_path: Path) -> None:
    base = {"state_dir": str(tmp_path), "replicas": 2}
    for spec in build_plan(StackConfig.from_dict(base)).components:
        assert "--model-in-process" not in spec.cmd
    cfg = StackConfig.from_dict(base | {"model_server_in_process": "true"})
    replicas = [s for s in build_plan(cfg).components if s.role == "replica"]
    assert len(replicas) == 2 and all("--model-in-process" in s.cmd for s in replicas)


def test_queue_capacity_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model_server_queue_capacity"):
        StackConfig.from_dict({"state_dir": str(tmp_path), "model_server_queue_capacity": 0})


def test_gateway_admission_limits_reach_the_gateway_command(tmp_path: Path) -> None:
    base = {"state_dir": str(tmp_path), "replicas": 2}
    (gw,) = [s for s in build_plan(StackConfig.from_dict(base)).components if s.role == "gateway"]
    assert gw.cmd[gw.cmd.index("--max-inflight") + 1] == "16"  # the reference stack's default
    assert "--max-loop-lag-ms" not in gw.cmd  # the gateway's own default
    cfg = StackConfig.from_dict(
        base | {"gateway_max_inflight": 40, "gateway_max_loop_lag_ms": "45.5"}
    )
    (gw,) = [s for s in build_plan(cfg).components if s.role == "gateway"]
    assert gw.cmd[gw.cmd.index("--max-inflight") + 1] == "40"
    assert gw.cmd[gw.cmd.index("--max-loop-lag-ms") + 1] == "45.5"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("gateway_max_inflight", 0, "gateway_max_inflight must be > 0"),
        ("gateway_max_loop_lag_ms", -1, "gateway_max_loop_lag_ms must be > 0"),
        ("gateway_max_loop_lag_ms", "soon", "gateway_max_loop_lag_ms: bad value"),
    ],
)
def test_gateway_admission_limits_are_validated(
    tmp_path: Path, key: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        StackConfig.from_dict({"state_dir": str(tmp_path), key: value})


def test_gateway_routing_is_affinity_by_default_and_reaches_the_gateway(tmp_path: Path) -> None:
    base = {"state_dir": str(tmp_path), "replicas": 2}
    (gw,) = [s for s in build_plan(StackConfig.from_dict(base)).components if s.role == "gateway"]
    assert gw.cmd[gw.cmd.index("--routing") + 1] == "affinity"
    cfg = StackConfig.from_dict(base | {"gateway_routing": "round-robin"})
    (gw,) = [s for s in build_plan(cfg).components if s.role == "gateway"]
    assert gw.cmd[gw.cmd.index("--routing") + 1] == "round-robin"
    with pytest.raises(ConfigError, match="gateway_routing must be affinity or round-robin"):
        StackConfig.from_dict(base | {"gateway_routing": "random"})
