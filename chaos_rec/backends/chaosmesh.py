"""The ``chaos-mesh`` links backend: the ``Links`` seam as Chaos Mesh NetworkChaos objects.

Where no fault proxy is deployed, a link fault is a NetworkChaos object in the section's
namespace (bodies: ``chaos_rec.backends.chaosmesh_spec``), created, listed and deleted through
chaostoolkit-kubernetes behind the :class:`~chaos_rec.backends.kube.NetworkChaosApi` seam. A
context or namespace off its allowlist is refused before a client is built.

Verification is Chaos Mesh's own account, not a connection: a fault counts as in effect once
the object's status says ``Selected`` and ``AllInjected`` (every selected pod injected), polled
until ``inject_timeout_s``; one that is not in effect by then is deleted again and reported in
one line. A fault is undone when its object is gone (Chaos Mesh recovers the pods before its
finalizer lets the object go), waited for the same way. :meth:`ChaosMeshLinks.reset` deletes
every object chaos-rec labelled in the namespace: what repair calls after a crashed session.
``get_proxy`` answers ``listen`` None, which tells the link actions there is no address to
probe through (``chaos_rec.core.seams.Links``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from chaos_rec.backends.chaosmesh_spec import (
    CUT,
    FAULT_LABEL,
    LINK_LABEL,
    MANAGED_BY,
    TOXIC_ANNOTATION,
    ChaosMeshLink,
    ChaosMeshSpec,
    network_chaos,
    resource_name,
)
from chaos_rec.backends.kube import Chaosk8sApi, NetworkChaosApi
from chaos_rec.errors import ChaosRecError, ConfigError, FaultError

__all__ = ["ChaosMeshLinks", "chaosk8s_network_api", "condition_summary", "injected"]

ApiFactory = Callable[[ChaosMeshSpec], NetworkChaosApi]


def chaosk8s_network_api(spec: ChaosMeshSpec) -> NetworkChaosApi:
    """The real client: chaosk8s against the spec's (allowed) context."""
    return Chaosk8sApi(spec.scope.context)


def _conditions(obj: Mapping[str, Any]) -> dict[str, str]:
    status = obj.get("status") or {}
    return {
        str(c.get("type")): str(c.get("status"))
        for c in status.get("conditions") or []
        if isinstance(c, Mapping)
    }


def injected(obj: Mapping[str, Any]) -> bool:
    """True when Chaos Mesh reports the fault in effect on every pod it selected."""
    conditions = _conditions(obj)
    phase = ((obj.get("status") or {}).get("experiment") or {}).get("desiredPhase", "Run")
    return (
        conditions.get("Selected") == "True"
        and conditions.get("AllInjected") == "True"
        and (phase == "Run")
    )


def condition_summary(obj: Mapping[str, Any] | None) -> str:
    """``Selected=False, AllInjected=False`` (or why there is none), for the one-line report."""
    if obj is None:
        return "the object is gone"
    conditions = _conditions(obj)
    if not conditions:
        return "no status from Chaos Mesh yet: is chaos-controller-manager running?"
    return ", ".join(f"{k}={conditions.get(k, '?')}" for k in ("Selected", "AllInjected"))


def _ours(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY[0]) == MANAGED_BY[1])


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


