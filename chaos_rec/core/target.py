"""The drill target: one shape for the reference stack and for a user's deployment file.

A deployment file (JSON) describes a deployment chaos-rec did not start::

    {"gateway_url": "http://10.0.0.5:8080", "toxiproxy_url": "http://127.0.0.1:8474",
     "redis_url": "redis://127.0.0.1:6379/0",
     "replicas": [{"name": "replica-0", "http_url": "http://127.0.0.1:9000",
                   "link": "replica-0"}],
     "links": {"feature-store": {"listen": "127.0.0.1:6380", "upstream": "127.0.0.1:6379"}},
     "holdout": "/path/holdout.json", "bundle": "/path/bundle",
     "allow_hosts": ["10.0.0.5"], "prometheus_url": "http://127.0.0.1:9090",
     "prometheus_headers": {"Authorization": "Bearer …"}}

Without a fault proxy, ``links`` may instead be a links backend's section (``{"kind":
"chaos-mesh", …}``, ``chaos_rec.backends.chaosmesh_spec``), which names the links itself.

The reference stack's state file (``chaos-rec stack status --json``) gives the same fields, and
a state dir whose supervisor can signal processes.

Every endpoint is reached through the target allowlist (``chaos_rec.core.allowlist``):
``Deployment.targets(seam)`` is the table of what each seam reaches, ``check_targets`` refuses
the seam's off-list hosts, and ``gateway``, ``replica_url``, ``fault_proxy_url``,
``require_toxiproxy`` and ``server_metrics`` hand out an endpoint only once it is allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from chaos_rec.core.allowlist import FILE_FIX, LOOPBACK, REFERENCE_FIX, TargetAllowlist
from chaos_rec.core.secrets import SecretSource
from chaos_rec.errors import ConfigError, FaultError, StackError
from chaos_rec.slo.server import PrometheusAPI

__all__ = [
    "LOOPBACK",
    "SCHEMA_FILE",
    "Deployment",
    "ReplicaTarget",
    "parse_target",
    "read_deployment_file",
    "reference_deployment",
    "validate_deployment",
]

SCHEMA_FILE: Final = Path(__file__).resolve().parents[1] / "schemas" / "deployment.schema.json"
SEAMS: Final = ("traffic", "processes", "data", "rollout")
ADMIN_TOKEN_SECRET: Final = "chaos_rec_admin_token"  # the CTK secret's name (settings table)
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
    """Endpoints of the deployment under test (the reference stack or a deployment file)."""

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
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    backends: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # seam -> section
    users: tuple[int, ...] = ()
    queries: tuple[str, ...] = ()
    secrets: SecretSource = field(default_factory=SecretSource, repr=False, compare=False)
    prometheus_url: str | None = None
    prometheus_headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def server_metrics(self, timeout_s: float = 10.0) -> PrometheusAPI | None:
        """The Prometheus that server-side SLOs are read from (allowlisted), None without one."""
        if not self.prometheus_url:
            return None
        self.check_targets("metrics")
        return PrometheusAPI(self.prometheus_url, dict(self.prometheus_headers), timeout_s)

    def backend(self, seam: str, default: str) -> tuple[str, Mapping[str, Any]]:
        """The backend kind the deployment names for ``seam`` (else ``default``) and its section."""
        section = self.backends.get(seam) or {}
        return str(section.get("kind", default)), section

    @property
    def managed(self) -> bool:
        """True when processes can be signalled (the reference stack's supervisor)."""
        return self.state_dir is not None

    @property
    def reference(self) -> bool:
        """True for the reference stack chaos-rec started."""
        return self.managed

    @property
    def state(self) -> dict[str, Any]:
        """The state or deployment file this was read from, as a dict."""
        return dict(self.raw)

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

    @property
    def link_names(self) -> frozenset[str]:
        """The links the deployment lists: the fault proxy's, or its links backend's."""
        section = self.backends.get("links") or {}
        return frozenset(self.links) | frozenset(section.get("links") or {})

    @property
    def faults_links(self) -> bool:
        """True when link faults have somewhere to go: a fault proxy or a links backend."""
        return bool(self.toxiproxy_url) or "links" in self.backends

    def link(self, target: str) -> str:
        """Resolve ``link:<name>`` (or a bare link name) to a link name the deployment lists."""
        text = str(target)
        name = parse_target(text)[1] if text.startswith("link:") else text
        names = self.link_names
        if names and name not in names:
            raise ConfigError(
                f"no link {name!r} in the deployment (links: {', '.join(sorted(names))})"
            )
        return name

    @property
    def allowlist(self) -> TargetAllowlist:
        """The hosts faults may reach: ``allow_hosts`` (loopback for the reference stack)."""
        return TargetAllowlist(self.allow_hosts, REFERENCE_FIX if self.managed else FILE_FIX)

    def targets(self, seam: str) -> list[tuple[str, str]]:
        """What ``seam`` (traffic, processes, links, data, rollout or metrics) reaches, as
        (deployment-file key, URL or host:port); the kubernetes processes backend reaches a
        kube context and namespace instead (checked by its spec against their allowlists)."""
        named: dict[str, Any]
        if seam == "traffic":
            grpc = (self.backends.get("traffic") or {}).get("grpc_url")
            named = {"gateway_url": self.gateway_url, "traffic.grpc_url": grpc}
        elif seam in ("processes", "rollout"):
            pods = seam == "processes" and self.backend(seam, "reference")[0] == "kubernetes"
            reps = () if pods else self.replicas
            named = {f"replicas.{r.name}.http_url": r.http_url for r in reps}
        elif seam == "links":
            named = {f"links.{n}.listen": link.get("listen") for n, link in self.links.items()}
            named = {"toxiproxy_url": self.toxiproxy_url, **named}
        elif seam == "data":
            named = {"redis_url": self.redis_url}
        elif seam == "metrics":
            named = {"prometheus_url": self.prometheus_url}
        else:
            raise ValueError(f"no seam {seam!r}")
        return [(what, str(url)) for what, url in named.items() if url]

    def check_targets(self, seam: str) -> None:
        """Refuse (FaultError, before anything is reached) a ``seam`` target off the allowlist."""
        self.allowlist.allow_all(self.targets(seam))

    def gateway(self) -> str:
        """The gateway's URL, allowlisted (load, quality replay, health and admin calls)."""
        return self.allowlist.allow("gateway_url", self.gateway_url)

    def replica_url(self, target: str | int) -> str:
        """A replica's ``http_url``, allowlisted; ConfigError when the deployment names none."""
        rep = self.replica(target)
        if not rep.http_url:
            raise ConfigError(f"{rep.name} has no http_url in the deployment")
        return self.allowlist.allow(f"replicas.{rep.name}.http_url", rep.http_url)

    def fault_proxy_url(self) -> str | None:
        """The fault proxy's URL, allowlisted; None when the deployment names none."""
        if not self.toxiproxy_url:
            return None
        return self.allowlist.allow("toxiproxy_url", self.toxiproxy_url)

    def require_toxiproxy(self) -> str:
        """The fault proxy's URL (allowlisted), or a ConfigError saying how to set it."""
        url = self.fault_proxy_url()
        if url is None:
            raise ConfigError(
                "no fault proxy configured: set configuration chaos_rec_toxiproxy_url"
            )
        return url

    def require_managed(self, what: str) -> Path:
        """The stack state dir, or a FaultError: process faults need the reference stack."""
        if self.state_dir is None:
            raise FaultError(
                f"{what} needs the reference stack's supervisor; this deployment ({self.source}) "
                "is driven by network APIs only"
            )
        return self.state_dir


@dataclass(frozen=True)
class Overrides:
    """Endpoints and secrets given by the door (configuration, secrets) over the target's."""

    gateway_url: str | None = None
    toxiproxy_url: str | None = None
    admin_token: str | None = None
    ctk_secrets: Mapping[str, Any] | None = field(default=None, repr=False)


def reference_deployment(state_dir: Path | None, over: Overrides = Overrides()) -> Deployment:
    """The running reference stack in ``state_dir`` (StackNotRunning when there is none)."""
    from chaos_rec.stack import load_state
    from chaos_rec.stack.secret import read_token

    state = load_state(state_dir)
    links = dict(state.get("links") or {})
    replicas = []
    for comp in state.replicas():
        name = comp["name"]
        http = comp.get("endpoints", {}).get("http")
        link = name if name in links else None
        replicas.append(
            ReplicaTarget(name, int(comp.get("replica") or 0), http, link, comp.get("pid"))
        )
    gateway = over.gateway_url or state.get("gateway_url")
    if not gateway:
        raise StackError("the stack state names no gateway_url (is the gateway enabled?)")
    comps = state.get("components") or {}
    redis_url = comps["redis"].get("endpoints", {}).get("redis") if "redis" in comps else None
    holdout, bundle = state.get("holdout"), state.get("bundle")
    return Deployment(
        source=f"reference stack at {state.state_dir}",
        gateway_url=str(gateway).rstrip("/"),
        toxiproxy_url=over.toxiproxy_url or state.get("toxiproxy_url"),
        redis_url=redis_url,
        replicas=tuple(replicas),
        links=links,
        holdout=Path(holdout) if holdout else None,
        bundle=Path(bundle) if bundle else None,
        state_dir=state.state_dir,
        admin_token=over.admin_token or read_token(state.state_dir),
        raw=dict(state),
        prometheus_url=state.get("prometheus_url"),
    )


def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


def validate_deployment(data: Any, path: Path | str) -> None:
    """Check a deployment file's contents against the published JSON Schema; one line if not."""
    import jsonschema

    schema = _schema()
    if isinstance(data, dict):
        unknown = sorted(set(data) - set(schema["properties"]))
        if unknown:
            raise ConfigError(f"deployment file {path}: unknown key {unknown[0]!r}")
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(data)
    )
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"deployment file {path}: {where}: {error.message}")


