"""The Kubernetes target, proved offline (no cluster exists here; deploy/k8s/README.md).

Every kustomization under deploy/k8s renders with the real ``kubectl kustomize`` and each object
validates against the Kubernetes API schemas (``kubernetes-validate``, strict); the rendered
objects wire together (selectors, ports, links, probes, GPU requests); the example deployment
file names exactly the rendered pods; the runner Job drives it with only the rights it needs.
The experiments under deploy/k8s/experiments are proved in ``test_k8s_experiments.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from chaos_rec.backends.kubernetes import KubernetesSpec
from chaos_rec.core.target import read_deployment_file
from chaos_rec.settings import SETTINGS
from tests.support.k8s import EXAMPLE, K8S

KUSTOMIZATIONS = ("base", "overlays/gpu", "overlays/stock-triton-haproxy")
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding"})
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
KUBECTL = shutil.which("kubectl")

pytestmark = pytest.mark.integration
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")

Obj = dict[str, Any]


def _render(path: str) -> list[Obj]:
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(K8S / path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {path: _render(path) for path in (*KUSTOMIZATIONS, "runner")}


def _get(objs: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def _of_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def _containers(dep: Obj) -> list[Obj]:
    return list(dep["spec"]["template"]["spec"]["containers"])


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _model_servers(objs: list[Obj]) -> list[Obj]:
    return [d for d in _of_kind(objs, "Deployment")
            if d["metadata"]["labels"].get("app.kubernetes.io/name") == "model-server"]  # fmt: skip


def _service_ports(objs: list[Obj]) -> set[tuple[str, int]]:
    return {(s["metadata"]["name"], p["port"]) for s in _of_kind(objs, "Service")
            for p in s["spec"]["ports"]}  # fmt: skip


def _config_file(objs: list[Obj], prefix: str, key: str) -> str:
    maps = [m for m in _of_kind(objs, "ConfigMap") if m["metadata"]["name"].startswith(prefix)]
    assert len(maps) == 1
    return str(maps[0]["data"][key])


def _flag(args: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"{name}=")]
    assert len(values) == 1, f"{name} in {args}"
    return values[0]


@needs_kubectl
@pytest.mark.parametrize("path", (*KUSTOMIZATIONS, "runner"))
@pytest.mark.parametrize("version", VERSIONS)
def test_every_rendered_object_is_valid_for_the_kubernetes_api(
    rendered: dict[str, list[Obj]], path: str, version: str
) -> None:
    objs = rendered[path]
    assert len(objs) >= (7 if path == "runner" else 15)
    for obj in objs:
        kubernetes_validate.validate(obj, version, strict=True)  # raises ValidationError
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"]["namespace"] == "recommender", obj["metadata"]["name"]


@needs_kubectl
@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_service_and_budget_selects_pods_that_are_rendered(
    rendered: dict[str, list[Obj]], path: str
) -> None:
    objs = rendered[path]
    templates = {d["metadata"]["name"]: d["spec"]["template"] for d in _of_kind(objs, "Deployment")}
    for svc in _of_kind(objs, "Service"):
        selected = [n for n, t in templates.items()
                    if _matches(svc["spec"]["selector"], t["metadata"]["labels"])]  # fmt: skip
        assert selected == [svc["metadata"]["name"]], svc["metadata"]["name"]
        port_names = {p["name"] for c in _containers({"spec": {"template": templates[selected[0]]}})
                      for p in c.get("ports", [])}  # fmt: skip
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= port_names
    pdb = _get(objs, "PodDisruptionBudget", "model-server")
    budgeted = [n for n, t in templates.items()
                if _matches(pdb["spec"]["selector"]["matchLabels"], t["metadata"]["labels"])]  # fmt: skip
    assert budgeted == ["model-server-0", "model-server-1"] and pdb["spec"]["minAvailable"] == 1
    for deployment in _of_kind(objs, "Deployment"):
        for c in _containers(deployment):
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), c["name"]
            assert "readinessProbe" in c and "livenessProbe" in c, c["name"]


@needs_kubectl
@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_model_servers_answer_health_on_oip_v2_and_can_be_hung(
    rendered: dict[str, list[Obj]], path: str
) -> None:
    pid_file = KubernetesSpec.from_dict(_example()["processes"], "example").pid_file
    for dep in _model_servers(rendered[path]):
        spec = dep["spec"]["template"]["spec"]
        (server,) = spec["containers"]
        assert server["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
        assert server["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
        assert spec["shareProcessNamespace"] is True  # the server is not PID 1: SIGSTOP works
        assert f"echo $$ > {pid_file} && exec" in " ".join(server["command"])
        assert {p["name"]: p["containerPort"] for p in server["ports"]}["http"] == 8000


@needs_kubectl
@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_the_fault_proxy_is_on_the_redis_hop_and_in_front_of_each_replica(
    rendered: dict[str, list[Obj]], path: str
) -> None:
    objs = rendered[path]
    ports = _service_ports(objs)
    links = {
        link["name"]: link
        for link in json.loads(_config_file(objs, "fault-proxy-links", "links.json"))
    }
    assert sorted(links) == ["feature-store", "replica-0", "replica-1"]
    proxy_args = _containers(_get(objs, "Deployment", "fault-proxy"))[0]["args"]
    for link in links.values():
        host, _, port = link["upstream"].rpartition(":")
        assert (host, int(port)) in ports, link  # the upstream is a rendered Service port
        assert f"--allow-host={host}" in proxy_args
        assert ("fault-proxy", int(link["listen"].rpartition(":")[2])) in ports
    assert links["feature-store"]["upstream"] == "redis:6379"
    for dep in _model_servers(objs):
        replica = dep["spec"]["template"]["metadata"]["labels"]["chaos-rec.dev/replica"]
        assert links[replica]["upstream"].startswith(f"{dep['metadata']['name']}:")
    if path != "overlays/stock-triton-haproxy":
        for dep in _model_servers(objs):
            redis = urlsplit(_flag(_containers(dep)[0]["args"], "--redis-url"))
            assert (redis.hostname, redis.port) == ("fault-proxy", 16379)
        gateway = _containers(_get(objs, "Deployment", "gateway"))[0]["args"]
        routes = dict(r.split("=", 1) for r in _flag(gateway, "--replicas").split(","))
        assert routes == {name: f"fault-proxy:{links[name]['listen'].rpartition(':')[2]}"
                          for name in ("replica-0", "replica-1")}  # fmt: skip
    targets = [t for job in yaml.safe_load(_config_file(objs, "prometheus-config", "prometheus.yml"))["scrape_configs"]
               for sc in job["static_configs"] for t in sc["targets"]]  # fmt: skip
    assert len(targets) == 3
    for target in targets:
        host, _, port = target.rpartition(":")
        assert (host, int(port)) in ports, target


@needs_kubectl
def test_the_gpu_overlay_puts_each_replica_on_its_own_gpu(rendered: dict[str, list[Obj]]) -> None:
    base, gpu = _model_servers(rendered["base"]), _model_servers(rendered["overlays/gpu"])
    assert len(gpu) == 2
    for dep in base:
        assert "nvidia.com/gpu" not in json.dumps(dep)
    for dep in gpu:
        spec = dep["spec"]["template"]["spec"]
        (server,) = spec["containers"]
        assert server["resources"]["requests"]["nvidia.com/gpu"] == 1
        assert server["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert {"cpu", "memory"} <= set(server["resources"]["requests"])  # the base's kept
        (term,) = spec["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert term["matchExpressions"] == [
            {"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}
        ]
        assert {e["name"]: e.get("value") for e in server["env"]}["MODEL_DEVICE"] == "cuda"
        assert "--device=$(MODEL_DEVICE)" in server["args"]


@needs_kubectl
def test_the_stock_overlay_runs_triton_behind_haproxy(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["overlays/stock-triton-haproxy"]
    for dep in _model_servers(objs):
        (server,) = _containers(dep)
        assert server["image"].startswith("TRITON_IMAGE:") and server["args"][0] == "tritonserver"
        assert _flag(server["args"], "--http-port") == "8000"
        assert _flag(server["args"], "--grpc-port") == "8001"
        mounts = {m["mountPath"] for m in server["volumeMounts"]}
        assert _flag(server["args"], "--model-repository") in mounts
    (haproxy,) = _containers(_get(objs, "Deployment", "gateway"))
    assert haproxy["image"].startswith("HAPROXY_IMAGE:") and haproxy["command"][0] == "haproxy"
    assert "args" not in haproxy and "env" not in haproxy  # nothing of the chaos-rec gateway left
    cfg = _config_file(objs, "haproxy-config", "haproxy.cfg")
    assert "bind :8080" in cfg and "option httpchk GET /v2/health/ready" in cfg
    for name, port in (("replica-0", 18001), ("replica-1", 18011)):
        assert f"server {name} fault-proxy:{port} check" in cfg


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not on PATH")
def test_haproxy_accepts_the_stock_overlay_configuration() -> None:
    cfg = K8S / "overlays" / "stock-triton-haproxy" / "haproxy.cfg"
    out = subprocess.run(
        ["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert "Configuration file is valid" in out.stdout


def _example() -> Obj:
    data: Obj = json.loads(EXAMPLE.read_text())
    return data


@needs_kubectl
def test_the_example_deployment_file_names_the_rendered_pods(
    rendered: dict[str, list[Obj]],
) -> None:
    dep = read_deployment_file(EXAMPLE)  # schema-valid
    spec = KubernetesSpec.from_dict(dep.backends["processes"], "deploy/k8s/deployment.k8s.json")
    assert spec.namespace in spec.allowed_namespaces and spec.context in spec.allowed_contexts
    objs = rendered["base"]
    assert {r.name for r in dep.replicas} == set(spec.replicas)
    for name, rep in spec.replicas.items():
        selector = dict(pair.split("=", 1) for pair in rep.label_selector.split(","))
        chosen = [d["metadata"]["name"] for d in _of_kind(objs, "Deployment")
                  if _matches(selector, d["spec"]["template"]["metadata"]["labels"])]  # fmt: skip
        assert chosen == [rep.deployment], name
        assert spec.container in {
            c["name"] for c in _containers(_get(objs, "Deployment", rep.deployment))
        }
    links = {
        link["name"]: link
        for link in json.loads(_config_file(objs, "fault-proxy-links", "links.json"))
    }
    ports = _service_ports(objs)
    for name, link in dep.links.items():
        assert link["upstream"] == links[name]["upstream"]
        host, _, port = link["listen"].rpartition(":")
        assert host == "fault-proxy.recommender.svc" and ("fault-proxy", int(port)) in ports
    assert urlsplit(dep.require_toxiproxy()).hostname in dep.allow_hosts


def _rules(role: Obj) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}  # fmt: skip


@needs_kubectl
def test_the_runner_job_drives_the_example_under_its_own_service_account(
    rendered: dict[str, list[Obj]],
) -> None:
    objs = rendered["runner"]
    (job,) = _of_kind(objs, "Job")
    pod = job["spec"]["template"]["spec"]
    account = pod["serviceAccountName"]
    assert _get(objs, "ServiceAccount", account)
    (drills,) = pod["containers"]
    assert {e["name"]: e.get("value") for e in drills["env"]}["CHAOSTOOLKIT_IN_POD"] == "true"
    stack = _flag(drills["args"], "--drill-stack")
    (mount,) = [m for m in drills["volumeMounts"] if stack.startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    config = _get(objs, "ConfigMap", volume["configMap"]["name"])
    assert config["data"][Path(stack).name] == EXAMPLE.read_text()  # the example, as mounted
    spec = KubernetesSpec.from_dict(json.loads(EXAMPLE.read_text())["processes"], "example")
    assert spec.context == "in-cluster" and spec.allowed_contexts == ("in-cluster",)
    holdout = Path(str(_example()["holdout"]))
    assert any(holdout.parent == Path(m["mountPath"]) for m in drills["volumeMounts"])
    # the namespaced rights: what the processes backend and the Chaos Mesh experiment call
    role = _get(objs, "Role", "chaos-rec-drills")
    binding = _get(objs, "RoleBinding", "chaos-rec-drills")
    assert binding["roleRef"]["name"] == "chaos-rec-drills"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": "recommender"}
    ]
    assert {("", "pods", "list"), ("", "pods", "delete"), ("", "pods/exec", "create"),
            ("apps", "deployments", "watch"), ("chaos-mesh.org", "networkchaos", "create"),
            ("chaos-mesh.org", "networkchaos", "delete")} <= _rules(role)  # fmt: skip
    assert not any(verb == "*" or resource == "*" for _, resource, verb in _rules(role))
    # the load: Locust's master/worker mode in this pod, a core per worker and one for the master
    ini, _, workers = _flag(drills["args"], "--override-ini").partition("=")
    assert ini == SETTINGS["load_workers"].ini
    assert SETTINGS["load_workers"].parse(workers, "load workers") == 2
    assert float(drills["resources"]["requests"]["cpu"]) >= int(workers) + 1
    drain = _get(objs, "ClusterRole", "chaos-rec-node-drain")
    assert _rules(drain) == {("", "nodes", "get"), ("", "nodes", "list"), ("", "nodes", "patch"),
                             ("", "pods", "get"), ("", "pods", "list"),
                             ("", "pods/eviction", "create")}  # fmt: skip
