"""StackConfig: precedence, coercion and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos_rec.errors import ConfigError
from chaos_rec.stack import StackConfig


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CHAOS_REC_"):
            monkeypatch.delenv(key)


def test_defaults_follow_the_contract() -> None:
    cfg = StackConfig()
    assert (cfg.base_port, cfg.replicas, cfg.toxiproxy_port) == (17300, 2, 8474)
    assert cfg.gateway and cfg.toxiproxy and not cfg.redis_persistence
    assert cfg.bundle.parts[-2:] == ("bundles", "reference")
    assert cfg.state_dir == Path.cwd() / ".chaos-rec" and cfg.state_dir.is_absolute()
    assert StackConfig(state_dir=Path("rel")).state_dir == Path.cwd() / "rel"
    ports = cfg.ports()
    assert ports["redis"] == 17300 and ports["link feature-store"] == 17301
    assert ports["gateway"] == 17310
    assert ports["replica-1 http"] == 17310 + 100 and ports["replica-1 grpc"] == 17411
    assert ports["link replica-1"] == 17501 and ports["toxiproxy"] == 8474


def test_precedence_overrides_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "stack.toml"
    f.write_text("[stack]\nreplicas = 3\nbase_port = 20000\nseed = 7\n")
    monkeypatch.setenv("CHAOS_REC_BASE_PORT", "21000")
    monkeypatch.setenv("CHAOS_REC_SEED", "8")
    cfg = StackConfig.load(f, seed=9, replicas=None)
    assert cfg.replicas == 3  # file (None override ignored)
    assert cfg.base_port == 21000  # env beats file
    assert cfg.seed == 9  # override beats env


def test_json_file_and_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "s.json"
    f.write_text('{"gateway": false, "model_server_disable": ["cache"], "state_dir": "x"}')
    monkeypatch.setenv("CHAOS_REC_TOXIPROXY", "no")
    monkeypatch.setenv("CHAOS_REC_GATEWAY_DISABLE", "retries, hedging")
    cfg = StackConfig.load(f)
    assert cfg.gateway is False and cfg.toxiproxy is False
    assert cfg.model_server_disable == ("cache",)
    assert cfg.gateway_disable == ("retries", "hedging")
    assert cfg.state_dir.is_absolute() and cfg.state_dir.name == "x"
    again = StackConfig.from_dict(cfg.to_dict())
    assert again == cfg


def test_pyproject_table(tmp_path: Path) -> None:
    f = tmp_path / "pyproject.toml"
    f.write_text("[tool.chaos_rec.stack]\nreplicas = 1\n")
    assert StackConfig.load(f).replicas == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": "red"}, "unknown stack config key(s): colour"),
        ({"replicas": "many"}, "stack config replicas: bad value 'many'"),
        ({"replicas": 11}, "replicas must be in 0..10"),
        ({"base_port": 80}, "base_port must be in 1024"),
        ({"gateway": "maybe"}, "stack config gateway: bad value"),
        ({"replicas": 0}, "gateway needs at least one replica"),
        ({"model_server_disable": ["warp"]}, "unknown mechanism(s) warp"),
        ({"gateway_disable": "breaker"}, "gateway_disable: unknown mechanism(s) breaker"),
        ({"toxiproxy_url": "localhost:8474"}, "toxiproxy_url must be an http(s) URL"),
        ({"ready_timeout_s": 0}, "ready_timeout_s must be > 0"),
        ({"device": "tpu"}, "device must be auto, cpu or cuda"),
        ({"replicas": True}, "stack config replicas: bad value True"),
    ],
)
def test_bad_config_is_one_clear_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        StackConfig.from_dict(data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        StackConfig.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a table/object"):
        StackConfig.load(bad)


def test_frozen() -> None:
    cfg = StackConfig()
    with pytest.raises(AttributeError):
        cfg.replicas = 5  # type: ignore[misc]
    assert cfg.replace(replicas=1).replicas == 1
