"""Backends of the drill seams (``chaos_rec.core.seams``), chosen per deployment.

A deployment file names a backend per seam (``traffic``, ``processes``, ``data``, ``rollout``,
each ``{"kind": …}``, see ``chaos_rec/schemas/deployment.schema.json``); without one a seam
gets the reference stack's backend (``chaos_rec.backends.reference``). Links go through a
Toxiproxy-API server, or, with a ``links`` section of kind ``chaos-mesh``, through Chaos Mesh
(``chaos_rec.backends.chaosmesh``). The doors call these and hand the seams to the core.

Each builder first passes what its seam reaches (``Deployment.targets``) through the target
allowlist (``chaos_rec.core.allowlist``): a host off ``allow_hosts`` is one FaultError line, and
no client, command or signal is made. The kubernetes backend checks its context and namespace
the same way, before it builds a client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chaos_rec.core.seams import FeatureData, Links, Processes, Rollout, Traffic
from chaos_rec.core.target import SEAMS, Deployment
from chaos_rec.errors import ChaosRecError

if TYPE_CHECKING:
    from chaos_rec.backends.chaosmesh import ChaosMeshLinks
    from chaos_rec.core.guard import Repairer

__all__ = [
    "check",
    "data",
    "guard_repairer",
    "links",
    "processes",
    "repair_links",
    "rollout",
    "traffic",
]


def _where(dep: Deployment, seam: str) -> str:
    return f"deployment file {dep.source}: {seam}"


def traffic(dep: Deployment, timeout_s: float) -> Traffic:
    """Load and quality replay through the deployment's API adapter (default: chaos-rec)."""
    from chaos_rec.backends.adapters import AdapterTraffic, TrafficSpec

    _, section = dep.backend("traffic", "chaos-rec")
    dep.check_targets("traffic")
    spec = TrafficSpec.from_dict(section or {"kind": "chaos-rec"}, _where(dep, "traffic"))
    secrets = dep.secrets.resolve(spec.secret_names, _where(dep, "traffic.headers"))
    return AdapterTraffic(
        dep.gateway_url, spec, timeout_s, holdout=dep.holdout, user_ids=dep.users,
        queries=dep.queries, secrets=secrets,
    )  # fmt: skip


def processes(dep: Deployment, what: str = "process faults") -> Processes:
    """Replica processes: shell commands, Kubernetes pods, else the reference supervisor."""
    kind, section = dep.backend("processes", "reference")
    dep.check_targets("processes")  # kubernetes: its spec checks the context and namespace
    if kind == "command":
        from chaos_rec.backends.commands import CommandProcesses, ProcessCommands

        return CommandProcesses(ProcessCommands.from_dict(section, _where(dep, "processes")), dep)
    if kind == "kubernetes":
        from chaos_rec.backends.kubernetes import KubernetesProcesses, KubernetesSpec

        spec = KubernetesSpec.from_dict(section, _where(dep, "processes"))
        return KubernetesProcesses(spec, dep)
    from chaos_rec.backends.reference import SupervisorProcesses

    dep.require_managed(what)
    return SupervisorProcesses(dep)


def _chaos_mesh(dep: Deployment) -> ChaosMeshLinks | None:
    kind, section = dep.backend("links", "toxiproxy")
    if kind != "chaos-mesh":
        return None
    from chaos_rec.backends.chaosmesh import ChaosMeshLinks
    from chaos_rec.backends.chaosmesh_spec import ChaosMeshSpec

    return ChaosMeshLinks(ChaosMeshSpec.from_dict(section, _where(dep, "links")))


def links(dep: Deployment, timeout_s: float) -> Links:
    """Network links: Chaos Mesh, else the deployment's fault proxy (host on the allowlist)."""
    chaos_mesh = _chaos_mesh(dep)
    if chaos_mesh is not None:
        return chaos_mesh
    from chaos_rec.toxiproxy.client import ToxiproxyClient

    url = dep.require_toxiproxy()
    dep.check_targets("links")
    return ToxiproxyClient(url, timeout=timeout_s)


def repair_links(dep: Deployment) -> list[str]:
    """Undo every link fault chaos-rec left on a links backend (Chaos Mesh: its labelled
    objects); one line each. A fault proxy is reset by ``chaos_rec.core.guard.repair``."""
    chaos_mesh = _chaos_mesh(dep)
    return chaos_mesh.reset() if chaos_mesh is not None else []


def guard_repairer(dep: Deployment) -> Repairer | None:
    """The drill guard's repair of ``dep`` (after every drill, and of a crashed session): with
    a links backend, the guard's own repair and then that backend's leftovers; else None (the
    guard's own: the reference stack's repair, or a reset of the fault proxy)."""
    if "links" not in dep.backends:
        return None
    from chaos_rec.core.guard import repair

    return lambda state_dir, url: [*repair(state_dir, url), *repair_links(dep)]


def data(dep: Deployment, timeout_s: float, wipe: str | None = None) -> FeatureData:
    """The feature store: shell commands, else Redis restored by materialising the bundle.

    ``wipe`` names the fault about to wipe it: Redis is wiped by restarting the reference
    stack's, so that needs its supervisor.
    """
    kind, section = dep.backend("data", "redis")
    dep.check_targets("data")
    if kind == "command":
        from chaos_rec.backends.commands import CommandFeatureData, DataCommands

        return CommandFeatureData(DataCommands.from_dict(section, _where(dep, "data")))
    from chaos_rec.backends.reference import RedisFeatureData

    if wipe is not None:
        dep.require_managed(wipe)
    return RedisFeatureData(dep, timeout_s)


def rollout(dep: Deployment, timeout_s: float, admin_token: str | None = None) -> Rollout:
    """Model versions: shell commands, Triton's repository API, else the reference admin reload."""
    kind, section = dep.backend("rollout", "reference")
    dep.check_targets("rollout")
    if kind == "triton-repository":
        from chaos_rec.backends.triton_repository import TritonRepositoryRollout
        from chaos_rec.core.secrets import fill_secrets, secret_names

        headers = dict(section.get("headers") or {})
        values = dep.secrets.resolve(secret_names(headers.values()), _where(dep, "rollout.headers"))
        filled = {k: fill_secrets(str(v), values) for k, v in headers.items()}
        return TritonRepositoryRollout(section, dep, timeout_s, headers=filled)
    if kind == "command":
        from chaos_rec.backends.commands import CommandRollout, RolloutCommands

        return CommandRollout(RolloutCommands.from_dict(section, _where(dep, "rollout")), dep)
    from chaos_rec.backends.reference import ReferenceRollout

    return ReferenceRollout(dep, timeout_s, admin_token)


def check(dep: Deployment, timeout_s: float = 5.0) -> list[str]:
    """Build the backend of every seam the deployment file names: what is wrong, one line each."""
    build: dict[str, Callable[[], object]] = {
        "traffic": lambda: traffic(dep, timeout_s),
        "processes": lambda: processes(dep),
        "data": lambda: data(dep, timeout_s),
        "rollout": lambda: rollout(dep, timeout_s),
        "links": lambda: links(dep, timeout_s),
    }
    problems: list[str] = []
    for seam in (*SEAMS, "links"):
        if seam in dep.backends:
            try:
                build[seam]()
            except ChaosRecError as exc:
                problems.append(str(exc))
    return problems
