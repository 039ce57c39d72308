"""Rollout through Triton's repository API: the load request's shape, accepted and refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaos_rec import backends
from chaos_rec.backends.triton_repository import TritonRepositoryRollout
from chaos_rec.core.target import read_deployment_file
from chaos_rec.errors import ConfigError, FaultError


def _dep(tmp_path: Path, rollout: dict[str, Any]) -> Any:
    path = tmp_path / "dep.json"
    path.write_text(json.dumps({
        "gateway_url": "http://127.0.0.1:9", "rollout": rollout,
        "replicas": [{"name": "replica-0", "http_url": "http://127.0.0.1:8000"}],
    }))  # fmt: skip
    return read_deployment_file(path)


def _bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    (bundle / "sub").mkdir(parents=True)
    (bundle / "model.safetensors").write_bytes(b"\x00weights")
    (bundle / "sub" / "items.json").write_text("[1, 2]")
    return bundle


def test_a_push_sends_every_file_as_a_version_parameter_and_reads_the_answer(
    tmp_path: Path,
) -> None:
    seen: list[httpx.Request] = []
    answers = iter([httpx.Response(200, json={}), httpx.Response(400, json={"error": "bad model"})])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(answers)

    section = {"kind": "triton-repository", "model": "recommender", "version": "3",
               "config": {"backend": "python"}}  # fmt: skip
    rollout = TritonRepositoryRollout(section, _dep(tmp_path, section), 5.0,
                                      headers={"authorization": "Bearer t"},
                                      transport=httpx.MockTransport(handler))  # fmt: skip
    bundle = _bundle(tmp_path)
    assert rollout.push("replica-0", bundle) == (True, {})
    assert rollout.push("replica:0", bundle) == (False, "bad model")
    sent = seen[0]
    assert str(sent.url) == "http://127.0.0.1:8000/v2/repository/models/recommender/load"
    assert sent.headers["authorization"] == "Bearer t"
    params = json.loads(sent.content)["parameters"]
    assert base64.b64decode(params["file:3/model.safetensors"]) == b"\x00weights"
    assert base64.b64decode(params["file:3/sub/items.json"]) == b"[1, 2]"
    assert json.loads(params["config"]) == {"backend": "python"}


def test_version_is_the_last_listed_and_a_server_error_is_a_fault(tmp_path: Path) -> None:
    replies = iter([httpx.Response(200, json={"name": "recommender", "versions": ["1", "3"]}),
                    httpx.Response(500, text="boom")])  # fmt: skip
    section = {"kind": "triton-repository", "model": "recommender"}
    rollout = TritonRepositoryRollout(section, _dep(tmp_path, section), 5.0,
                                      transport=httpx.MockTransport(lambda r: next(replies)))  # fmt: skip
    assert rollout.version("replica-0") == "3"
    with pytest.raises(FaultError, match="answered 500"):
        rollout.version("replica-0")


@pytest.mark.parametrize(
    ("section", "message"),
    [({"kind": "triton-repository"}, r"rollout\.model: required"),
     ({"kind": "triton-repository", "model": "m", "version": "v1"}, r"rollout\.version: a version"),
     ({"kind": "triton-repository", "model": "m", "nope": 1}, r"rollout\.nope: unknown key")],
)  # fmt: skip
def test_a_bad_section_is_one_line(tmp_path: Path, section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        backends.rollout(_dep(tmp_path, section), 5.0)


def test_the_deployment_file_picks_it_and_fills_its_header_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRITON_TOKEN", "s3")
    section = {"kind": "triton-repository", "model": "m", "reference_bundle": str(tmp_path),
               "headers": {"authorization": "Bearer ${secret:TRITON_TOKEN}"}}  # fmt: skip
    rollout = backends.rollout(_dep(tmp_path, section), 5.0)
    assert isinstance(rollout, TritonRepositoryRollout)
    assert rollout._headers == {"authorization": "Bearer s3"}
    assert rollout.reference_bundle() == tmp_path
