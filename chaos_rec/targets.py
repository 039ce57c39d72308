"""Named fault targets (``replica:1``, ``link:feature-store``, ``redis``, ``gateway``).

A :class:`Deployment` is read either from the reference stack's state file or
from an explicit deployment file (JSON) describing a user's own deployment::

    {"gateway_url": "http://10.0.0.5:8080", "toxiproxy_url": "http://127.0.0.1:8474",
     "redis_url": "redis://127.0.0.1:6379/0",
     "replicas": [{"name": "replica-0", "http_url": "http://127.0.0.1:9000",
                   "link": "replica-0"}],
     "links": {"feature-store": {"listen": "127.0.0.1:6380", "upstream": "127.0.0.1:6379"}},
     "holdout": "/path/holdout.json", "bundle": "/path/bundle",
     "allow_hosts": ["10.0.0.5"]}

Process faults (kill, hang, restart) need the reference stack's supervisor.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from chaos_rec.errors import ConfigError, FaultError, StackError
from chaos_rec.extconfig import ExtConfig

__all__ = [
    "Deployment",
    "ReplicaTarget",
    "load_deployment",
    "parse_target",
]

LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_TARGET_RE: Final = re.compile(r"^(replica|link):([A-Za-z0-9_.\-]+)$|^(redis|gateway)$")


def parse_target(target: str) -> tuple[str, str]:
    """Split ``replica:1`` / ``link:feature-store`` / ``redis`` / ``gateway`` into (kind, arg)."""
    m = _TARGET_RE.match(str(target).strip())
    if not m:
        raise ConfigError(
            f"unknown target {target!r}: use replica:<i>, link:<name>, redis or gateway"
        )
    if m.group(3):
        return m.group(3), ""
    return m.group(1), m.group(2)


@dataclass(frozen=True)
class ReplicaTarget:
    """One model-server replica: component name, index, REST URL and its fault-proxy link."""

    name: str
    index: int
    http_url: str | None
    link: str | None
    pid: int | None = None


@dataclass(frozen=True)
class Deployment:
    """Endpoints of the deployment under test."""

    source: str
    gateway_url: str
    toxiproxy_url: str | None
    redis_url: str | None
    replicas: tuple[ReplicaTarget, ...]
    links: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    holdout: Path | None = None
    bundle: Path | None = None
    state_dir: Path | None = None
    allow_hosts: frozenset[str] = LOOPBACK
    admin_token: str | None = None

    @property
    def managed(self) -> bool:
        """True when processes can be signalled (the reference stack's supervisor)."""
        return self.state_dir is not None

    def materialize_command(self, *, verify_only: bool = False) -> list[str]:
        """``python -m training materialize`` against this deployment's Redis and bundle."""
        if not self.redis_url or not self.bundle:
            raise ConfigError("the deployment names no redis_url/bundle to materialise or verify")
        cmd = [sys.executable, "-m", "training", "materialize",
               "--redis", self.redis_url, "--bundle", str(self.bundle)]  # fmt: skip
        return [*cmd, "--verify-only"] if verify_only else cmd

    def replica(self, target: str | int) -> ReplicaTarget:
        """Resolve ``replica:<i>`` (or an index / component name) to a replica."""
        if isinstance(target, int):
            key = str(target)
        else:
            text = str(target)
            key = parse_target(text)[1] if text.startswith("replica:") else text
        for rep in self.replicas:
            if key in (str(rep.index), rep.name):
                return rep
        names = ", ".join(f"replica:{r.index}" for r in self.replicas) or "none"
        raise ConfigError(f"no replica {target!r} in the deployment (replicas: {names})")

    def link(self, target: str) -> str:
        """Resolve ``link:<name>`` (or a bare link name) to a fault-proxy link name."""
        text = str(target)
        name = parse_target(text)[1] if text.startswith("link:") else text
        if self.links and name not in self.links:
            raise ConfigError(
                f"no link {name!r} in the deployment (links: {', '.join(sorted(self.links))})"
            )
        return name

    def require_toxiproxy(self) -> str:
        """The fault-proxy URL, or a ConfigError saying how to set it."""
        if not self.toxiproxy_url:
            raise ConfigError(
                "no fault proxy configured: set configuration chaos_rec_toxiproxy_url"
            )
        return self.toxiproxy_url

    def require_managed(self, what: str) -> Path:
        """The stack state dir, or a FaultError: process faults need the reference stack."""
        if self.state_dir is None:
            raise FaultError(
                f"{what} needs the reference stack's supervisor; this deployment ({self.source}) "
                "is driven by network APIs only"
            )
        return self.state_dir

    def check_host(self, url: str) -> None:
        """Refuse a fault on a host outside the allowlist (loopback by default)."""
        host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
        if host not in self.allow_hosts:
            raise FaultError(
                f"host {host!r} is not on the fault allowlist ({', '.join(sorted(self.allow_hosts))}); "
                "add it to allow_hosts in the deployment file"
            )


def _from_state(cfg: ExtConfig) -> Deployment:
    from chaos_rec.stack import load_state
    from chaos_rec.stack.secret import read_token

    state = load_state(cfg.state_dir)
    replicas = []
    for comp in state.replicas():
        idx = int(comp.get("replica") or 0)
        http = comp.get("endpoints", {}).get("http")
        name = comp["name"]
        link = name if name in (state.get("links") or {}) else None
        replicas.append(ReplicaTarget(name, idx, http, link, comp.get("pid")))
    gateway = cfg.gateway_url or state.get("gateway_url")
    if not gateway:
        raise StackError("the stack state names no gateway_url (is the gateway enabled?)")
    redis_url = None
    comps = state.get("components") or {}
    if "redis" in comps:
        redis_url = comps["redis"].get("endpoints", {}).get("redis")
    holdout = state.get("holdout")
    bundle = state.get("bundle")
    return Deployment(
        source=f"reference stack at {state.state_dir}",
        gateway_url=str(gateway).rstrip("/"),
        toxiproxy_url=cfg.toxiproxy_url or state.get("toxiproxy_url"),
        redis_url=redis_url,
        replicas=tuple(replicas),
        links=dict(state.get("links") or {}),
        holdout=Path(holdout) if holdout else None,
        bundle=Path(bundle) if bundle else None,
        state_dir=state.state_dir,
        admin_token=cfg.admin_token or read_token(state.state_dir),
    )


def _from_file(path: Path, cfg: ExtConfig) -> Deployment:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read deployment file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"deployment file {path} must hold a JSON object")
    known = {
        "gateway_url",
        "toxiproxy_url",
        "redis_url",
        "replicas",
        "links",
        "holdout",
        "bundle",
        "allow_hosts",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"deployment file {path}: unknown key {unknown[0]!r}")
    gateway = cfg.gateway_url or data.get("gateway_url")
    if not gateway:
        raise ConfigError(f"deployment file {path} names no gateway_url")
    replicas = []
    for i, rep in enumerate(data.get("replicas") or []):
        if not isinstance(rep, dict):
            raise ConfigError(f"deployment file {path}: replicas[{i}] must be an object")
        replicas.append(
            ReplicaTarget(
                str(rep.get("name", f"replica-{i}")),
                int(rep.get("index", i)),
                rep.get("http_url"),
                rep.get("link"),
                None,
            )
        )
    allow = frozenset(LOOPBACK | set(data.get("allow_hosts") or []))
    return Deployment(
        source=str(path),
        gateway_url=str(gateway).rstrip("/"),
        toxiproxy_url=cfg.toxiproxy_url or data.get("toxiproxy_url"),
        redis_url=data.get("redis_url"),
        replicas=tuple(replicas),
        links=dict(data.get("links") or {}),
        holdout=Path(data["holdout"]) if data.get("holdout") else None,
        bundle=Path(data["bundle"]) if data.get("bundle") else None,
        state_dir=None,
        allow_hosts=allow,
        admin_token=cfg.admin_token,
    )


