"""The kubernetes processes backend against a fake at its one seam, the KubeApi Protocol.

The fake keeps pods (labels, the server's pid and /proc state, readiness) and records every call,
so the tests see exactly what would have reached a cluster — and that nothing did when the
context or namespace is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaos_rec import backends
from chaos_rec.backends.kube import ExecResult, KubeApi
from chaos_rec.backends.kubernetes import KubernetesProcesses, KubernetesSpec
from chaos_rec.core.target import Deployment, read_deployment_file
from chaos_rec.errors import ConfigError, FaultError

SEL0 = "app.kubernetes.io/name=model-server,chaos-rec.dev/replica=replica-0"
SEL1 = "app.kubernetes.io/name=model-server,chaos-rec.dev/replica=replica-1"
SECTION: dict[str, Any] = {
    "kind": "kubernetes", "context": "gpu-staging", "namespace": "recommender",
    "allowed_contexts": ["gpu-staging"], "allowed_namespaces": ["recommender"],
    "replicas": {"replica-0": {"label_selector": SEL0, "deployment": "model-server-0"},
                 "replica-1": {"label_selector": SEL1, "deployment": "model-server-1"}},
    "poll_interval_s": 0.01,
}  # fmt: skip


@dataclass
class FakePod:
    name: str
    labels: dict[str, str]
    pid: int = 7
    state: str = "S"
    ready: bool = True
    container: str = "model-server"


@dataclass
class FakeKube:
    """Pods in one namespace; a deleted pod is replaced by a new one, Ready after some polls."""

    pods: list[FakePod]
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    ready_after_polls: int = 2
    available: bool = True
    polls: int = 0

    def _matching(self, selector: str, pod: str | None = None) -> list[FakePod]:
        want = dict(pair.split("=", 1) for pair in selector.split(","))
        return [
            p for p in self.pods
            if all(p.labels.get(k) == v for k, v in want.items()) and pod in (None, p.name)
        ]  # fmt: skip

    def exec_in_pods(
        self, cmd: Sequence[str], *, label_selector: str, ns: str, container: str,
        pod: str | None = None,
    ) -> list[ExecResult]:  # fmt: skip
        self.calls.append(("exec", tuple(cmd), label_selector, ns, container, pod))
        out = []
        for p in self._matching(label_selector, pod):
            if p.container != container:
                continue
            if list(cmd) == ["cat", "/tmp/server.pid"]:
                out.append(ExecResult(p.name, 0, f"{p.pid}\n"))
            elif cmd[0] == "cat" and cmd[1] == f"/proc/{p.pid}/stat":
                out.append(ExecResult(p.name, 0, f"{p.pid} (python -m x) {p.state} 1 7 7 0"))
            elif cmd[0] == "cat":
                out.append(ExecResult(p.name, 1, "", f"cat: {cmd[1]}: No such file"))
            elif cmd[0] == "kill" and cmd[2] == str(p.pid):
                p.state = "T" if cmd[1] == "-STOP" else "S"
                out.append(ExecResult(p.name, 0, ""))
            else:
                out.append(ExecResult(p.name, 1, "", "kill: no such process"))
        return out

    def terminate_pods(self, *, label_selector: str, ns: str, pod: str) -> list[str]:
        self.calls.append(("terminate", label_selector, ns, pod))
        gone = self._matching(label_selector, pod)
        for p in gone:
            self.pods.remove(p)
            self.pods.append(FakePod(p.name + "-new", dict(p.labels), pid=9, ready=False))
        return [p.name for p in gone]

    def pods_ready(self, *, label_selector: str, ns: str) -> bool:
        self.calls.append(("pods_ready", label_selector, ns))
        self.polls += 1
        if self.polls >= self.ready_after_polls:
            for p in self.pods:
                p.ready = True
        pods = self._matching(label_selector)
        return bool(pods) and all(p.ready for p in pods)

    def deployment_fully_available(self, *, name: str, ns: str, timeout_s: float) -> bool:
        self.calls.append(("deployment", name, ns))
        return self.available


def _pods() -> list[FakePod]:
    return [
        FakePod("model-server-0-abc", {"app.kubernetes.io/name": "model-server",
                                       "chaos-rec.dev/replica": "replica-0"}),
        FakePod("model-server-1-def", {"app.kubernetes.io/name": "model-server",
                                       "chaos-rec.dev/replica": "replica-1"}, pid=8),
    ]  # fmt: skip


def _dep(tmp_path: Path, section: dict[str, Any] | None = None) -> Deployment:
    path = tmp_path / "dep.json"
    path.write_text(json.dumps({
        "gateway_url": "http://127.0.0.1:9",
        "replicas": [{"name": "replica-0"}, {"name": "replica-1"}],
        "processes": SECTION if section is None else section,
    }))  # fmt: skip
    return read_deployment_file(path)


def _backend(tmp_path: Path, fake: FakeKube, **changes: Any) -> KubernetesProcesses:
    section = {**SECTION, **changes}
    spec = KubernetesSpec.from_dict(section, "dep.json")
    return KubernetesProcesses(spec, _dep(tmp_path, section), lambda _spec: fake)


def test_the_fake_is_a_kube_api() -> None:
    api: KubeApi = FakeKube(_pods())
    assert api.pods_ready(label_selector=SEL0, ns="recommender")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"context": "prod-east"},
         "kube context 'prod-east' is not on the allowlist (gpu-staging); "
         "add it to processes.allowed_contexts in the deployment file"),
        ({"namespace": "kube-system"},
         "namespace 'kube-system' is not on the allowlist (recommender); "
         "add it to processes.allowed_namespaces in the deployment file"),
    ],
)  # fmt: skip
def test_a_context_or_namespace_off_the_allowlist_is_refused_before_any_call(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    built: list[KubernetesSpec] = []
    fake = FakeKube(_pods())

    def factory(spec: KubernetesSpec) -> KubeApi:
        built.append(spec)
        return fake

    section = {**SECTION, **changes}
    spec = KubernetesSpec.from_dict(section, "dep.json")
    with pytest.raises(FaultError) as info:
        KubernetesProcesses(spec, _dep(tmp_path, section), factory)
    assert str(info.value) == message
    assert built == [] and fake.calls == []  # no client was built, nothing was called


def test_the_dispatch_refuses_before_it_builds_the_real_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no kubeconfig: reaching the real client would be a ConfigError about it, not the refusal
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent-kubeconfig"))
    dep = _dep(tmp_path, {**SECTION, "context": "prod-east"})
    with pytest.raises(FaultError, match="kube context 'prod-east' is not on the allowlist"):
        backends.processes(dep, "kill_replica")
    dep = _dep(tmp_path)
    with pytest.raises(ConfigError, match=r"no kubeconfig at .*absent-kubeconfig"):
        backends.processes(dep, "kill_replica")
    assert backends.check(dep) == [
        f"no kubeconfig at {tmp_path / 'absent-kubeconfig'}: the kubernetes backend needs one "
        "that holds context 'gpu-staging' (set KUBECONFIG)"
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"context": None}, "dep.json: processes.context: missing (name it explicitly)"),
        ({"allowed_namespaces": []},
         "dep.json: processes.allowed_namespaces: must be a non-empty list of names"),
        ({"allowed_contexts": ["ok", ""]},
         "dep.json: processes.allowed_contexts: every entry must be a non-empty string"),
        ({"env": {"A": "b"}}, "dep.json: processes: unknown key 'env'"),
        ({"kind": "command"}, "dep.json: processes.kind: expected 'kubernetes', got 'command'"),
        ({"replicas": {}}, "dep.json: processes.replicas: must map each replica name"),
        ({"replicas": {"replica-0": {"label_selector": SEL0}}},
         "dep.json: processes.replicas.replica-0.deployment: missing (a non-empty string)"),
        ({"replicas": {"replica-0": {"label_selector": SEL0, "deployment": "d", "ns": "x"}}},
         "dep.json: processes.replicas.replica-0: unknown key 'ns'"),
        ({"poll_interval_s": 0}, "dep.json: processes.poll_interval_s: must be positive, got 0"),
    ],
)  # fmt: skip
def test_a_bad_section_is_one_config_error_line(changes: dict[str, Any], message: str) -> None:
    section = {k: v for k, v in {**SECTION, **changes}.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        KubernetesSpec.from_dict(section, "dep.json")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_the_section_round_trips_and_names_replicas_of_the_deployment(tmp_path: Path) -> None:
    spec = KubernetesSpec.from_dict(SECTION, "dep.json")
    assert KubernetesSpec.from_dict(spec.to_dict(), "dep.json") == spec
    assert (spec.container, spec.pid_file, spec.timeout_s) == (
        "model-server",
        "/tmp/server.pid",
        60.0,
    )
    section = {**SECTION, "replicas": {"replica-9": {"label_selector": SEL0, "deployment": "d"}}}
    with pytest.raises(
        ConfigError,
        match=r"processes.replicas.replica-9: no such replica \(replicas: replica-0, replica-1\)",
    ):
        KubernetesProcesses(
            KubernetesSpec.from_dict(section, "x"), _dep(tmp_path), lambda _s: FakeKube([])
        )


def test_node_loss_deletes_exactly_the_replica_pod_and_it_is_seen_gone(tmp_path: Path) -> None:
    fake = FakeKube(_pods())
    procs = _backend(tmp_path, fake)
    assert procs.pid("replica:0") == 7
    assert procs.state("replica-0", 7) == "S"
    procs.kill("replica-0")
    assert ("terminate", SEL0, "recommender", "model-server-0-abc") in fake.calls
    assert [p.name for p in fake.pods] == ["model-server-1-def", "model-server-0-abc-new"]
    assert procs.state("replica-0", 7) == "X"  # the pod it read is gone, whatever runs now
    assert all(call[3 if call[0] == "exec" else 2] == "recommender" for call in fake.calls
               if call[0] in ("exec", "terminate"))  # fmt: skip


def test_a_hang_stops_the_server_pid_in_its_pod_and_a_resume_continues_it(tmp_path: Path) -> None:
    fake = FakeKube(_pods())
    procs = _backend(tmp_path, fake)
    pid = procs.pid("replica-1")
    procs.hang("replica-1")
    assert ("exec", ("kill", "-STOP", "8"), SEL1, "recommender", "model-server",
            "model-server-1-def") in fake.calls  # fmt: skip
    assert procs.state("replica-1", pid) == "T"
    assert fake.pods[0].state == "S"  # the other replica untouched
    procs.resume("replica-1")
    assert procs.state("replica-1", pid) == "S"


def test_restored_means_pods_ready_then_the_deployment_fully_available(tmp_path: Path) -> None:
    fake = FakeKube(_pods(), ready_after_polls=3)
    procs = _backend(tmp_path, fake)
    procs.pid("replica-0")
    procs.kill("replica-0")
    waited = procs.wait_restored("replica-0", 5.0)
    assert 0 <= waited < 5.0
    kinds = [c[0] for c in fake.calls if c[0] in ("pods_ready", "deployment")]
    assert kinds == ["pods_ready", "pods_ready", "pods_ready", "deployment"]
    assert fake.calls[-1] == ("deployment", "model-server-0", "recommender")
    assert procs.state("replica-0", 9) == "S"  # the new pod's server, not the deleted pod's
    assert procs.pid("replica-0") == 9


def test_restored_fails_with_one_line_when_no_pod_gets_ready(tmp_path: Path) -> None:
    fake = FakeKube(_pods(), ready_after_polls=10**6)
    procs = _backend(tmp_path, fake, wait_restored_timeout_s=0.05)
    procs.pid("replica-0")
    procs.kill("replica-0")
    with pytest.raises(
        FaultError, match=r"^replica-0 \(.*in namespace recommender\): no Ready pod within 0.05s$"
    ):
        procs.wait_restored("replica-0", 60.0)
    fake.ready_after_polls, fake.available = 0, False
    with pytest.raises(
        FaultError, match="Deployment model-server-0 of replica-0 not fully available"
    ):
        procs.wait_restored("replica-0", 1.0)


def test_pid_refuses_pid_1_an_ambiguous_selector_and_a_missing_pod(tmp_path: Path) -> None:
    pods = _pods()
    pods[0].pid = 1
    procs = _backend(tmp_path, FakeKube(pods))
    with pytest.raises(
        FaultError, match=r"is PID 1, which ignores SIGSTOP .* shareProcessNamespace"
    ):
        procs.pid("replica-0")
    both = {"label_selector": "app.kubernetes.io/name=model-server", "deployment": "d"}
    procs = _backend(tmp_path, FakeKube(_pods()), replicas={"replica-0": both})
    with pytest.raises(
        FaultError, match=r"matches 2 pods \(model-server-0-abc, model-server-1-def\)"
    ):
        procs.pid("replica-0")
    procs = _backend(tmp_path, FakeKube(_pods()), container="triton")
    with pytest.raises(FaultError, match="no pod with container 'triton' runs replica-0"):
        procs.hang("replica-0")
    procs = _backend(tmp_path, FakeKube(_pods()), pid_file="/run/other.pid")
    with pytest.raises(
        FaultError,
        match=r"cannot read the server's pid from /run/other.pid in pod model-server-0-abc \(cat: /run/other.pid: No such file\)",
    ):
        procs.pid("replica-0")
    with pytest.raises(FaultError, match="replica-1 has no pod selector"):
        _backend(
            tmp_path, FakeKube(_pods()), replicas={"replica-0": SECTION["replicas"]["replica-0"]}
        ).pid("replica-1")
