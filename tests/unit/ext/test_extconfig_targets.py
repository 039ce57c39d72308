"""ExtConfig (CTK configuration/secrets) and named targets from a deployment file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.backends.net import proc_state
from chaos_rec.errors import ConfigError, FaultError
from chaos_rec.extconfig import ExtConfig
from chaos_rec.targets import load_deployment, parse_target


def test_configuration_and_secrets_become_one_typed_config(tmp_path: Path) -> None:
    cfg = ExtConfig.from_ctk(
        {
            "chaos_rec_load_rps": "12.5",
            "chaos_rec_seed": 3,
            "chaos_rec_load": "false",
            "chaos_rec_gateway_url": "http://127.0.0.1:1/",
            "other_key": 1,
        },
        {"chaos_rec": {"chaos_rec_admin_token": "s3"}},
        environ={"CHAOS_REC_RUN_DIR": str(tmp_path)},
    )
    assert cfg.load_rps == 12.5 and cfg.seed == 3 and cfg.load is False
    assert cfg.gateway_url == "http://127.0.0.1:1"
    assert cfg.admin_token == "s3"
    assert cfg.run_context().run_dir == tmp_path.resolve()


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({"chaos_rec_load_rsp": 1}, "unknown configuration key 'chaos_rec_load_rsp'"),
        ({"chaos_rec_load_rps": "fast"}, "chaos_rec_load_rps must be a number"),
        ({"chaos_rec_load_users": 0}, "chaos_rec_load_users must be within [1, 1000]"),
        ({"chaos_rec_gateway_url": "127.0.0.1:8080"}, "must be an http:// URL"),
        ({"chaos_rec_target": "/nope.json"}, "must be 'reference' or a deployment file"),
        ({"chaos_rec_load": "maybe"}, "chaos_rec_load must be true or false"),
    ],
)
def test_bad_configuration_is_one_clear_line(configuration: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        ExtConfig.from_ctk(configuration, environ={})
    assert message in str(info.value)


def test_no_run_dir_says_how_to_get_one() -> None:
    with pytest.raises(ConfigError, match=r"add the chaos_rec\.controls control"):
        ExtConfig.from_ctk({}, environ={}).run_context()


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("replica:1", ("replica", "1")),
        ("link:feature-store", ("link", "feature-store")),
        ("redis", ("redis", "")),
        ("gateway", ("gateway", "")),
    ],
)
def test_target_names(text: str, parsed: tuple[str, str]) -> None:
    assert parse_target(text) == parsed


def test_unknown_target_is_rejected() -> None:
    with pytest.raises(ConfigError, match="use replica:<i>, link:<name>, redis or gateway"):
        parse_target("node:3")


def test_deployment_file_resolves_replicas_links_and_allowlist(tmp_path: Path) -> None:
    dep_file = tmp_path / "dep.json"
    dep_file.write_text(
        json.dumps(
            {
                "gateway_url": "http://127.0.0.1:9000/",
                "toxiproxy_url": "http://127.0.0.1:8474",
                "replicas": [
                    {"name": "gpu-a", "http_url": "http://127.0.0.1:9100", "link": "replica-0"},
                    {"name": "gpu-b", "http_url": "http://127.0.0.1:9110", "link": "replica-1"},
                ],
                "links": {
                    "feature-store": {"listen": "127.0.0.1:6380", "upstream": "127.0.0.1:6379"}
                },
            }
        )
    )
    dep = load_deployment(ExtConfig.from_ctk({"chaos_rec_target": str(dep_file)}, environ={}))
    assert dep.gateway_url == "http://127.0.0.1:9000"
    assert dep.replica("replica:1").name == "gpu-b"
    assert dep.replica("gpu-a").index == 0
    assert dep.link("link:feature-store") == "feature-store"
    with pytest.raises(ConfigError, match="no link 'replica-9'"):
        dep.link("link:replica-9")
    with pytest.raises(ConfigError, match="no replica 'replica:5'"):
        dep.replica("replica:5")
    with pytest.raises(FaultError, match="needs the reference stack's supervisor"):
        dep.require_managed("kill_replica")
    assert dep.allowlist.allow("gateway_url", "http://127.0.0.1:1") == "http://127.0.0.1:1"
    with pytest.raises(FaultError, match=r"x: host '10\.1\.2\.3' is not on the allowlist"):
        dep.allowlist.allow("x", "http://10.1.2.3:80")


def test_deployment_file_with_unknown_key_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "d.json"
    f.write_text(json.dumps({"gateway_url": "http://127.0.0.1:1", "gatway": 1}))
    with pytest.raises(ConfigError, match="unknown key 'gatway'"):
        load_deployment(ExtConfig.from_ctk({"chaos_rec_target": str(f)}, environ={}))


def test_proc_state_of_self_and_of_a_gone_pid() -> None:
    import os

    assert proc_state(os.getpid()) in ("R", "S")
    assert proc_state(2**22 + 12345) == "X"


def test_materialize_command_names_redis_bundle_and_verify_flag(tmp_path: Path) -> None:
    from chaos_rec.backends.reference import materialize_command
    from chaos_rec.core.target import Deployment

    dep = Deployment(
        source="test", gateway_url="http://127.0.0.1:9", toxiproxy_url=None,
        redis_url="redis://127.0.0.1:6399/0", replicas=(), bundle=tmp_path,
    )  # fmt: skip
    cmd = materialize_command(dep)
    assert cmd[1:4] == ["-m", "training", "materialize"]
    assert cmd[cmd.index("--redis") + 1] == "redis://127.0.0.1:6399/0"
    assert cmd[cmd.index("--bundle") + 1] == str(tmp_path)
    assert "--verify-only" not in cmd
    assert materialize_command(dep, verify_only=True)[-1] == "--verify-only"
    no_redis = Deployment(
        source="t", gateway_url="x", toxiproxy_url=None, redis_url=None, replicas=()
    )
    with pytest.raises(ConfigError, match="redis_url/bundle"):
        materialize_command(no_redis)