def load_deployment(cfg: ExtConfig) -> Deployment:
    """The deployment named by ``chaos_rec_target`` (the reference stack by default)."""
    if cfg.target == "reference":
        return _from_state(cfg)
    return _from_file(Path(cfg.target), cfg)


# ---- low-level checks shared by actions and probes ---------------------------------

_PROBE_BYTES: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _hostport(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return (host.strip("[]") or "127.0.0.1"), int(port)


def link_round_trip(addr: str, timeout: float = 3.0) -> float:
    """Seconds from sending a few bytes through ``host:port`` to the first byte back.

    Works for Redis (it answers an error) and gRPC/HTTP/2 (it answers SETTINGS).
    Raises OSError (refused, reset, closed, timeout) when no byte comes back.
    """
    start = time.perf_counter()
    with socket.create_connection(_hostport(addr), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_PROBE_BYTES)
        data = sock.recv(1)
        if not data:
            raise ConnectionResetError(f"{addr} closed the connection without answering")
    return time.perf_counter() - start


def connect_refused(addr: str, timeout: float = 1.0) -> bool:
    """True when a TCP connect to ``host:port`` is refused (nothing listens)."""
    try:
        with socket.create_connection(_hostport(addr), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def proc_state(pid: int) -> str:
    """The /proc state letter of a process (``R``, ``S``, ``T``, ``Z``…); ``X`` if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    return stat.rpartition(")")[2].split()[0]


def admin_request(
    base_url: str,
    method: str,
    path: str,
    *,
    token: str | None,
    body: Mapping[str, Any] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """Call an admin endpoint; returns (status, JSON or text). FaultError when unreachable."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = httpx.request(method, base_url + path, json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise FaultError(f"{method} {base_url}{path} failed: {exc or type(exc).__name__}") from exc
    try:
        data: Any = resp.json()
    except ValueError:
        data = resp.text
    return resp.status_code, data
