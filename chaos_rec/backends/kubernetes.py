"""The ``kubernetes`` processes backend: replicas are pods, driven through chaostoolkit-kubernetes.

A deployment file's section names the kube context and namespace, the allowlists they must be
on, and a label selector (and Deployment) per replica::

    "processes": {"kind": "kubernetes", "context": "gpu-staging", "namespace": "recommender",
                  "allowed_contexts": ["gpu-staging"], "allowed_namespaces": ["recommender"],
                  "container": "model-server", "pid_file": "/tmp/server.pid",
                  "replicas": {"replica-0": {
                      "label_selector": "app.kubernetes.io/name=model-server,chaos-rec.dev/replica=replica-0",
                      "deployment": "model-server-0"}}}

Node loss deletes the replica's pod with grace period 0; a hang is ``kill -STOP`` of the server's
pid (read from ``pid_file`` in the pod) run with exec, a resume ``kill -CONT``; "restored" is
every pod of the selector Ready and the Deployment fully available. A context or namespace that
is not on its allowlist is refused before any Kubernetes call (and before a client is built).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from chaos_rec.backends.kube import Chaosk8sApi, ExecResult, KubeApi
from chaos_rec.backends.spec import Reader
from chaos_rec.core.allowlist import refuse_unlisted
from chaos_rec.core.target import Deployment
from chaos_rec.errors import ConfigError, FaultError

__all__ = ["KubeReplica", "KubernetesProcesses", "KubernetesSpec"]

BACKEND: Final = "kubernetes"
_KEYS: Final = frozenset(
    {
        "context",
        "namespace",
        "allowed_contexts",
        "allowed_namespaces",
        "replicas",
        "container",
        "pid_file",
        "poll_interval_s",
        "wait_restored_timeout_s",
    }
)
_COMMON: Final = frozenset({"kind", "timeout_s"})


@dataclass(frozen=True)
class KubeReplica:
    """Where one replica runs: the label selector of its pod and the Deployment that owns it."""

    label_selector: str
    deployment: str


def _names(r: Reader, key: str) -> tuple[str, ...]:
    value = r.data.get(key)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{r.where}.{key}: must be a non-empty list of names")
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{r.where}.{key}: every entry must be a non-empty string")
    return tuple(value)


def _replicas(r: Reader) -> dict[str, KubeReplica]:
    value = r.data.get("replicas")
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{r.where}.replicas: must map each replica name to its pod's selector")
    out: dict[str, KubeReplica] = {}
    for name, entry in value.items():
        where = f"{r.where}.replicas.{name}"
        rr = Reader(entry, where, {"label_selector", "deployment"}, kind=BACKEND, common=())
        selector, deployment = rr.string("label_selector"), rr.string("deployment")
        if selector is None or deployment is None:
            missing = "label_selector" if selector is None else "deployment"
            raise ConfigError(f"{where}.{missing}: missing (a non-empty string)")
        out[str(name)] = KubeReplica(selector, deployment)
    return out


@dataclass(frozen=True)
class KubernetesSpec:
    """``processes`` section of kind ``kubernetes`` (see the module docstring)."""

    context: str
    namespace: str
    allowed_contexts: tuple[str, ...]
    allowed_namespaces: tuple[str, ...]
    replicas: Mapping[str, KubeReplica]
    container: str = "model-server"
    pid_file: str = "/tmp/server.pid"
    poll_interval_s: float = 1.0
    wait_restored_timeout_s: float | None = None
    timeout_s: float = 60.0  # per Kubernetes request (an exec's stream)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> KubernetesSpec:
        """The spec from a deployment file's ``processes`` object (one ConfigError line)."""
        r = Reader(data, f"{where}: processes", _KEYS, kind=BACKEND, common=_COMMON)
        context, namespace = r.string("context"), r.string("namespace")
        if context is None or namespace is None:
            missing = "context" if context is None else "namespace"
            raise ConfigError(f"{r.where}.{missing}: missing (name it explicitly)")
        return cls(
            context=context,
            namespace=namespace,
            allowed_contexts=_names(r, "allowed_contexts"),
            allowed_namespaces=_names(r, "allowed_namespaces"),
            replicas=_replicas(r),
            container=r.string("container") or "model-server",
            pid_file=r.string("pid_file") or "/tmp/server.pid",
            poll_interval_s=float(r.seconds("poll_interval_s", 1.0) or 1.0),
            wait_restored_timeout_s=r.seconds("wait_restored_timeout_s", None),
            timeout_s=r.timeout(60.0),
        )

    def to_dict(self) -> dict[str, Any]:
        """The section as a deployment file holds it."""
        out: dict[str, Any] = {
            "kind": BACKEND,
            "context": self.context,
            "namespace": self.namespace,
            "allowed_contexts": list(self.allowed_contexts),
            "allowed_namespaces": list(self.allowed_namespaces),
            "replicas": {
                name: {"label_selector": rep.label_selector, "deployment": rep.deployment}
                for name, rep in self.replicas.items()
            },
            "container": self.container,
            "pid_file": self.pid_file,
            "poll_interval_s": self.poll_interval_s,
            "timeout_s": self.timeout_s,
        }
        if self.wait_restored_timeout_s is not None:
            out["wait_restored_timeout_s"] = self.wait_restored_timeout_s
        return out

    def check_allowed(self) -> None:
        """Refuse a context or namespace that is not on its allowlist (the target allowlist's
        one refusal, ``chaos_rec.core.allowlist``: FaultError)."""
        for what, name, allowed, key in (
            ("kube context", self.context, self.allowed_contexts, "allowed_contexts"),
            ("namespace", self.namespace, self.allowed_namespaces, "allowed_namespaces"),
        ):
            refuse_unlisted(
                what, name, allowed, f"add it to processes.{key} in the deployment file"
            )


