"""A fake of the chaos-mesh links backend's seam (NetworkChaosApi) for the unit tests.

It keeps NetworkChaos objects in one namespace as the API server and Chaos Mesh would: a created
object gets ``Selected``/``AllInjected`` after some polls (or never), a deleted one lingers for
some polls (the finalizer) before it is gone, a delete may fail. Every call is recorded, so a
test sees exactly which objects would have reached a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_rec.backends.chaosmesh import ChaosMeshLinks
from chaos_rec.backends.chaosmesh_spec import ChaosMeshSpec
from chaos_rec.core.target import Deployment, read_deployment_file
from chaos_rec.errors import FaultError

NS = "recommender"
SECTION: dict[str, Any] = {
    "kind": "chaos-mesh", "context": "gpu-staging", "namespace": NS,
    "allowed_contexts": ["gpu-staging"], "allowed_namespaces": [NS],
    "inject_timeout_s": 2, "poll_interval_s": 0.01,
    "links": {
        "feature-store": {"source": {"label_selector": "app.kubernetes.io/name=model-server"},
                          "target": {"label_selector": "app.kubernetes.io/name=redis"}},
        "payments": {"source": {"label_selector": "app=gateway,tier=edge"},
                     "target": {"external": ["10.0.0.7", "payments.example.com"]}},
    },
}  # fmt: skip
MODEL_SERVERS = {"mode": "all", "selector": {"namespaces": [NS],
                 "labelSelectors": {"app.kubernetes.io/name": "model-server"}}}  # fmt: skip
REDIS = {"mode": "all", "selector": {"namespaces": [NS],
         "labelSelectors": {"app.kubernetes.io/name": "redis"}}}  # fmt: skip
OURS = {"app.kubernetes.io/managed-by": "chaos-rec"}


@dataclass
class FakeChaosMesh:
    """NetworkChaos objects in one namespace; injected after ``inject_after`` list polls."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    inject_after: int | None = 1  # None: Chaos Mesh never injects (no pod selected)
    gone_after: int = 1
    delete_fails: str = ""  # "gone": a 404; anything else: a refusal (the object stays)
    _age: dict[str, int] = field(default_factory=dict)
    _dying: dict[str, int] = field(default_factory=dict)

    def create_network_chaos(self, body: Mapping[str, Any], *, ns: str) -> dict[str, Any]:
        self.calls.append(("create", body["metadata"]["name"], ns))
        obj: dict[str, Any] = json.loads(json.dumps(body))
        self.objects[obj["metadata"]["name"]] = obj
        self._age[obj["metadata"]["name"]] = 0
        return obj

    def delete_network_chaos(self, name: str, *, ns: str) -> None:
        self.calls.append(("delete", name, ns))
        if self.delete_fails:  # e.g. 404: another hand deleted it first (then it is gone)
            if self.delete_fails == "gone":
                self.objects.pop(name, None)
            raise FaultError(f"kubernetes delete_network_fault failed: {self.delete_fails}")
        self._dying[name] = 0

    def list_network_chaos(self, *, ns: str) -> list[dict[str, Any]]:
        self.calls.append(("list", ns))
        for name in list(self.objects):
            if name in self._dying:
                self._dying[name] += 1
                if self._dying[name] > self.gone_after:
                    del self.objects[name], self._dying[name]
                continue
            self._age[name] = self._age.get(name, 0) + 1
            if self.inject_after is not None and self._age[name] > self.inject_after:
                self.objects[name]["status"] = {
                    "conditions": [{"type": "Selected", "status": "True"},
                                   {"type": "AllInjected", "status": "True"}],
                    "experiment": {"desiredPhase": "Run"},
                }  # fmt: skip
            elif "status" not in self.objects[name]:
                self.objects[name]["status"] = {"conditions": [
                    {"type": "Selected", "status": "False"},
                    {"type": "AllInjected", "status": "False"}]}  # fmt: skip
        return [json.loads(json.dumps(o)) for o in self.objects.values()]

    def made(self, verb: str) -> list[str]:
        return [c[1] for c in self.calls if c[0] == verb]


def fake_links(fake: FakeChaosMesh, **over: Any) -> ChaosMeshLinks:
    spec = ChaosMeshSpec.from_dict({**SECTION, **over}, "dep.json")
    return ChaosMeshLinks(spec, lambda _spec: fake)


def write_deployment(tmp_path: Path, **extra: Any) -> Deployment:
    path = tmp_path / "dep.json"
    path.write_text(json.dumps({"gateway_url": "http://127.0.0.1:9", "links": SECTION, **extra}))
    return read_deployment_file(path)
