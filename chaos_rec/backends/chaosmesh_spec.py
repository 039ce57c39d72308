"""What the ``chaos-mesh`` links backend asks of Chaos Mesh: its section, and each fault's body.

A deployment file without a fault proxy names its links in a ``links`` section of this kind::

    "links": {"kind": "chaos-mesh", "context": "gpu-staging", "namespace": "recommender",
              "allowed_contexts": ["gpu-staging"], "allowed_namespaces": ["recommender"],
              "inject_timeout_s": 30,
              "links": {
                "feature-store": {"source": {"label_selector": "app.kubernetes.io/name=model-server"},
                                  "target": {"label_selector": "app.kubernetes.io/name=redis"},
                                  "direction": "to"},
                "payments-api": {"source": {"label_selector": "app=gateway"},
                                 "target": {"external": ["10.0.0.7", "payments.example.com"]}}}}

A link is the traffic between the ``source`` pods (every pod of a label selector, in
``namespace`` unless the selector names its own) and the ``target``: pods the same way, or hosts
outside the cluster (``external``, Chaos Mesh's ``externalTargets``, which it applies to
``direction`` ``to`` only). ``direction`` (default ``to``) is Chaos Mesh's: ``to`` shapes the
packets from source to target, ``from`` those back, ``both`` both; every fault on the link acts
in it, whatever a toxic's ``stream``. ``context`` and ``namespace`` (where the objects are made)
must be on ``allowed_contexts`` and ``allowed_namespaces``, as must a selector's own
``namespace``. ``inject_timeout_s`` (default 30) is how long Chaos Mesh may take to inject a
fault, and to recover one on undo; ``poll_interval_s`` (default 1) how often its status is read.

One fault is one NetworkChaos object (:func:`network_chaos`), no ``duration`` (it lasts until
deleted), labelled ``app.kubernetes.io/managed-by: chaos-rec`` and ``chaos-rec.dev/link`` so that
a crashed session's leftovers are found by label. The Toxiproxy toxics map onto Chaos Mesh
actions (:data:`CHAOS_MESH_TOXICS`): ``latency`` → ``delay`` (latency and jitter in ms),
``bandwidth`` → ``bandwidth`` (``rate`` KB/s as ``kbps``, Chaos Mesh's kilobytes per second),
``timeout`` with ``timeout`` 0 → ``partition``; a cut (``disable``) is a ``partition`` too. The
other toxics (``slicer``, ``slow_close``, ``limit_data``, ``reset_peer``, ``noop``), a timeout
that closes connections after N ms, and a toxicity below 1 have no Chaos Mesh equivalent and are
refused. The bodies are chaos-rec's own, created through chaosk8s's generic
``crd.actions.create_custom_object``: chaosk8s 0.39's ``chaosmesh.network.actions`` set no labels
(repair could not find the objects), ``set_bandwidth`` writes ``action: bandwdith``, which Chaos
Mesh's CRD rejects, and there is no partition action.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from chaos_rec.backends.kube import KubeScope
from chaos_rec.backends.spec import Reader
from chaos_rec.errors import CapabilityError, ConfigError
from chaos_rec.toxiproxy.model import STREAMS, TOXIC_ATTRIBUTES

__all__ = [
    "API_VERSION",
    "BACKEND",
    "CHAOS_MESH_TOXICS",
    "CUT",
    "FAULT_LABEL",
    "LINK_LABEL",
    "MANAGED_BY",
    "TOXIC_ANNOTATION",
    "ChaosMeshLink",
    "ChaosMeshSpec",
    "PodSelection",
    "network_chaos",
    "resource_name",
]

BACKEND: Final = "chaos-mesh"
API_VERSION: Final = "chaos-mesh.org/v1alpha1"
MANAGED_BY: Final = ("app.kubernetes.io/managed-by", "chaos-rec")
LINK_LABEL: Final = "chaos-rec.dev/link"
FAULT_LABEL: Final = "chaos-rec.dev/fault"  # "toxic" or "cut"
TOXIC_ANNOTATION: Final = "chaos-rec.dev/toxic"  # the toxic as Toxiproxy would list it (JSON)
CUT: Final = "cut"
# toxic type -> the Chaos Mesh action it becomes (the rest have no equivalent)
CHAOS_MESH_TOXICS: Final[Mapping[str, str]] = {
    "latency": "delay",
    "bandwidth": "bandwidth",
    "timeout": "partition",
}
DIRECTIONS: Final = ("to", "from", "both")
BANDWIDTH_LIMIT: Final = 20 * 1024 * 1024  # bytes queued for tokens: never drop, only slow
MIN_BUFFER: Final = 1600  # bytes of burst: at least one full-size packet
_KEYS: Final = frozenset(
    {"context", "namespace", "allowed_contexts", "allowed_namespaces", "links"}
    | {"inject_timeout_s", "poll_interval_s"}
)
_LABEL_VALUE: Final = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_LABEL_KEY: Final = re.compile(
    r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


@dataclass(frozen=True)
class PodSelection:
    """Every pod of a label selector (``k=v`` pairs) in one namespace."""

    labels: Mapping[str, str]
    namespace: str

    def to_selector(self) -> dict[str, Any]:
        """Chaos Mesh's PodSelector with mode ``all``."""
        selector = {"namespaces": [self.namespace], "labelSelectors": dict(self.labels)}
        return {"mode": "all", "selector": selector}


