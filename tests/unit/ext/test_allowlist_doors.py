"""Every kind of target is refused off the allowlist before anything reaches it.

Each row drives a real door (a Chaos Toolkit action or probe, the halt command, the preflight)
against a deployment whose one target of that kind is outside the allowlist. The tripwire
replaces every way out of the process with a fake that records the call and fails: the clients
of the seams (fault proxy, traffic adapter, Kubernetes API, Prometheus, Redis), sockets,
subprocesses and signals. Each row asserts the refusal line and that nothing was called.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chaos_rec import actions, backends, probes
from chaos_rec.core.run import ACTIVE
from chaos_rec.core.target import Deployment, read_deployment_file
from chaos_rec.errors import ChaosRecError, FaultError, ProbeError

OUTSIDE = "10.9.9.9"
FILE_FIX = "add it to allow_hosts in the deployment file"
REF_FIX = "the reference stack's targets are loopback only"
LOOP = "(127.0.0.1, ::1, localhost)"
KUBE: dict[str, Any] = {
    "kind": "kubernetes", "context": "prod-east", "namespace": "recommender",
    "allowed_contexts": ["gpu-staging"], "allowed_namespaces": ["recommender"],
    "replicas": {"replica-0": {"label_selector": "app=m", "deployment": "model-server-0"}},
}  # fmt: skip
OIP_GRPC: dict[str, Any] = {"kind": "oip-v2", "model": "m", "items_output": "item_ids",
                            "protocol": "grpc", "grpc_url": f"{OUTSIDE}:8001"}  # fmt: skip
COMMANDS: dict[str, dict[str, Any]] = {
    "processes": {"kind": "command", "kill": "true", "hang": "true", "resume": "true",
                  "ready": "true", "pid": "echo 4242"},
    "data": {"kind": "command", "wipe": "true", "restore": "true", "verify": "true",
             "size": "echo 0"},
    "rollout": {"kind": "command", "push": "true"},
}  # fmt: skip


class Tripwire:
    """Records every attempt to leave the process; each attempt also fails the call."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def fake(self, name: str) -> Callable[..., Any]:
        def called(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise AssertionError(f"{name} was reached past the allowlist")

        return called


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch) -> Tripwire:
    import redis

    import chaos_rec.backends.adapters as adapters
    import chaos_rec.backends.kubernetes as kubernetes
    import chaos_rec.core.target as target
    import chaos_rec.toxiproxy.client as toxiproxy

    wire = Tripwire()
    for owner, name in [
        (toxiproxy, "ToxiproxyClient"), (adapters, "AdapterTraffic"),
        (kubernetes, "Chaosk8sApi"), (target, "PrometheusAPI"), (redis.Redis, "from_url"),
        (socket.socket, "connect"), (socket.socket, "connect_ex"), (socket, "create_connection"),
        (subprocess, "Popen"), (os, "kill"), (os, "killpg"),
    ]:  # fmt: skip
        monkeypatch.setattr(owner, name, wire.fake(name))
    return wire


def _file(tmp_path: Path, **over: Any) -> dict[str, Any]:
    """Configuration naming a deployment file: loopback everywhere but what ``over`` sets."""
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "weights.bin").write_bytes(b"\0" * 64)
    data: dict[str, Any] = {
        "gateway_url": "http://127.0.0.1:8080", "toxiproxy_url": "http://127.0.0.1:8474",
        "redis_url": "redis://127.0.0.1:6379/0", "bundle": str(bundle),
        "replicas": [{"name": "replica-0", "http_url": "http://127.0.0.1:8000",
                      "link": "replica-0"}],
        "links": {"feature-store": {"listen": "127.0.0.1:16379", "upstream": "127.0.0.1:6379"}},
    }  # fmt: skip
    data.update(over)
    path = tmp_path / "dep.json"
    path.write_text(json.dumps(data))
    return {"chaos_rec_target": str(path), "chaos_rec_run_dir": str(tmp_path / "run")}


def _outside_replica(tmp_path: Path, **over: Any) -> dict[str, Any]:
    rep = {"name": "replica-0", "http_url": f"http://{OUTSIDE}:8000", "link": "replica-0"}
    return _file(tmp_path, replicas=[rep], **over)


