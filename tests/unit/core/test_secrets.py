"""Secrets: CTK secrets, then the environment, then the deployment's secrets file; one-line misses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos_rec import backends
from chaos_rec.core.secrets import SecretSource, read_secrets_file
from chaos_rec.core.target import Overrides, read_deployment_file
from chaos_rec.errors import ConfigError
from chaos_rec.traffic import TrafficSpec, build_request


def _secrets_file(tmp_path: Path, data: object, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(data))
    path.chmod(mode)
    return path


def test_lookup_order_is_ctk_then_environment_then_file(tmp_path: Path) -> None:
    file = _secrets_file(tmp_path, {"A": "file-a", "B": "file-b", "C": "file-c"})
    source = SecretSource({"scope": {"A": "ctk-a"}}, {"B": "env-b", "D": "env-d"}, file)
    assert source.resolve(["A", "B", "C"], "x") == {"A": "ctk-a", "B": "env-b", "C": "file-c"}
    assert SecretSource({}, {"CHAOS_REC_ADMIN_TOKEN": "t"}).find("chaos_rec_admin_token") == "t"
    with pytest.raises(ConfigError, match=r"^x: secret 'E' is in none of the CTK secrets, the "
                       r"environment or secrets file .*secrets\.json$"):  # fmt: skip
        source.resolve(["E"], "x")


def test_a_secrets_file_others_can_read_is_refused_without_showing_values(tmp_path: Path) -> None:
    file = _secrets_file(tmp_path, {"A": "hunter2"}, mode=0o644)
    with pytest.raises(ConfigError, match=r"open to other users \(mode 644\): chmod 600") as err:
        read_secrets_file(file)
    bad = tmp_path / "bad.json"
    bad.write_text('{"A": "hunter2"')
    bad.chmod(0o600)
    with pytest.raises(ConfigError, match=r"is not JSON$") as err2:
        read_secrets_file(bad)
    assert "hunter2" not in str(err.value) + str(err2.value)


def test_headers_are_filled_at_request_time_and_the_spec_keeps_the_reference() -> None:
    spec = TrafficSpec.from_dict(
        {"kind": "chaos-rec", "headers": {"authorization": "Bearer ${secret:API_TOKEN}"}}, "t"
    )
    assert spec.secret_names == ["API_TOKEN"]
    assert build_request(spec, 1, 10, None, {"API_TOKEN": "s3"}).headers == {
        "authorization": "Bearer s3"
    }
    assert "s3" not in json.dumps(spec.to_dict())  # what the run dir's load config holds


def test_a_deployment_files_secret_comes_from_its_secrets_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("API_TOKEN", raising=False)
    _secrets_file(tmp_path, {"API_TOKEN": "from-file", "chaos_rec_admin_token": "adm"})
    dep_file = tmp_path / "dep.json"
    dep_file.write_text(json.dumps({
        "gateway_url": "http://127.0.0.1:9", "secrets_file": "secrets.json", "users": [1],
        "traffic": {"kind": "chaos-rec", "headers": {"x-key": "${secret:API_TOKEN}"}},
    }))  # fmt: skip
    dep = read_deployment_file(dep_file)
    assert dep.admin_token == "adm"
    traffic = backends.traffic(dep, 1.0)
    assert traffic._secrets == {"API_TOKEN": "from-file"}  # type: ignore[attr-defined]
    over = read_deployment_file(dep_file, Overrides(ctk_secrets={"API_TOKEN": "from-ctk"}))
    assert backends.traffic(over, 1.0)._secrets == {"API_TOKEN": "from-ctk"}  # type: ignore[attr-defined]
    assert "from-file" not in repr(dep) and "from-file" not in json.dumps(dep.state)
