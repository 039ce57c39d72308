"""The kubernetes-client seam: the few chaostoolkit-kubernetes calls the kubernetes backends make.

:class:`KubeApi` is what the processes backend sees and :class:`NetworkChaosApi` what the
chaos-mesh links backend sees (unit tests pass fakes that record the calls); :class:`KubeScope`
is where either may act (a context and a namespace, each on its allowlist, refused before any
call). :class:`Chaosk8sApi` makes the calls with ``chaosk8s`` against one kube context, pinned through
chaosk8s's ``KUBERNETES_CONTEXT`` secret so that no environment variable can switch it, and
only after checking that the kubeconfig chaosk8s will read holds that context (without one,
chaosk8s would silently fall back to in-cluster or ``KUBERNETES_HOST`` credentials). The context
``in-cluster`` means the service account of the pod chaos-rec runs in: then no kubeconfig may
exist and ``CHAOSTOOLKIT_IN_POD`` must be ``true``, chaosk8s's own conditions for using it.

:data:`CHAOSK8S_CALLS` is the one table of which chaosk8s activity each method calls and with
which argument names (``tests/integration/test_k8s_experiments.py`` checks it against
``chaos discover chaostoolkit-kubernetes``, ``tests/unit/backends/test_chaosmesh_links.py``
against the installed functions' signatures).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from chaos_rec.backends.spec import Reader
from chaos_rec.boundary import translating
from chaos_rec.core.allowlist import refuse_unlisted
from chaos_rec.errors import ConfigError, FaultError

__all__ = [
    "CHAOSK8S_CALLS",
    "IN_CLUSTER",
    "Chaosk8sApi",
    "ExecResult",
    "KubeApi",
    "KubeScope",
    "NetworkChaosApi",
    "kube_contexts",
]

IN_CLUSTER: Final = "in-cluster"  # the context name for the service account of the pod we run in

CHAOSK8S_CALLS: Final[Mapping[str, tuple[str, str, frozenset[str]]]] = {
    "exec_in_pods": (
        "chaosk8s.pod.actions",
        "exec_in_pods",
        frozenset(
            {
                "cmd",
                "label_selector",
                "name_pattern",
                "all",
                "ns",
                "container_name",
                "request_timeout",
            }
        ),
    ),
    "terminate_pods": (
        "chaosk8s.pod.actions",
        "terminate_pods",
        frozenset({"label_selector", "name_pattern", "qty", "grace_period", "ns"}),
    ),
    "pods_ready": (
        "chaosk8s.pod.probes",
        "pods_in_conditions",
        frozenset({"label_selector", "conditions", "ns", "raise_on_invalid_conditions"}),
    ),
    "deployment_fully_available": (
        "chaosk8s.deployment.probes",
        "deployment_fully_available",
        frozenset({"name", "ns", "timeout", "raise_on_not_fully_available"}),
    ),
    # Chaos Mesh NetworkChaos objects: created from chaos-rec's own body (see chaosmesh_spec.py
    # for why not through add_latency/set_bandwidth), deleted and listed by chaosk8s.chaosmesh
    "create_network_chaos": (
        "chaosk8s.crd.actions",
        "create_custom_object",
        frozenset({"group", "version", "plural", "ns", "resource"}),
    ),
    "delete_network_chaos": (
        "chaosk8s.chaosmesh.network.actions",
        "delete_network_fault",
        frozenset({"name", "ns"}),
    ),
    "list_network_chaos": (
        "chaosk8s.chaosmesh.network.probes",
        "get_network_faults",
        frozenset({"ns"}),
    ),
}


@dataclass(frozen=True)
class ExecResult:
    """One pod's answer to a command run in it (``chaosk8s.pod.actions.exec_in_pods``)."""

    pod: str
    exit_code: int
    stdout: str
    stderr: str = ""


