"""The Triton deployment's layout: ports, paths and the config files stack.py writes.

Everything derives from one state dir and one base port (default 19000):

| what | port |
| --- | --- |
| Redis (feature store) | base |
| fault-proxy link ``feature-store`` (replicas → Redis) | base + 1 |
| replica i: Triton HTTP / gRPC / metrics | base + 10 + 10·i (+0 / +1 / +2) |
| Prometheus (scrapes Triton's metrics and HAProxy's exporter) | base + 102 |
| HAProxy frontend (the gateway) / stats + Prometheus | base + 100 / base + 101 |
| fault-proxy link ``replica-i`` (HAProxy → replica i) | base + 110 + 10·i |
| fault-proxy API (Toxiproxy HTTP API) | base + 190 |
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
MODEL = "recommender"
REPO = Path(__file__).resolve().parents[2]
TRITON_VENV = Path(os.environ.get("CHAOS_REC_TRITON_VENV") or REPO / ".venv-triton")
DEFAULT_BUNDLE = REPO / "bundles" / "reference"
DEFAULT_STATE = REPO / ".chaos-rec" / "triton"
SERVER_READY = "/v2/health/ready"  # Triton says ready here before PyTriton has bound the model
MODEL_READY = f"/v2/models/{MODEL}/ready"


@dataclass(frozen=True)
class Layout:
    """Where every part of one Triton deployment listens and keeps its files."""

    state_dir: Path
    base_port: int = 19000
    replicas: int = 2
    bundle: Path = DEFAULT_BUNDLE
    health_uri: str = SERVER_READY  # what HAProxy's httpchk asks each replica

    def _in(self, name: str) -> Path:
        return self.state_dir / name

    @property
    def supervisor_conf(self) -> Path:
        """Supervisord's config."""
        return self._in("supervisord.conf")

    @property
    def supervisor_sock(self) -> Path:
        """Supervisord's control socket."""
        return self._in("supervisor.sock")

    @property
    def supervisor_pid(self) -> Path:
        """Supervisord's pid file."""
        return self._in("supervisord.pid")

    @property
    def haproxy_cfg(self) -> Path:
        """HAProxy's config."""
        return self._in("haproxy.cfg")

    @property
    def links_file(self) -> Path:
        """The fault proxy's links (Toxiproxy populate format)."""
        return self._in("links.json")

    @property
    def holdout(self) -> Path:
        """The hold-out rows (quality replay)."""
        return self._in("holdout.json")

    @property
    def deployment_file(self) -> Path:
        """The deployment file drills read."""
        return self._in("deployment.json")

    @property
    def logs(self) -> Path:
        """One log per program."""
        return self._in("logs")

    def served_bundle(self, name: str) -> Path:
        """The symlink a replica loads its bundle from (``push`` swaps it, then restarts)."""
        return self.state_dir / "bundles" / name

    @property
    def redis_port(self) -> int:
        """Redis itself."""
        return self.base_port

    @property
    def redis_link_port(self) -> int:
        """The fault-proxy link the replicas read Redis through."""
        return self.base_port + 1

    def replica_port(self, i: int, offset: int = 0) -> int:
        """Replica ``i``'s Triton HTTP (+1 gRPC, +2 metrics) port."""
        return self.base_port + 10 + 10 * i + offset

    def replica_link_port(self, i: int) -> int:
        """The fault-proxy link HAProxy reaches replica ``i`` through."""
        return self.base_port + 110 + 10 * i

    @property
    def gateway_port(self) -> int:
        """HAProxy's frontend."""
        return self.base_port + 100

    @property
    def stats_port(self) -> int:
        """HAProxy's stats page and Prometheus exporter."""
        return self.base_port + 101

    @property
    def prometheus_port(self) -> int:
        """Prometheus, scraping the replicas' Triton metrics and HAProxy's exporter every 1 s."""
        return self.base_port + 102

    @property
    def prometheus_dir(self) -> Path:
        """Prometheus's config and TSDB (removed by down)."""
        return self._in("prometheus")

    @property
    def toxiproxy_port(self) -> int:
        """The fault proxy's Toxiproxy HTTP API."""
        return self.base_port + 190

    def names(self) -> list[str]:
        """Replica program names (supervisord) = HAProxy server names = link names."""
        return [f"replica-{i}" for i in range(self.replicas)]

    def ports(self) -> list[int]:
        """Every port this deployment listens on (down checks each is closed)."""
        out = [
            self.redis_port,
            self.redis_link_port,
            self.gateway_port,
            self.stats_port,
            self.prometheus_port,
            self.toxiproxy_port,
        ]
        for i in range(self.replicas):
            out += [self.replica_port(i, o) for o in range(3)] + [self.replica_link_port(i)]
        return out

    def links(self) -> dict[str, dict[str, str]]:
        """Fault-proxy links by name (the deployment file's ``links``)."""
        out = {
            "feature-store": {
                "listen": f"{HOST}:{self.redis_link_port}",
                "upstream": f"{HOST}:{self.redis_port}",
            }
        }
        for i, name in enumerate(self.names()):
            out[name] = {
                "listen": f"{HOST}:{self.replica_link_port(i)}",
                "upstream": f"{HOST}:{self.replica_port(i)}",
            }
        return out

    def populate(self) -> list[dict[str, Any]]:
        """The links in Toxiproxy's populate format (``--config`` of the fault proxy)."""
        return [{"name": n, "enabled": True, **v} for n, v in self.links().items()]


