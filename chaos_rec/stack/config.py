"""StackConfig: the one typed, validated configuration of the reference stack."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import reference_contract as contract
from chaos_rec.errors import ConfigError
from chaos_rec.settings import ENV_PREFIX, default

__all__ = ["MECHANISMS_GATEWAY", "MECHANISMS_SERVER", "StackConfig", "default_bundle"]

MECHANISMS_SERVER = contract.SERVER_MECHANISMS
MECHANISMS_GATEWAY = contract.GATEWAY_MECHANISMS
GATEWAY_ROUTINGS = contract.GATEWAY_ROUTINGS  # the gateway's --routing
MAX_PORT_OFFSET = 300  # base_port + this must still be a valid port (see docs/contracts.md)


def default_bundle() -> Path:
    """The reference bundle committed in the repository (``bundles/reference``)."""
    return Path(__file__).resolve().parents[2] / "bundles" / "reference"


def _default_state_dir() -> Path:
    return Path(default("state_dir"))


@dataclass(frozen=True)
class StackConfig:
    """Configuration of the reference stack (CLI > CHAOS_REC_* env > file > defaults)."""

    state_dir: Path = field(default_factory=_default_state_dir)
    base_port: int = 17300
    replicas: int = 2
    gateway: bool = True
    toxiproxy: bool = True
    toxiproxy_port: int = 8474
    toxiproxy_url: str | None = None
    bundle: Path = field(default_factory=default_bundle)
    redis_binary: str | None = None
    prometheus: bool = True  # scrape every component each second (left out when not installed)
    prometheus_binary: str | None = None  # None: `prometheus` on PATH
    redis_persistence: bool = False
    setup: bool = True
    device: str = "auto"
    model_server_threads: int | None = None  # torch intra-op threads per replica (None: auto)
    # forward passes on a thread of the replica process instead of its model worker process
    model_server_in_process: bool = False
    # per-replica batch queue; beyond it requests are shed (503 / RESOURCE_EXHAUSTED)
    model_server_queue_capacity: int = 256
    model_server_disable: tuple[str, ...] = ()
    gateway_disable: tuple[str, ...] = ()
    gateway_deadline_ms: int | None = None
    # requests in progress at the gateway beyond which new ones are shed (503 + Retry-After)
    gateway_max_inflight: int = 16
    gateway_max_loop_lag_ms: float | None = None  # its --max-loop-lag-ms (None: the gateway's 30)
    # how the gateway picks a replica: `affinity` (a user stays on one replica, so its feature
    # cache holds that user; bounded loads) or `round-robin` (its --routing)
    gateway_routing: str = "affinity"
    admin_token: str | None = None  # None: a random token per stack (chaos_rec.stack.secret)
    ready_timeout_s: float = 120.0
    restart_backoff_s: float = 0.5
    restart_backoff_max_s: float = 10.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("state_dir", "bundle"):  # absolute: the supervisor may run elsewhere
            object.__setattr__(self, name, Path(getattr(self, name)).expanduser().absolute())
        self._validate()

    # ---- construction -------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> StackConfig:
        """Build from defaults, then the config file, then CHAOS_REC_* env, then overrides."""
        values: dict[str, Any] = {}
        if path is not None:
            values.update(_read_file(Path(path)))
        values.update(_read_env(os.environ))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StackConfig:
        """Build from a JSON-like mapping (unknown keys and bad types are ConfigError)."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown stack config key(s): {', '.join(unknown)}")
        kwargs = {name: _coerce(name, known[name].type, value) for name, value in data.items()}
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings, tuples as lists); never the admin token."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "admin_token":
                continue  # it lives in the state dir's 0600 token file only
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def replace(self, **changes: Any) -> StackConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ---- derived ------------------------------------------------------
    @property
    def state_path(self) -> Path:
        """The state file ``<state_dir>/stack.json``."""
        return self.state_dir / "stack.json"

    def ports(self) -> dict[str, int]:
        """Every loopback port the stack will bind, by a readable label."""
        b = self.base_port
        ports = {"redis": b}
        if self.gateway:
            ports["gateway"] = b + 10
        for i in range(self.replicas):
            ports[f"replica-{i} http"] = b + 100 + 10 * i
            ports[f"replica-{i} grpc"] = b + 101 + 10 * i
        if self.uses_proxy_links:
            ports["link feature-store"] = b + 1
            for i in range(self.replicas):
                ports[f"link replica-{i}"] = b + 200 + i
        if self.toxiproxy and self.toxiproxy_url is None:
            ports["toxiproxy"] = self.toxiproxy_port
        if self.prometheus:
            ports["prometheus"] = b + 20
        return ports

    @property
    def uses_proxy_links(self) -> bool:
        """Whether replicas/gateway talk through fault-proxy links."""
        return self.toxiproxy or self.toxiproxy_url is not None

    # ---- validation ---------------------------------------------------
    def _validate(self) -> None:
        if not 1024 <= self.base_port <= 65535 - MAX_PORT_OFFSET:
            raise ConfigError(
                f"base_port must be in 1024..{65535 - MAX_PORT_OFFSET}, got {self.base_port}"
            )
        if not 0 <= self.replicas <= 10:
            raise ConfigError(f"replicas must be in 0..10, got {self.replicas}")
        if not 1 <= self.toxiproxy_port <= 65535:
            raise ConfigError(f"toxiproxy_port must be in 1..65535, got {self.toxiproxy_port}")
        if self.toxiproxy_url is not None and not self.toxiproxy_url.startswith(
            ("http://", "https://")
        ):
            raise ConfigError(f"toxiproxy_url must be an http(s) URL, got {self.toxiproxy_url!r}")
        if self.gateway and self.replicas == 0:
            raise ConfigError("gateway needs at least one replica (set gateway = false)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.gateway_routing not in GATEWAY_ROUTINGS:
            raise ConfigError(
                f"gateway_routing must be {' or '.join(GATEWAY_ROUTINGS)}, "
                f"got {self.gateway_routing!r}"
            )
        for name, allowed in (
            ("model_server_disable", MECHANISMS_SERVER),
            ("gateway_disable", MECHANISMS_GATEWAY),
        ):
            bad = [m for m in getattr(self, name) if m not in allowed]
            if bad:
                raise ConfigError(
                    f"{name}: unknown mechanism(s) {', '.join(bad)} (known: {', '.join(allowed)})"
                )
        for name in ("ready_timeout_s", "restart_backoff_s", "restart_backoff_max_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0")
        if self.model_server_threads is not None and self.model_server_threads <= 0:
            raise ConfigError("model_server_threads must be > 0")
        if self.model_server_queue_capacity <= 0:
            raise ConfigError("model_server_queue_capacity must be > 0")
        if self.gateway_max_loop_lag_ms is not None and self.gateway_max_loop_lag_ms <= 0:
            raise ConfigError("gateway_max_loop_lag_ms must be > 0")
        if self.gateway_max_inflight <= 0:
            raise ConfigError("gateway_max_inflight must be > 0")
        if self.gateway_deadline_ms is not None and self.gateway_deadline_ms <= 0:
            raise ConfigError("gateway_deadline_ms must be > 0")
        if self.admin_token is not None and not self.admin_token:
            raise ConfigError("admin_token must not be empty (leave it out for a random one)")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".json":
            data: Any = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # the JSON and TOML decode errors
        raise ConfigError(f"bad config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"bad config file {path}: expected a table/object at the top")
    # accept a [stack] table, or [tool.chaos_rec.stack] inside a pyproject.toml
    nested = data.get("tool", {}).get("chaos_rec", {}).get("stack") if "tool" in data else None
    if isinstance(nested, dict):
        data = nested
    elif isinstance(data.get("stack"), dict):
        data = data["stack"]
    return dict(data)


def _read_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(StackConfig):
        key = ENV_PREFIX + f.name.upper()
        if key in env and env[key] != "":
            out[f.name] = env[key]
    return out


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, type_: Any, value: Any) -> Any:
    """Turn a file/env/CLI value into the field's type, or raise ConfigError."""
    t = str(type_)
    try:
        if t == "Path":
            if not isinstance(value, str | Path):
                raise TypeError
            return Path(value).expanduser().absolute()
        if t == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
                return value.lower() in _TRUE
            raise TypeError
        if t in ("int", "int | None"):
            if value is None and t.endswith("None"):
                return None
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError  # 1.5 replicas is a typo, not 1
            return int(value)
        if t in ("float", "float | None"):
            if value is None and t.endswith("None"):
                return None
            if isinstance(value, bool) or not math.isfinite(number := float(value)):
                raise TypeError
            return number
        if t == "tuple[str, ...]":
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise TypeError
        if t in ("str", "str | None"):
            if value is None and t.endswith("None"):
                return None
            if not isinstance(value, str):
                raise TypeError
            return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"stack config {name}: bad value {value!r} (expected {t})") from exc
    raise ConfigError(f"stack config {name}: unsupported type {t}")  # pragma: no cover
