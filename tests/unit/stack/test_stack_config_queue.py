"""The model server's queue capacity is a stack setting passed to every replica."""

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


def test_queue_capacity_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model_server_queue_capacity"):
        StackConfig.from_dict({"state_dir": str(tmp_path), "model_server_queue_capacity": 0})