@pytest.fixture
def reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    """Configuration for a (faked) running reference stack; ``replica_http`` is its endpoint."""
    import chaos_rec.stack as stack
    from chaos_rec.stack import StackState

    def conf(replica_http: str = "http://127.0.0.1:8000", **ctk: Any) -> dict[str, Any]:
        state = StackState(
            state_dir=str(tmp_path), gateway_url="http://127.0.0.1:8080",
            toxiproxy_url="http://127.0.0.1:8474",
            links={"feature-store": {"listen": "127.0.0.1:16379", "upstream": "127.0.0.1:6379"}},
            components={"replica-0": {"name": "replica-0", "role": "replica", "replica": 0,
                                      "pid": 4242, "endpoints": {"http": replica_http}}},
        )  # fmt: skip
        monkeypatch.setattr(stack, "load_state", lambda *a, **k: state)
        return {"chaos_rec_target": "reference", "chaos_rec_state_dir": str(tmp_path), **ctk}

    return conf


def _halt(conf: dict[str, Any]) -> Any:
    from chaos_rec.halt import _halt as halt

    return halt(argparse.Namespace(state_dir=None, drill_stack=Path(conf["chaos_rec_target"])))


Conf = Callable[[Path, Any], dict[str, Any]]
Row = tuple[str, Conf, Callable[[dict[str, Any]], Any], str, type[ChaosRecError]]
ROWS: list[Row] = [
    ("reference stack: CTK chaos_rec_toxiproxy_url",
     lambda t, ref: ref(chaos_rec_toxiproxy_url=f"http://{OUTSIDE}:8474"),
     lambda c: actions.add_toxic("link:feature-store", configuration=c),
     f"toxiproxy_url: host '{OUTSIDE}' is not on the allowlist {LOOP}; {REF_FIX}",
     FaultError),
    ("reference stack: CTK chaos_rec_gateway_url (gateway admin)",
     lambda t, ref: ref(chaos_rec_gateway_url=f"http://{OUTSIDE}:8080"),
     lambda c: actions.set_resilience({"retries": False}, "gateway", configuration=c),
     f"gateway_url: host '{OUTSIDE}' is not on the allowlist {LOOP}; {REF_FIX}",
     FaultError),
    ("processes reference (supervisor)",
     lambda t, ref: ref(replica_http=f"http://{OUTSIDE}:8000"),
     lambda c: actions.kill_replica("replica:0", configuration=c),
     f"replicas.replica-0.http_url: host '{OUTSIDE}' is not on the allowlist {LOOP}; {REF_FIX}",
     FaultError),
    ("deployment file: fault proxy on an outside host",
     lambda t, ref: _file(t, toxiproxy_url=f"http://{OUTSIDE}:8474"),
     lambda c: actions.cut_link("link:feature-store", configuration=c),
     f"toxiproxy_url: host '{OUTSIDE}' is not on the allowlist {LOOP}; {FILE_FIX}",
     FaultError),
    ("deployment file: CTK chaos_rec_toxiproxy_url over a loopback file",
     lambda t, ref: {**_file(t), "chaos_rec_toxiproxy_url": f"http://{OUTSIDE}:8474"},
     lambda c: actions.remove_toxic("link:feature-store", configuration=c),
     f"toxiproxy_url: host '{OUTSIDE}' is not on the allowlist",
     FaultError),
    ("deployment file: a link listening on an outside host",
     lambda t, ref: _file(t, links={"feature-store": {"listen": f"{OUTSIDE}:16379"}}),
     lambda c: actions.add_toxic("link:feature-store", configuration=c),
     f"links.feature-store.listen: host '{OUTSIDE}' is not on the allowlist",
     FaultError),
    ("halt: the fault proxy it would reset",
     lambda t, ref: _file(t, toxiproxy_url=f"http://{OUTSIDE}:8474"),
     _halt,
     f"toxiproxy_url: host '{OUTSIDE}' is not on the allowlist",
     FaultError),
    ("processes command",
     lambda t, ref: _outside_replica(t, processes=COMMANDS["processes"]),
     lambda c: actions.hang_replica("replica:0", configuration=c),
     f"replicas.replica-0.http_url: host '{OUTSIDE}' is not on the allowlist {LOOP}; {FILE_FIX}",
     FaultError),
    ("processes kubernetes (context)",
     lambda t, ref: _file(t, processes=KUBE),
     lambda c: actions.kill_replica("replica:0", configuration=c),
     "kube context 'prod-east' is not on the allowlist (gpu-staging); "
     "add it to processes.allowed_contexts in the deployment file",
     FaultError),
    ("processes kubernetes (namespace)",
     lambda t, ref: _file(t, processes={**KUBE, "context": "gpu-staging",
                                        "namespace": "kube-system"}),
     lambda c: actions.wait_replica_restored("replica:0", configuration=c),
     "namespace 'kube-system' is not on the allowlist (recommender)",
     FaultError),
    ("data redis (action)",
     lambda t, ref: _file(t, redis_url=f"redis://{OUTSIDE}:6379/0"),
     lambda c: actions.rematerialize_features(configuration=c),
     f"redis_url: host '{OUTSIDE}' is not on the allowlist {LOOP}; {FILE_FIX}",
     FaultError),
    ("data redis (probe)",
     lambda t, ref: _file(t, redis_url=f"redis://{OUTSIDE}:6379/0"),
     lambda c: probes.feature_store_consistent(configuration=c),
     f"redis_url: host '{OUTSIDE}' is not on the allowlist",
     ProbeError),
    ("data command",
     lambda t, ref: _file(t, redis_url=f"redis://{OUTSIDE}:6379/0", data=COMMANDS["data"]),
     lambda c: actions.restart_redis_empty(configuration=c),
     f"redis_url: host '{OUTSIDE}' is not on the allowlist",
     FaultError),
    ("rollout reference (admin reload)",
     lambda t, ref: _outside_replica(t),
     lambda c: actions.push_bundle(str(Path(c["chaos_rec_run_dir"]).parent / "bundle"),
                                   configuration=c),
     f"replicas.replica-0.http_url: host '{OUTSIDE}' is not on the allowlist",
     FaultError),
    ("rollout triton-repository",
     lambda t, ref: _outside_replica(t, rollout={"kind": "triton-repository", "model": "m"}),
     lambda c: actions.restore_bundle("replica:0", configuration=c),
     f"replicas.replica-0.http_url: host '{OUTSIDE}' is not on the allowlist",
     FaultError),
    ("rollout command",
     lambda t, ref: _outside_replica(t, rollout=COMMANDS["rollout"]),
     lambda c: actions.push_corrupt_bundle("replica:0", configuration=c),
     f"replicas.replica-0.http_url: host '{OUTSIDE}' is not on the allowlist",
     FaultError),
    ("replica admin (resilience switches)",
     lambda t, ref: _outside_replica(t),
     lambda c: actions.set_resilience({"retries": False}, "replica:0", configuration=c),
     f"replicas.replica-0.http_url: host '{OUTSIDE}' is not on the allowlist",
     FaultError),
    ("replica readiness probe",
     lambda t, ref: _outside_replica(t),
     lambda c: probes.replicas_ready(configuration=c),
     f"replicas.replica-0.http_url: host '{OUTSIDE}' is not on the allowlist",
     ProbeError),
    ("prometheus_url",
     lambda t, ref: _file(t, prometheus_url=f"http://{OUTSIDE}:9090"),
     lambda c: probes.prometheus_query("up", configuration=c),
     f"prometheus_url: host '{OUTSIDE}' is not on the allowlist {LOOP}; {FILE_FIX}",
     ProbeError),
    ("traffic gateway (quality replay)",
     lambda t, ref: _file(t, gateway_url=f"http://{OUTSIDE}:8080"),
     lambda c: probes.quality_baseline(configuration=c),
     f"gateway_url: host '{OUTSIDE}' is not on the allowlist {LOOP}; {FILE_FIX}",
     ProbeError),
    ("traffic gateway (health probe)",
     lambda t, ref: _file(t, gateway_url=f"http://{OUTSIDE}:8080"),
     lambda c: probes.gateway_health(configuration=c),
     f"gateway_url: host '{OUTSIDE}' is not on the allowlist",
     ProbeError),
    ("traffic oip-v2 grpc_url",
     lambda t, ref: _file(t, traffic=OIP_GRPC),
     lambda c: probes.quality_ratio(configuration=c),
     f"traffic.grpc_url: host '{OUTSIDE}' is not on the allowlist",
     ProbeError),
]  # fmt: skip