ApiFactory = Callable[[KubernetesSpec], KubeApi]


def chaosk8s_api(spec: KubernetesSpec) -> KubeApi:
    """The real client: chaosk8s against the spec's (allowed) context."""
    return Chaosk8sApi(spec.context, spec.timeout_s)


class KubernetesProcesses:
    """Replica pods: delete one (node loss), SIGSTOP/SIGCONT its server, wait for it Ready."""

    def __init__(
        self, spec: KubernetesSpec, dep: Deployment, api: ApiFactory = chaosk8s_api
    ) -> None:
        spec.check_allowed()  # first: nothing reaches a cluster the allowlist does not name
        names = {rep.name for rep in dep.replicas}
        unknown = sorted(set(spec.replicas) - names)
        if unknown:
            raise ConfigError(
                f"deployment file {dep.source}: processes.replicas.{unknown[0]}: no such replica "
                f"(replicas: {', '.join(sorted(names)) or 'none'})"
            )
        self.spec = spec
        self.dep = dep
        self.api = api(spec)
        self._pods: dict[str, tuple[str, int]] = {}  # replica -> (pod, server pid) last read

    def _replica(self, replica: str) -> KubeReplica:
        name = self.dep.replica(replica).name
        rep = self.spec.replicas.get(name)
        if rep is None:
            raise FaultError(
                f"{name} has no pod selector: add it to processes.replicas in the deployment file"
            )
        return rep

    def _exec(self, replica: str, cmd: list[str], pod: str | None = None) -> list[ExecResult]:
        return self.api.exec_in_pods(
            cmd,
            label_selector=self._replica(replica).label_selector,
            ns=self.spec.namespace,
            container=self.spec.container,
            pod=pod,
        )

    def _where(self, replica: str) -> str:
        selector = self._replica(replica).label_selector
        return f"{replica} ({selector} in namespace {self.spec.namespace})"

    def _read_pid(self, replica: str) -> tuple[str, int]:
        results = self._exec(replica, ["cat", self.spec.pid_file])
        if not results:
            raise FaultError(
                f"no pod with container {self.spec.container!r} runs {self._where(replica)}"
            )
        if len(results) > 1:
            pods = ", ".join(r.pod for r in results)
            raise FaultError(
                f"{self._where(replica)} matches {len(results)} pods ({pods}): give it a "
                "selector of one pod"
            )
        out = results[0]
        text = out.stdout.strip()
        if out.exit_code != 0 or not text.isdigit():
            raise FaultError(
                f"cannot read the server's pid from {self.spec.pid_file} in pod {out.pod} "
                f"({out.stderr.strip() or text or f'exit {out.exit_code}'}); is it running?"
            )
        pid = int(text)
        if pid <= 1:
            raise FaultError(
                f"the server in pod {out.pod} is PID {pid}, which ignores SIGSTOP from inside its "
                "container: run it under shareProcessNamespace (deploy/k8s/README.md)"
            )
        self._pods[replica] = (out.pod, pid)
        return out.pod, pid

    def _current(self, replica: str) -> tuple[str, int]:
        return self._pods.get(replica) or self._read_pid(replica)

    def pid(self, replica: str) -> int:
        """The server's pid in the replica's pod (read from ``pid_file``)."""
        return self._read_pid(replica)[1]

    def state(self, replica: str, pid: int) -> str:
        """The /proc state letter of ``pid`` in the pod last read; ``X`` once that pod is gone."""
        pod, _ = self._current(replica)
        results = self._exec(replica, ["cat", f"/proc/{pid}/stat"], pod=pod)
        if not results or results[0].exit_code != 0:
            return "X"
        fields = results[0].stdout.rpartition(")")[2].split()
        return fields[0] if fields else "X"

    def kill(self, replica: str) -> None:
        """Lose the node: delete the replica's pod with grace period 0 (its ReplicaSet replaces it)."""
        pod, _ = self._current(replica)
        deleted = self.api.terminate_pods(
            label_selector=self._replica(replica).label_selector, ns=self.spec.namespace, pod=pod
        )
        if deleted != [pod]:
            raise FaultError(
                f"deleting pod {pod} of {self._where(replica)} deleted {deleted or 'nothing'}"
            )

    def _signal(self, replica: str, signal: str) -> None:
        pod, pid = self._current(replica)
        results = self._exec(replica, ["kill", f"-{signal}", str(pid)], pod=pod)
        if len(results) != 1 or results[0].exit_code != 0:
            why = results[0].stderr.strip() if results else "the pod is gone"
            raise FaultError(f"kill -{signal} {pid} in pod {pod} failed: {why or 'non-zero exit'}")

    def hang(self, replica: str) -> None:
        """SIGSTOP the server in its pod (``kill -STOP`` through exec)."""
        self._signal(replica, "STOP")

    def resume(self, replica: str) -> None:
        """SIGCONT the server in its pod (``kill -CONT`` through exec)."""
        self._signal(replica, "CONT")

    def wait_restored(self, replica: str, timeout_s: float) -> float:
        """Poll until every pod of the replica is Ready, then wait for its Deployment; seconds."""
        limit = self.spec.wait_restored_timeout_s or timeout_s
        rep = self._replica(replica)
        start = time.monotonic()
        while not self.api.pods_ready(label_selector=rep.label_selector, ns=self.spec.namespace):
            waited = time.monotonic() - start
            if waited >= limit:
                raise FaultError(f"{self._where(replica)}: no Ready pod within {limit:g}s")
            time.sleep(min(self.spec.poll_interval_s, limit - waited))
        left = max(1.0, limit - (time.monotonic() - start))
        if not self.api.deployment_fully_available(
            name=rep.deployment, ns=self.spec.namespace, timeout_s=left
        ):
            raise FaultError(
                f"Deployment {rep.deployment} of {replica} not fully available within {limit:g}s"
            )
        self._pods.pop(replica, None)  # a new pod: read its pid afresh
        return time.monotonic() - start


if TYPE_CHECKING:  # the backend implements the seam exactly (checked by mypy)
    from chaos_rec.core.seams import Processes

    def _seam(spec: KubernetesSpec, dep: Deployment) -> Processes:
        return KubernetesProcesses(spec, dep)