class KubeApi(Protocol):
    """The Kubernetes calls of the processes backend, all in one namespace ``ns``."""

    def exec_in_pods(
        self,
        cmd: Sequence[str],
        *,
        label_selector: str,
        ns: str,
        container: str,
        pod: str | None = None,
    ) -> list[ExecResult]:
        """Run ``cmd`` in the container of every pod the selector (and ``pod``'s name) matches."""
        ...

    def terminate_pods(self, *, label_selector: str, ns: str, pod: str) -> list[str]:
        """Delete the pod named ``pod`` among the selector's with grace period 0; names deleted."""
        ...

    def pods_ready(self, *, label_selector: str, ns: str) -> bool:
        """True when the selector matches pods and every one has condition Ready=True."""
        ...

    def deployment_fully_available(self, *, name: str, ns: str, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every replica of the Deployment to be ready."""
        ...


class NetworkChaosApi(Protocol):
    """The Kubernetes calls of the chaos-mesh links backend: Chaos Mesh NetworkChaos objects."""

    def create_network_chaos(self, body: Mapping[str, Any], *, ns: str) -> dict[str, Any]:
        """Create the NetworkChaos ``body`` in ``ns``; the object as the API server answered it."""
        ...

    def delete_network_chaos(self, name: str, *, ns: str) -> None:
        """Delete the NetworkChaos ``name`` (Chaos Mesh recovers the pods, then it is gone)."""
        ...

    def list_network_chaos(self, *, ns: str) -> list[dict[str, Any]]:
        """Every NetworkChaos in ``ns``, with its metadata and status."""
        ...


def _names(r: Reader, key: str) -> tuple[str, ...]:
    value = r.data.get(key)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{r.where}.{key}: must be a non-empty list of names")
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{r.where}.{key}: every entry must be a non-empty string")
    return tuple(value)


@dataclass(frozen=True)
class KubeScope:
    """Where a kubernetes backend acts: one kube context and namespace, each on its allowlist.

    ``section`` is the deployment file's section that holds the allowlists (``processes``,
    ``links``), named in the refusal.
    """

    section: str
    context: str
    namespace: str
    allowed_contexts: tuple[str, ...]
    allowed_namespaces: tuple[str, ...]

    @classmethod
    def read(cls, r: Reader, section: str) -> KubeScope:
        """The scope from a section's ``context``, ``namespace`` and allowlists (one line if bad)."""
        context, namespace = r.string("context"), r.string("namespace")
        if context is None or namespace is None:
            missing = "context" if context is None else "namespace"
            raise ConfigError(f"{r.where}.{missing}: missing (name it explicitly)")
        return cls(
            section,
            context,
            namespace,
            _names(r, "allowed_contexts"),
            _names(r, "allowed_namespaces"),
        )

    def check_allowed(self, namespaces: Iterable[str] = ()) -> None:
        """Refuse the context, the namespace or any of ``namespaces`` off its allowlist
        (FaultError); called before any client is built."""
        checks = [("kube context", self.context, self.allowed_contexts, "allowed_contexts")]
        for name in dict.fromkeys([self.namespace, *namespaces]):
            checks.append(("namespace", name, self.allowed_namespaces, "allowed_namespaces"))
        for what, name, allowed, key in checks:
            refuse_unlisted(
                what, name, allowed, f"add it to {self.section}.{key} in the deployment file"
            )

    def to_dict(self) -> dict[str, Any]:
        """The scope's keys as the deployment file holds them."""
        return {
            "context": self.context,
            "namespace": self.namespace,
            "allowed_contexts": list(self.allowed_contexts),
            "allowed_namespaces": list(self.allowed_namespaces),
        }


def kube_contexts(config_file: str) -> list[str]:
    """The context names of a kubeconfig file (read from disk; no API call)."""
    from kubernetes import config

    with translating(f"reading kubeconfig {config_file}", ConfigError):
        contexts, _ = config.list_kube_config_contexts(config_file=config_file)  # type: ignore[no-untyped-call]
    return [str(c.get("name")) for c in contexts or []]


def _exit_code(value: Any) -> int:
    """chaosk8s gives 0, 1, or the exit status as the text of the error stream's cause."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def _check_in_cluster(config_file: str, has_file: bool) -> None:
    """The pod's service account is what chaosk8s will use (its own two conditions)."""
    if has_file:
        raise ConfigError(
            f"context {IN_CLUSTER!r}, but chaosk8s would use the kubeconfig at {config_file}: "
            "remove it or unset KUBECONFIG"
        )
    if os.environ.get("CHAOSTOOLKIT_IN_POD") != "true":
        raise ConfigError(
            f"context {IN_CLUSTER!r} needs CHAOSTOOLKIT_IN_POD=true (chaosk8s's switch to the "
            "pod's service account)"
        )