@pytest.mark.parametrize(("conf", "door", "message", "error"), [r[1:] for r in ROWS],
                         ids=[r[0] for r in ROWS])  # fmt: skip
def test_a_target_off_the_allowlist_is_refused_before_it_is_reached(
    tmp_path: Path, reference: Any, tripwire: Tripwire,
    conf: Conf, door: Callable[[dict[str, Any]], Any], message: str,
    error: type[ChaosRecError],
) -> None:  # fmt: skip
    configuration = conf(tmp_path, reference)
    with pytest.raises(error) as info:  # a probe's refusal is its ProbeError
        door(configuration)
    text = str(info.value)
    assert text.startswith(message) and "\n" not in text, text
    assert tripwire.calls == []


def test_the_control_refuses_before_the_run_dir_and_the_load(
    tmp_path: Path, tripwire: Tripwire
) -> None:
    from chaoslib.exceptions import InterruptExecution

    from chaos_rec import controls
    from chaos_rec.core.run import ACTIVE

    conf = _file(tmp_path, gateway_url=f"http://{OUTSIDE}:8080")
    del conf["chaos_rec_run_dir"]
    conf |= {"chaos_rec_load": True, "chaos_rec_state_dir": str(tmp_path / "state")}
    with pytest.raises(InterruptExecution) as info:
        controls.before_experiment_control({"title": "t"}, configuration=conf)
    assert str(info.value) == (
        f"chaos-rec: gateway_url: host '{OUTSIDE}' is not on the allowlist {LOOP}; {FILE_FIX}"
    )
    assert ACTIVE.run is None and not (tmp_path / "state").exists()
    assert tripwire.calls == []


