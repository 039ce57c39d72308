"""Each seam gets the backend its deployment file names, else the reference stack's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos_rec import backends
from chaos_rec.backends.adapters import AdapterTraffic
from chaos_rec.backends.commands import CommandFeatureData, CommandProcesses, CommandRollout
from chaos_rec.backends.reference import RedisFeatureData, ReferenceRollout
from chaos_rec.core.target import Deployment, read_deployment_file
from chaos_rec.errors import FaultError

PROCS = {"kind": "command", "kill": "true", "hang": "true", "resume": "true", "ready": "true"}
DATA = {"kind": "command", "wipe": "true", "restore": "true", "verify": "true"}
ROLL = {"kind": "command", "push": "true {replica} {bundle}"}


def _dep(tmp_path: Path, **sections: Any) -> Deployment:
    path = tmp_path / "dep.json"
    data = {"gateway_url": "http://127.0.0.1:9", "redis_url": "redis://127.0.0.1:1/0",
            "replicas": [{"name": "r-0"}], **sections}  # fmt: skip
    path.write_text(json.dumps(data))
    return read_deployment_file(path)


def test_named_backends_are_built_from_their_sections(tmp_path: Path) -> None:
    dep = _dep(tmp_path, processes=PROCS, data=DATA, rollout=ROLL,
               traffic={"kind": "oip-v2", "model": "recommender", "items_output": "items"})  # fmt: skip
    assert isinstance(backends.processes(dep), CommandProcesses)
    assert isinstance(backends.data(dep, 1.0, wipe="restart_redis_empty"), CommandFeatureData)
    assert isinstance(backends.rollout(dep, 1.0), CommandRollout)
    traffic = backends.traffic(dep, 1.0)
    assert isinstance(traffic, AdapterTraffic) and traffic.spec.kind == "oip-v2"
    assert backends.check(dep) == []


def test_without_sections_a_file_gets_the_network_backends_and_no_process_faults(
    tmp_path: Path,
) -> None:
    dep = _dep(tmp_path)
    assert backends.traffic(dep, 1.0).spec.kind == "chaos-rec"  # type: ignore[attr-defined]
    assert isinstance(backends.data(dep, 1.0), RedisFeatureData)
    assert isinstance(backends.rollout(dep, 1.0), ReferenceRollout)
    with pytest.raises(FaultError, match="kill_replica needs the reference stack's supervisor"):
        backends.processes(dep, "kill_replica")
    with pytest.raises(FaultError, match="restart_redis_empty needs the reference stack"):
        backends.data(dep, 1.0, wipe="restart_redis_empty")


def test_check_names_every_bad_section_in_one_line_each(tmp_path: Path) -> None:
    dep = _dep(tmp_path, processes={"kind": "command", "kill": "x {pod}"},
               traffic={"kind": "oip-v2"})  # fmt: skip
    problems = backends.check(dep)
    assert len(problems) == 2 and all("\n" not in p for p in problems)
    assert problems[0].startswith(f"deployment file {tmp_path / 'dep.json'}: traffic")
    assert problems[1].startswith(f"deployment file {tmp_path / 'dep.json'}: processes")