class Chaosk8sApi:
    """:class:`KubeApi` and :class:`NetworkChaosApi` through chaostoolkit-kubernetes, against
    one kube context."""

    def __init__(self, context: str, request_timeout_s: float = 60.0) -> None:
        import chaosk8s

        self.context = context
        self.request_timeout_s = request_timeout_s
        config_file = chaosk8s.get_config_path()
        if context == IN_CLUSTER:
            self._secrets: dict[str, str] = {}
            _check_in_cluster(config_file, chaosk8s.has_local_config_file(config_file))
            return
        if not chaosk8s.has_local_config_file(config_file):
            raise ConfigError(
                f"no kubeconfig at {config_file}: the kubernetes backend needs one that holds "
                f"context {context!r} (set KUBECONFIG)"
            )
        from kubernetes.config import kube_config

        loaded = os.path.expanduser(kube_config.KUBE_CONFIG_DEFAULT_LOCATION)
        if os.path.abspath(loaded) != os.path.abspath(config_file):  # read once, at import
            raise ConfigError(
                f"KUBECONFIG changed after the kubernetes client was imported ({loaded} then "
                f"{config_file}): set it before chaos-rec starts"
            )
        names = kube_contexts(config_file)
        if context not in names:
            raise ConfigError(
                f"kube context {context!r} is not in {config_file} "
                f"(contexts: {', '.join(names) or 'none'})"
            )
        self._secrets = {"KUBERNETES_CONTEXT": context}

    def _call(self, method: str, **arguments: Any) -> Any:
        module, func, names = CHAOSK8S_CALLS[method]
        unknown = set(arguments) - names
        if unknown:  # the table is the one list of what we pass; keep it true
            raise RuntimeError(f"{method}: arguments {sorted(unknown)} are not in CHAOSK8S_CALLS")
        with translating(f"kubernetes {func} (context {self.context})", FaultError):
            activity = getattr(importlib.import_module(module), func)
            return activity(**arguments, secrets=self._secrets)

    def exec_in_pods(
        self,
        cmd: Sequence[str],
        *,
        label_selector: str,
        ns: str,
        container: str,
        pod: str | None = None,
    ) -> list[ExecResult]:
        """``chaosk8s.pod.actions.exec_in_pods`` on every matching pod."""
        out = self._call(
            "exec_in_pods",
            cmd=list(cmd),
            label_selector=label_selector,
            name_pattern=f"^{re.escape(pod)}$" if pod else None,
            all=True,
            ns=ns,
            container_name=container,
            request_timeout=max(1, round(self.request_timeout_s)),
        )
        return [
            ExecResult(
                str(r["pod_name"]),
                _exit_code(r.get("exit_code")),
                str(r.get("stdout") or ""),
                str(r.get("stderr") or ""),
            )
            for r in out or []
        ]

    def terminate_pods(self, *, label_selector: str, ns: str, pod: str) -> list[str]:
        """``chaosk8s.pod.actions.terminate_pods`` of exactly that pod, grace period 0."""
        out = self._call(
            "terminate_pods",
            label_selector=label_selector,
            name_pattern=f"^{re.escape(pod)}$",
            qty=1,
            grace_period=0,
            ns=ns,
        )
        return [str(name) for name in out or []]

    def pods_ready(self, *, label_selector: str, ns: str) -> bool:
        """``chaosk8s.pod.probes.pods_in_conditions`` with Ready=True (False, not an error)."""
        try:
            return bool(
                self._call(
                    "pods_ready",
                    label_selector=label_selector,
                    ns=ns,
                    conditions=[{"type": "Ready", "status": "True"}],
                    raise_on_invalid_conditions=False,
                )
            )
        except TypeError:  # chaosk8s 0.39 iterates status.conditions, None on a new pod
            return False

    def deployment_fully_available(self, *, name: str, ns: str, timeout_s: float) -> bool:
        """``chaosk8s.deployment.probes.deployment_fully_available`` (False past the timeout)."""
        return bool(
            self._call(
                "deployment_fully_available",
                name=name,
                ns=ns,
                timeout=max(1, int(timeout_s)),
                raise_on_not_fully_available=False,
            )
        )

    def create_network_chaos(self, body: Mapping[str, Any], *, ns: str) -> dict[str, Any]:
        """``chaosk8s.crd.actions.create_custom_object`` of a ``chaos-mesh.org/v1alpha1``
        NetworkChaos (on a name taken, chaosk8s answers the existing object)."""
        group, version = str(body["apiVersion"]).split("/", 1)
        out = self._call(
            "create_network_chaos",
            group=group,
            version=version,
            plural="networkchaos",
            ns=ns,
            resource=dict(body),
        )
        return dict(out or {})

    def delete_network_chaos(self, name: str, *, ns: str) -> None:
        """``chaosk8s.chaosmesh.network.actions.delete_network_fault``."""
        self._call("delete_network_chaos", name=name, ns=ns)

    def list_network_chaos(self, *, ns: str) -> list[dict[str, Any]]:
        """``chaosk8s.chaosmesh.network.probes.get_network_faults``: the list's ``items``."""
        out = self._call("list_network_chaos", ns=ns)
        items = out.get("items") if isinstance(out, Mapping) else out
        return [dict(item) for item in items or []]