def test_preflight_reports_the_refusal_and_touches_nothing(
    tmp_path: Path, tripwire: Tripwire
) -> None:
    from chaos_rec.core.preflight import preflight

    conf = _file(tmp_path, gateway_url=f"http://{OUTSIDE}:8080")
    dep = read_deployment_file(Path(conf["chaos_rec_target"]))
    assert preflight(dep, ["replica:0"], None) == [
        f"gateway_url: host '{OUTSIDE}' is not on the allowlist {LOOP}; {FILE_FIX}"
    ]
    assert tripwire.calls == []


def test_hosts_on_allow_hosts_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a blanket refusal: every seam builds on outside hosts the file allows, and an
    action reaches its seam there."""
    import chaos_rec.actions.ops as ops
    from chaos_rec.backends.adapters import AdapterTraffic
    from chaos_rec.backends.commands import CommandFeatureData, CommandProcesses
    from chaos_rec.backends.triton_repository import TritonRepositoryRollout
    from chaos_rec.toxiproxy.client import ToxiproxyClient

    hosts = [OUTSIDE, "10.9.9.8", "gateway.svc"]
    conf = _outside_replica(
        tmp_path, allow_hosts=hosts, gateway_url="http://gateway.svc:8080",
        toxiproxy_url=f"http://{OUTSIDE}:8474", redis_url=f"redis://{OUTSIDE}:6379/0",
        prometheus_url="http://10.9.9.8:9090", processes=COMMANDS["processes"],
        data=COMMANDS["data"], rollout={"kind": "triton-repository", "model": "m"},
        links={"feature-store": {"listen": f"{OUTSIDE}:16379"}},
    )  # fmt: skip
    dep: Deployment = read_deployment_file(Path(conf["chaos_rec_target"]))
    assert isinstance(backends.links(dep, 1.0), ToxiproxyClient)
    traffic = backends.traffic(dep, 1.0)
    assert isinstance(traffic, AdapterTraffic) and traffic.base_url == "http://gateway.svc:8080"
    traffic.close()
    assert isinstance(backends.processes(dep), CommandProcesses)
    assert isinstance(backends.data(dep, 1.0), CommandFeatureData)
    assert isinstance(backends.rollout(dep, 1.0), TritonRepositoryRollout)
    server = dep.server_metrics()
    assert server is not None and server.url == "http://10.9.9.8:9090"
    assert backends.check(dep) == []

    called: list[tuple[str, str, str]] = []

    def admin(url: str, method: str, path: str, **_: Any) -> tuple[int, Any]:
        called.append((url, method, path))
        return 200, {"retries": False}

    monkeypatch.setattr(ops, "admin_request", admin)
    actions.set_resilience({"retries": False}, "replica:0", configuration=conf)
    assert called == [
        (f"http://{OUTSIDE}:8000", "POST", "/admin/resilience"),
        (f"http://{OUTSIDE}:8000", "GET", "/admin/resilience"),
    ]
    ACTIVE.ledger.clear()  # the switch-back the action remembered