def triton_libdir() -> str:
    """The Triton venv interpreter's own libpython folder (LD_LIBRARY_PATH of a replica)."""
    code = "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"
    out = subprocess.run([venv_tool("python"), "-c", code], capture_output=True, text=True,
                         timeout=30, check=True)  # fmt: skip
    return out.stdout.strip()


def venv_tool(name: str) -> str:
    """A program of the Triton venv (python, supervisord, supervisorctl)."""
    return str(TRITON_VENV / "bin" / name)


def haproxy_config(lay: Layout) -> str:
    """HAProxy in front of the replicas (each through its fault-proxy link)."""
    servers = [(name, lay.replica_link_port(i)) for i, name in enumerate(lay.names())]
    pidfile = lay.state_dir / "haproxy.pid"
    return haproxy_text(lay.gateway_port, lay.stats_port, servers, pidfile, lay.health_uri)


def haproxy_text(
    frontend: int,
    stats: int,
    servers: Sequence[tuple[str, int]],
    pidfile: Path,
    health_uri: str = SERVER_READY,
) -> str:
    """HAProxy for OIP v2 replicas: health checks, L7 retries, redispatch, timeouts."""
    lines = "\n".join(f"    server {name} {HOST}:{port} check" for name, port in servers)
    return f"""# written by deploy/triton (stack.py or benchmarks/bench_serving.py)
global
    maxconn 4096
    pidfile {pidfile}

defaults
    mode http
    timeout connect 500ms
    timeout client 30s
    timeout server 5s
    timeout check 1s
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503 504
    option http-buffer-request

frontend oip
    bind {HOST}:{frontend}
    # the gateway's readiness (chaos-rec's gateway_ready probe asks /readyz): a replica is up
    monitor-uri /readyz
    monitor fail if {{ nbsrv(replicas) lt 1 }}
    default_backend replicas

frontend stats
    bind {HOST}:{stats}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    stats enable
    stats uri /stats

backend replicas
    balance roundrobin
    option httpchk GET {health_uri}
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
    http-response set-header X-Served-By %s
{lines}
"""


def _program(name: str, command: list[str], lay: Layout, **extra: str) -> str:
    lines = [
        f"[program:{name}]",
        f"command={' '.join(shlex.quote(c) for c in command)}",
        f"directory={REPO}",
        "autorestart=true",
        "startsecs=1",
        "startretries=5",
        "stopasgroup=true",
        "killasgroup=true",
        "stopwaitsecs=10",
        "redirect_stderr=true",
        f"stdout_logfile={lay.logs / (name + '.log')}",
        "stdout_logfile_maxbytes=5MB",
        "stdout_logfile_backups=0",
    ]
    lines += [f"{key}={value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def prometheus_config(lay: Layout) -> str:
    """Scrape config (JSON, which Prometheus reads as YAML): Triton's metrics per replica, HAProxy."""
    triton = [{"targets": [f"{HOST}:{lay.replica_port(i, 2)}"], "labels": {"replica": name}}
              for i, name in enumerate(lay.names())]  # fmt: skip
    return json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "triton", "static_configs": triton},
            {"job_name": "haproxy", "static_configs": [{"targets": [f"{HOST}:{lay.stats_port}"]}]},
        ],
    }, indent=1)  # fmt: skip