@dataclass(frozen=True)
class ChaosMeshLink:
    """One link: its source pods, its target (pods or external hosts), its direction."""

    name: str
    source: PodSelection
    target: PodSelection | None
    external: tuple[str, ...]
    direction: str

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The namespaces whose pods the link's faults touch."""
        pods = [self.source, *([self.target] if self.target else [])]
        return tuple(dict.fromkeys(p.namespace for p in pods))


def _labels(text: Any, where: str) -> dict[str, str]:
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}: missing (a label selector such as app=redis)")
    out: dict[str, str] = {}
    for pair in text.split(","):
        key, eq, value = pair.strip().partition("=")
        if not eq or value.startswith("=") or not _LABEL_KEY.match(key.strip()):
            raise ConfigError(f"{where}: {pair.strip()!r} is not key=value (only those select)")
        if value.strip() and not _LABEL_VALUE.match(value.strip()):
            raise ConfigError(f"{where}: {value.strip()!r} is not a label value")
        out[key.strip()] = value.strip()
    return out


def _pods(data: Any, where: str, namespace: str) -> PodSelection:
    r = Reader(data, where, {"label_selector", "namespace"}, kind=BACKEND, common=())
    return PodSelection(_labels(data.get("label_selector"), f"{where}.label_selector"),
                        r.string("namespace") or namespace)  # fmt: skip


def _link(name: str, data: Any, where: str, namespace: str) -> ChaosMeshLink:
    if not _LABEL_VALUE.match(name):
        raise ConfigError(f"{where}: link name {name!r} must be a Kubernetes label value")
    r = Reader(data, where, {"source", "target", "direction"}, kind=BACKEND, common=())
    direction = r.string("direction") or "to"
    if direction not in DIRECTIONS:
        raise ConfigError(f"{where}.direction: must be one of {', '.join(DIRECTIONS)}")
    target = data.get("target")
    if isinstance(target, Mapping) and "external" in target:
        Reader(target, f"{where}.target", {"external"}, kind=BACKEND, common=())
        hosts = target["external"]
        if (
            not isinstance(hosts, list)
            or not hosts
            or not all(isinstance(h, str) and h.strip() for h in hosts)
        ):
            raise ConfigError(f"{where}.target.external: must be a non-empty list of hosts")
        if direction != "to":
            raise ConfigError(
                f"{where}.direction: Chaos Mesh applies external targets to direction 'to' only"
            )
        return ChaosMeshLink(name, _pods(data.get("source"), f"{where}.source", namespace),
                             None, tuple(hosts), direction)  # fmt: skip
    return ChaosMeshLink(
        name,
        _pods(data.get("source"), f"{where}.source", namespace),
        _pods(target, f"{where}.target", namespace),
        (),
        direction,
    )


@dataclass(frozen=True)
class ChaosMeshSpec:
    """``links`` section of kind ``chaos-mesh`` (see the module docstring)."""

    scope: KubeScope
    links: Mapping[str, ChaosMeshLink]
    inject_timeout_s: float = 30.0  # for Chaos Mesh to inject a fault (and to recover one)
    poll_interval_s: float = 1.0

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ChaosMeshSpec:
        """The spec from a deployment file's ``links`` object (one ConfigError line)."""
        r = Reader(data, f"{where}: links", _KEYS, kind=BACKEND, common=("kind",))
        scope = KubeScope.read(r, "links")
        value = data.get("links")
        if not isinstance(value, Mapping) or not value:
            raise ConfigError(f"{r.where}.links: must map each link name to its source and target")
        links = {
            str(name): _link(str(name), entry, f"{r.where}.links.{name}", scope.namespace)
            for name, entry in value.items()
        }
        return cls(
            scope=scope,
            links=links,
            inject_timeout_s=float(r.seconds("inject_timeout_s", 30.0) or 30.0),
            poll_interval_s=float(r.seconds("poll_interval_s", 1.0) or 1.0),
        )

    def check_allowed(self) -> None:
        """Refuse the context, or a namespace of the section or of any link's pods, that is not
        on its allowlist (FaultError), before any client is built."""
        self.scope.check_allowed(ns for link in self.links.values() for ns in link.namespaces)


