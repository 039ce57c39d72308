"""The deployment file: its published JSON Schema, one-line errors, backends per seam."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.core.target import SCHEMA_FILE, read_deployment_file
from chaos_rec.errors import ConfigError

GOOD: dict[str, Any] = {
    "gateway_url": "http://127.0.0.1:8000",
    "toxiproxy_url": "http://127.0.0.1:8474",
    "replicas": [{"name": "triton-0", "http_url": "http://127.0.0.1:8100", "link": "triton-0"}],
    "users": [1, 2, 3],
    "traffic": {"kind": "oip-v2", "model": "recommender"},
    "processes": {"kind": "command", "kill": "supervisorctl signal KILL {replica}"},
}


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(data))
    return path


def test_the_schema_is_published_and_names_every_key_the_reader_takes() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["required"] == ["gateway_url"]
    assert {"traffic", "processes", "data", "rollout", "users", "queries"} <= set(
        schema["properties"]
    )


def test_a_good_file_gives_its_backends_users_and_replicas(tmp_path: Path) -> None:
    dep = read_deployment_file(_write(tmp_path, GOOD))
    assert dep.backend("traffic", "chaos-rec") == ("oip-v2", GOOD["traffic"])
    assert dep.backend("rollout", "reference") == ("reference", {})
    assert dep.users == (1, 2, 3) and dep.queries == ()
    assert dep.replica("replica:0").name == "triton-0" and not dep.managed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gatway_url": "x"}, "unknown key 'gatway_url'"),
        ({"gateway_url": None}, "gateway_url: None is not of type 'string'"),
        ({"gateway_url": "ftp://x"}, "gateway_url: 'ftp://x' does not match '^https?://'"),
        ({"replicas": [{"http_url": "http://x"}]}, "replicas.0: 'name' is a required property"),
        ({"replicas": [{"name": "r", "port": 1}]}, "replicas.0: Additional properties"),
        ({"users": []}, "users: [] should be non-empty"),
        ({"users": ["7"]}, "users.0: '7' is not of type 'integer'"),
        ({"traffic": {"kind": "grpc-ish"}}, "traffic.kind: 'grpc-ish' is not one of"),
        ({"processes": {}}, "processes: 'kind' is a required property"),
        ({"links": {"kind": "chaos-mesh"}}, "links: 'context' is a required property"),
        ({"links": {"kind": "istio"}}, "links.kind: 'istio' is not one of ['chaos-mesh']"),
        ({"links": {"fs": {"listen": "x", "port": 1}}}, "links.fs: Additional properties"),
    ],
)
def test_bad_files_are_one_line_naming_the_key(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    data = {k: v for k, v in GOOD.items() if k not in change}
    data.update(change)
    with pytest.raises(ConfigError) as info:
        read_deployment_file(_write(tmp_path, data))
    text = str(info.value)
    assert text.startswith(f"deployment file {tmp_path / 'deployment.json'}: ")
    assert message in text and "\n" not in text


def test_a_file_without_gateway_url_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'gateway_url' is a required property"):
        read_deployment_file(_write(tmp_path, {"toxiproxy_url": "http://127.0.0.1:1"}))