def _prometheus_program(lay: Layout, binary: str | None) -> list[str]:
    """Prometheus under supervisord, when the binary is installed (else the stack runs without)."""
    if binary is None:
        return []
    cmd = [binary, f"--config.file={lay.prometheus_dir / 'prometheus.yml'}",
           f"--storage.tsdb.path={lay.prometheus_dir / 'data'}",
           f"--web.listen-address={HOST}:{lay.prometheus_port}"]  # fmt: skip
    return [_program("prometheus", cmd, lay)]


def supervisor_config(lay: Layout, main_python: str, redis_binary: str, libdir: str) -> str:
    """supervisord: Redis, the fault proxy, the Triton replicas (started after features), HAProxy.

    ``libdir`` is the Triton venv interpreter's own libpython folder: the Python backend stub
    must load that libpython, not the system's (README.md, pitfalls).
    """
    triton_py = venv_tool("python")
    out = [
        "; written by deploy/triton/stack.py",
        "[unix_http_server]",
        f"file={lay.supervisor_sock}",
        "chmod=0700",
        "[supervisord]",
        f"logfile={lay.logs / 'supervisord.log'}",
        f"pidfile={lay.supervisor_pid}",
        "loglevel=warn",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "[supervisorctl]",
        f"serverurl=unix://{lay.supervisor_sock}",
        "",
        _program(
            "redis",
            [
                redis_binary,
                "--port",
                str(lay.redis_port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
                str(lay.state_dir),
            ],
            lay,
        ),
        _program(
            "faultproxy",
            [
                main_python,
                "-m",
                "chaos_rec.toxiproxy",
                "--host",
                HOST,
                "--port",
                str(lay.toxiproxy_port),
                "--config",
                str(lay.links_file),
            ],
            lay,
            environment=f'PYTHONPATH="{REPO}"',
        ),
    ]
    for i, name in enumerate(lay.names()):
        cmd = [
            triton_py,
            str(REPO / "deploy" / "triton" / "replica.py"),
            "--bundle",
            str(lay.served_bundle(name)),
            "--redis-url",
            f"redis://{HOST}:{lay.redis_link_port}/0",
            "--http-port",
            str(lay.replica_port(i)),
            "--grpc-port",
            str(lay.replica_port(i, 1)),
            "--metrics-port",
            str(lay.replica_port(i, 2)),
            "--workspace",
            str(lay.state_dir / "workspace" / name),
        ]
        env = (
            f'PYTHONPATH="{REPO}",LD_LIBRARY_PATH="{libdir}",HF_HUB_OFFLINE="1",OMP_NUM_THREADS="1"'
        )
        out.append(_program(name, cmd, lay, autostart="false", environment=env))
    out.append(
        _program("haproxy", ["haproxy", "-f", str(lay.haproxy_cfg), "-db"], lay, startsecs="1")
    )
    out += _prometheus_program(lay, shutil.which("prometheus"))
    return "\n".join(out)


def write_configs(lay: Layout, main_python: str, redis_binary: str, libdir: str) -> None:
    """Write links.json, haproxy.cfg and supervisord.conf into the state dir."""
    lay.logs.mkdir(parents=True, exist_ok=True)
    for name in lay.names():
        link = lay.served_bundle(name)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(lay.bundle, target_is_directory=True)
    lay.links_file.write_text(json.dumps(lay.populate(), indent=1) + "\n")
    lay.haproxy_cfg.write_text(haproxy_config(lay))
    lay.prometheus_dir.mkdir(parents=True, exist_ok=True)
    (lay.prometheus_dir / "prometheus.yml").write_text(prometheus_config(lay))
    lay.supervisor_conf.write_text(supervisor_config(lay, main_python, redis_binary, libdir))