def resource_name(link: str, toxic: str | None) -> str:
    """The NetworkChaos name of the toxic named ``toxic`` on ``link`` (None: the link's cut): a
    DNS label, unique per fault even where two names differ only in characters it drops."""
    key = f"toxic:{toxic}" if toxic is not None else CUT  # a toxic named "cut" is no cut
    digest = hashlib.sha256(f"{link}\0{key}".encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9-]+", "-", f"{link}-{toxic or CUT}".lower()).strip("-")
    return f"chaos-rec-{slug[:43].rstrip('-')}-{digest}"


def _ms(attrs: Mapping[str, Any], key: str) -> int:
    value = attrs.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"toxic attribute {key}: must be a whole number >= 0, got {value!r}")
    return value


def _action(type_: str, attrs: Mapping[str, Any], toxicity: float) -> dict[str, Any]:
    """The spec fields of one toxic's Chaos Mesh action (CapabilityError where none fits)."""
    if type_ not in CHAOS_MESH_TOXICS:
        raise CapabilityError(
            f"toxic {type_} has no Chaos Mesh equivalent: the chaos-mesh links backend adds "
            f"{', '.join(CHAOS_MESH_TOXICS)} toxics only"
        )
    unknown = sorted(set(attrs) - set(TOXIC_ATTRIBUTES[type_]))
    if unknown:
        raise ConfigError(f"toxic {type_} has no attribute {unknown[0]!r}")
    if toxicity < 1.0:
        raise CapabilityError(
            f"toxic {type_} with toxicity {toxicity:g}: the chaos-mesh links backend faults every "
            "connection of a link (toxicity 1) only"
        )
    if type_ == "latency":
        delay = {"latency": f"{_ms(attrs, 'latency')}ms"}
        if _ms(attrs, "jitter"):
            delay["jitter"] = f"{_ms(attrs, 'jitter')}ms"
        return {"action": "delay", "delay": delay}
    if type_ == "bandwidth":
        rate = _ms(attrs, "rate")
        if rate < 1:
            raise ConfigError("toxic bandwidth: rate must be at least 1 KB/s on Chaos Mesh")
        buffer = max(MIN_BUFFER, rate * 1000 // 100)  # 10 ms of the rate
        bandwidth = {"rate": f"{rate}kbps", "limit": BANDWIDTH_LIMIT, "buffer": buffer}
        return {"action": "bandwidth", "bandwidth": bandwidth}
    if _ms(attrs, "timeout"):
        raise CapabilityError(
            "toxic timeout with timeout > 0 (close each connection after it) has no Chaos Mesh "
            "equivalent on the chaos-mesh links backend: use timeout 0 (every packet dropped)"
        )
    return {"action": "partition"}


def network_chaos(
    link: ChaosMeshLink, namespace: str, toxic: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The NetworkChaos object of ``toxic`` on ``link`` (a toxic as Toxiproxy lists it: name,
    type, stream, toxicity, attributes), or of the link's cut (``toxic`` None)."""
    if toxic is None:
        action: dict[str, Any] = {"action": "partition"}
    else:
        if toxic.get("stream") not in STREAMS:
            raise ConfigError(f"stream must be upstream or downstream, got {toxic.get('stream')!r}")
        action = _action(str(toxic["type"]), toxic.get("attributes") or {}, toxic["toxicity"])
    spec: dict[str, Any] = {
        **action,
        **link.source.to_selector(),
        "direction": link.direction,
    }
    if link.target is not None:
        spec["target"] = link.target.to_selector()
    else:
        spec["externalTargets"] = list(link.external)
    metadata: dict[str, Any] = {
        "name": resource_name(link.name, str(toxic["name"]) if toxic is not None else None),
        "namespace": namespace,
        "labels": {
            MANAGED_BY[0]: MANAGED_BY[1],
            LINK_LABEL: link.name,
            FAULT_LABEL: "toxic" if toxic is not None else CUT,
        },
    }
    if toxic is not None:
        metadata["annotations"] = {TOXIC_ANNOTATION: json.dumps(dict(toxic), sort_keys=True)}
    return {"apiVersion": API_VERSION, "kind": "NetworkChaos", "metadata": metadata, "spec": spec}