def read_deployment_file(path: Path, over: Overrides = Overrides()) -> Deployment:
    """A user's deployment file; one ConfigError line for anything wrong in it."""
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read deployment file {path}: {exc.strerror}") from exc
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"deployment file {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"deployment file {path} must hold a JSON object")
    validate_deployment(data, path)
    replicas = tuple(
        ReplicaTarget(
            str(rep["name"]), int(rep.get("index", i)), rep.get("http_url"), rep.get("link"), None
        )
        for i, rep in enumerate(data.get("replicas") or [])
    )
    backends = {seam: data[seam] for seam in SEAMS if seam in data}
    links = dict(data.get("links") or {})
    if "kind" in links:  # a links backend's section, not the fault proxy's links
        if data.get("toxiproxy_url"):
            raise ConfigError(
                f"deployment file {path}: links: a {links['kind']} links section and a "
                "toxiproxy_url: name one of them"
            )
        backends["links"], links = links, {}
    secrets_file = (Path(path).parent / data["secrets_file"]) if data.get("secrets_file") else None
    secrets = SecretSource(over.ctk_secrets, file=secrets_file)
    return Deployment(
        source=str(path),
        gateway_url=str(over.gateway_url or data["gateway_url"]).rstrip("/"),
        toxiproxy_url=over.toxiproxy_url or data.get("toxiproxy_url"),
        redis_url=data.get("redis_url"),
        replicas=replicas,
        links=links,
        holdout=Path(data["holdout"]) if data.get("holdout") else None,
        bundle=Path(data["bundle"]) if data.get("bundle") else None,
        state_dir=None,
        allow_hosts=frozenset(LOOPBACK | set(data.get("allow_hosts") or [])),
        admin_token=over.admin_token or secrets.find(ADMIN_TOKEN_SECRET),
        raw=data,
        backends=backends,
        users=tuple(int(u) for u in data.get("users") or ()),
        queries=tuple(str(q) for q in data.get("queries") or ()),
        secrets=secrets,
        prometheus_url=data.get("prometheus_url"),
        prometheus_headers=dict(data.get("prometheus_headers") or {}),
    )


def resolve(target: str, state_dir: Path | None, over: Overrides = Overrides()) -> Deployment:
    """``reference`` (the stack in ``state_dir``) or the path of a deployment file."""
    if target == "reference":
        return reference_deployment(state_dir, over)
    return read_deployment_file(Path(target), over)
