"""What a deployment offers, from the backends its file names (names: ``chaos_rec.core.capabilities``).

The reference stack chaos-rec started offers every capability and the links in its state. A
deployment file offers what its sections make possible: ``processes`` with a ``command`` (or
another non-reference) backend, ``data`` and ``data-wipe`` with a ``command`` data backend (or
Redis plus a bundle to materialise, for ``data``), ``rollout`` with a ``rollout`` section, the
links it names when it names a fault proxy or a links backend (``chaos-mesh``) and the toxic
types that backend adds (a fault proxy: all), ``fallback-marker`` when its traffic adapter has one,
``holdout`` when its hold-out file exists, ``prometheus`` with a ``prometheus_url`` (the reference
stack's, when the binary was installed) and ``metrics:<family>`` for each family its ``metrics``
list names (the reference stack's Prometheus holds ``chaos-rec``). ``resilience-switches`` exist only on the reference
stack, whose mechanisms chaos-rec can turn off.
"""

from __future__ import annotations

from chaos_rec.core.capabilities import ANY_LINK, ANY_TOXIC, CAPABILITIES, REFERENCE_METRICS
from chaos_rec.core.target import Deployment
from chaos_rec.errors import ChaosRecError
from chaos_rec.traffic import TrafficSpec

__all__ = ["offered"]


def _toxics(dep: Deployment) -> set[str]:
    """The toxic types its links backend adds: Chaos Mesh's few, else a fault proxy's all."""
    kind, _ = dep.backend("links", "toxiproxy")
    if kind == "chaos-mesh":
        from chaos_rec.backends.chaosmesh_spec import CHAOS_MESH_TOXICS

        return {f"toxic:{name}" for name in CHAOS_MESH_TOXICS}
    return {ANY_TOXIC}


def offered(dep: Deployment) -> frozenset[str]:
    """Every capability ``dep`` offers, ``link:<name>`` for each link it can fault."""
    links = (
        {*({f"link:{name}" for name in dep.link_names} or {ANY_LINK}), *_toxics(dep)}
        if dep.faults_links
        else set()
    )
    families = dep.raw.get("metrics") if not dep.managed else [REFERENCE_METRICS]
    server = (
        {"prometheus", *(f"metrics:{f}" for f in families or [])} if dep.prometheus_url else set()
    )
    if dep.managed:  # the reference stack: all, Prometheus (its cr_* metrics) when it runs one
        return frozenset({*(set(CAPABILITIES) - {"prometheus"}), *server, *links})
    caps = set(links) | server
    processes, _ = dep.backend("processes", "reference")
    if processes != "reference":
        caps.add("processes")
    if any(rep.http_url for rep in dep.replicas):
        caps.add("replicas")
    data, _ = dep.backend("data", "redis")
    if data == "command":
        caps |= {"data", "data-wipe"}
    elif dep.redis_url and dep.bundle is not None:
        caps.add("data")
    if "rollout" in dep.backends:
        caps.add("rollout")
    section = dep.backends.get("traffic") or {"kind": "chaos-rec"}
    try:
        if TrafficSpec.from_dict(section, "traffic").has_fallback_marker:
            caps.add("fallback-marker")
    except ChaosRecError:  # a bad section is reported by backends.check, not here
        pass
    if dep.holdout is not None and dep.holdout.is_file():
        caps.add("holdout")
    return frozenset(caps)