class ChaosMeshLinks:
    """Links faulted by Chaos Mesh: toxics and cuts as NetworkChaos objects, verified by status."""

    def __init__(self, spec: ChaosMeshSpec, api: ApiFactory = chaosk8s_network_api) -> None:
        spec.check_allowed()  # first: nothing reaches a cluster the allowlist does not name
        self.spec = spec
        self.ns = spec.scope.namespace
        self.api = api(spec)

    # -- reading -------------------------------------------------------------------

    def _link(self, name: str) -> ChaosMeshLink:
        link = self.spec.links.get(name)
        if link is None:
            known = ", ".join(sorted(self.spec.links))
            raise ConfigError(f"no link {name!r} in the chaos-mesh links section (links: {known})")
        return link

    def _objects(self, link: str | None = None) -> list[dict[str, Any]]:
        """Our NetworkChaos objects in the namespace (of one link, when named)."""
        found = [o for o in self.api.list_network_chaos(ns=self.ns) if _ours(o)]
        if link is None:
            return found
        return [o for o in found if (o["metadata"].get("labels") or {}).get(LINK_LABEL) == link]

    def _find(self, name: str) -> dict[str, Any] | None:
        return next((o for o in self._objects() if _name(o) == name), None)

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        """The link's toxics, as Toxiproxy would list them (from each object's annotation)."""
        self._link(proxy)
        out = []
        for obj in self._objects(proxy):
            meta = obj["metadata"]
            if (meta.get("labels") or {}).get(FAULT_LABEL) == CUT:
                continue
            try:
                toxic = json.loads((meta.get("annotations") or {})[TOXIC_ANNOTATION])
            except (KeyError, TypeError, ValueError):
                toxic = {"name": _name(obj)}
            out.append({**toxic, "resource": _name(obj), "injected": injected(obj)})
        return out

    def get_proxy(self, name: str) -> dict[str, Any]:
        """The link as a fault proxy would describe it; ``listen`` None: nothing to probe."""
        link = self._link(name)
        objects = self._objects(name)
        cut = any((o["metadata"].get("labels") or {}).get(FAULT_LABEL) == CUT for o in objects)
        if link.target is None:
            upstream = ", ".join(link.external)
        else:
            labels = ",".join(f"{k}={v}" for k, v in link.target.labels.items())
            upstream = f"pods {labels} in namespace {link.target.namespace}"
        return {
            "name": name,
            "enabled": not cut,
            "listen": None,
            "upstream": upstream,
            "toxics": self.toxics(name),
            "backend": "chaos-mesh",
        }

    # -- faults ----------------------------------------------------------------------

    def _wait(self, name: str, done: Callable[[dict[str, Any] | None], bool]) -> tuple[bool, Any]:
        """Poll the object ``name`` until ``done(object or None)``; (done, last object seen)."""
        deadline = time.monotonic() + self.spec.inject_timeout_s
        while True:
            obj = self._find(name)
            if done(obj):
                return True, obj
            left = deadline - time.monotonic()
            if left <= 0:
                return False, obj
            time.sleep(min(self.spec.poll_interval_s, left))

    def _inject(self, link: ChaosMeshLink, body: dict[str, Any], what: str) -> str:
        """Create ``body``, wait until Chaos Mesh injected it; undone and FaultError if not."""
        name = _name(body)
        if self._find(name) is not None:
            raise FaultError(f"{what} is already on link {link.name} (NetworkChaos {name})")
        start = time.monotonic()
        created = self.api.create_network_chaos(body, ns=self.ns)
        if _name(created) != name or not _ours(created):
            raise FaultError(f"creating NetworkChaos {name} for {what} answered another object")
        ok, last = self._wait(name, lambda obj: obj is not None and injected(obj))
        if not ok:
            undone = "deleted it"
            try:
                self._delete(name)
            except ChaosRecError as exc:  # repair deletes it by its label later
                undone = f"deleting it failed too: {exc}"
            raise FaultError(
                f"{what} on link {link.name} not injected within {self.spec.inject_timeout_s:g}s "
                f"(NetworkChaos {name}: {condition_summary(last)}); {undone}"
            )
        return f"NetworkChaos {name}: Selected, AllInjected after {time.monotonic() - start:.1f}s"

    def _delete(self, name: str) -> None:
        self.api.delete_network_chaos(name, ns=self.ns)

    def _remove(self, name: str, what: str) -> bool:
        """Delete the object ``name`` if there is one and wait until it is gone; False if none."""
        if self._find(name) is None:
            return False
        try:
            self._delete(name)
        except ChaosRecError:
            if self._find(name) is not None:
                raise
            return True  # gone between the look and the delete
        ok, last = self._wait(name, lambda obj: obj is None)
        if not ok:
            raise FaultError(
                f"{what}: NetworkChaos {name} still there {self.spec.inject_timeout_s:g}s after "
                f"deleting it ({condition_summary(last)}); Chaos Mesh has not recovered the pods"
            )
        return True

    def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> dict[str, Any]:
        """A toxic as one NetworkChaos object; returns once Chaos Mesh reports it injected."""
        link = self._link(proxy)
        toxic = {
            "name": name or f"{type}_{stream}",
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        body = network_chaos(link, self.ns, toxic)
        observed = self._inject(link, body, f"toxic {toxic['name']}")
        return {**toxic, "resource": _name(body), "observed": observed}

    def remove_toxic(self, proxy: str, name: str) -> None:
        """Delete the toxic's object and wait until it is gone (already gone: nothing to do)."""
        self._link(proxy)
        self._remove(resource_name(proxy, name), f"removing toxic {name} from link {proxy}")

    def disable(self, name: str) -> dict[str, Any]:
        """Cut the link: a ``partition`` object, returned once injected."""
        link = self._link(name)
        observed = self._inject(link, network_chaos(link, self.ns), "a cut")
        return {**self.get_proxy(name), "observed": observed}

    def enable(self, name: str) -> dict[str, Any]:
        """Restore a cut link: delete its partition object and wait until it is gone."""
        self._link(name)
        self._remove(resource_name(name, None), f"restoring link {name}")
        return self.get_proxy(name)

    def reset(self) -> list[str]:
        """Delete every NetworkChaos chaos-rec labelled in the namespace (a crashed session's
        leftovers too) and wait until each is gone; one line per object deleted."""
        done: list[str] = []
        for obj in self._objects():
            name = _name(obj)
            link = (obj["metadata"].get("labels") or {}).get(LINK_LABEL, "?")
            if self._remove(name, f"repair of link {link}"):
                done.append(f"chaos mesh: deleted NetworkChaos {name} (link {link})")
        return done


if TYPE_CHECKING:  # the backend implements the seam exactly (checked by mypy)
    from chaos_rec.core.seams import Links

    def _seam(spec: ChaosMeshSpec) -> Links:
        return ChaosMeshLinks(spec)
