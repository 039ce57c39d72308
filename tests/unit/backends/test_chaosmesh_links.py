"""The chaos-mesh links backend against a fake at its one seam, the NetworkChaosApi Protocol.

The fake keeps NetworkChaos objects in one namespace as the API server and Chaos Mesh would:
a created object gets ``Selected``/``AllInjected`` after some polls (or never), a deleted one
lingers for some polls (the finalizer) before it is gone. Every call is recorded, so the tests
see exactly which objects would have reached a cluster — and that nothing did when a context or
namespace is refused. No cluster was reachable where these were written.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from chaos_rec import actions, backends
from chaos_rec.backends.capabilities import offered
from chaos_rec.backends.chaosmesh import ChaosMeshLinks
from chaos_rec.backends.chaosmesh_spec import ChaosMeshSpec, resource_name
from chaos_rec.backends.kube import CHAOSK8S_CALLS
from chaos_rec.core.run import ACTIVE
from chaos_rec.core.target import read_deployment_file
from chaos_rec.errors import CapabilityError, ConfigError, FaultError

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
    _age: dict[str, int] = field(default_factory=dict)
    _dying: dict[str, int] = field(default_factory=dict)

    def create_network_chaos(self, body: Mapping[str, Any], *, ns: str) -> dict[str, Any]:
        self.calls.append(("create", body["metadata"]["name"], ns))
        obj = json.loads(json.dumps(body))
        self.objects[obj["metadata"]["name"]] = obj
        self._age[obj["metadata"]["name"]] = 0
        return obj

    def delete_network_chaos(self, name: str, *, ns: str) -> None:
        self.calls.append(("delete", name, ns))
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


def _links(fake: FakeChaosMesh, **over: Any) -> ChaosMeshLinks:
    spec = ChaosMeshSpec.from_dict({**SECTION, **over}, "dep.json")
    return ChaosMeshLinks(spec, lambda _spec: fake)


def test_a_latency_toxic_is_a_delay_from_the_source_pods_to_the_target_pods() -> None:
    fake = FakeChaosMesh()
    links = _links(fake)
    toxic = links.add_toxic("feature-store", "latency", {"latency": 300, "jitter": 50})
    name = resource_name("feature-store", "latency_downstream")
    assert fake.made("create") == [name] and toxic["resource"] == name
    obj = fake.objects[name]
    assert obj["apiVersion"] == "chaos-mesh.org/v1alpha1" and obj["kind"] == "NetworkChaos"
    assert obj["metadata"]["namespace"] == NS
    assert obj["metadata"]["labels"] == {**OURS, "chaos-rec.dev/link": "feature-store",
                                         "chaos-rec.dev/fault": "toxic"}  # fmt: skip
    assert obj["spec"] == {"action": "delay", **MODEL_SERVERS, "direction": "to",
                           "target": REDIS, "delay": {"latency": "300ms", "jitter": "50ms"}}  # fmt: skip
    assert "duration" not in obj["spec"]  # lasts until deleted
    assert toxic["observed"].startswith(f"NetworkChaos {name}: Selected, AllInjected after")
    (listed,) = links.toxics("feature-store")
    assert listed["name"] == "latency_downstream" and listed["type"] == "latency"
    assert listed["attributes"] == {"latency": 300, "jitter": 50} and listed["injected"]


def test_bandwidth_is_chaos_meshs_bandwidth_action_in_kilobytes_per_second() -> None:
    fake = FakeChaosMesh()
    _links(fake).add_toxic("feature-store", "bandwidth", {"rate": 1}, name="slow")
    spec = fake.objects[resource_name("feature-store", "slow")]["spec"]
    assert spec["action"] == "bandwidth"  # chaosk8s 0.39's set_bandwidth writes "bandwdith"
    assert spec["bandwidth"] == {"rate": "1kbps", "limit": 20 * 1024 * 1024, "buffer": 1600}
    assert spec["direction"] == "to" and spec["target"] == REDIS


def test_a_blackhole_timeout_and_a_cut_are_partitions() -> None:
    fake = FakeChaosMesh()
    links = _links(fake)
    links.add_toxic("feature-store", "timeout", {"timeout": 0})
    state = links.disable("feature-store")
    timeout = fake.objects[resource_name("feature-store", "timeout_downstream")]
    cut = fake.objects[resource_name("feature-store", "cut")]
    assert timeout["spec"] == {"action": "partition", **MODEL_SERVERS, "direction": "to",
                               "target": REDIS}  # fmt: skip
    assert cut["spec"] == timeout["spec"]
    assert cut["metadata"]["labels"]["chaos-rec.dev/fault"] == "cut"
    assert state["enabled"] is False and state["listen"] is None  # no address to probe
    assert [t["name"] for t in state["toxics"]] == ["timeout_downstream"]  # the cut is no toxic


def test_an_external_target_is_external_targets_with_direction_to() -> None:
    fake = FakeChaosMesh()
    _links(fake).add_toxic("payments", "latency", {"latency": 80})
    spec = fake.objects[resource_name("payments", "latency_downstream")]["spec"]
    assert spec["externalTargets"] == ["10.0.0.7", "payments.example.com"] and "target" not in spec
    assert spec["selector"]["labelSelectors"] == {"app": "gateway", "tier": "edge"}
    assert spec["delay"] == {"latency": "80ms"}
    bad = {"payments": {**SECTION["links"]["payments"], "direction": "from"}}
    with pytest.raises(ConfigError, match=r"^dep\.json: links\.links\.payments\.direction: Chaos "
                       r"Mesh applies external targets to direction 'to' only$"):  # fmt: skip
        ChaosMeshSpec.from_dict({**SECTION, "links": bad}, "dep.json")


@pytest.mark.parametrize(
    ("toxic", "attributes", "toxicity", "says"),
    [
        ("slicer", {"average_size": 10}, 1.0, "toxic slicer has no Chaos Mesh equivalent: the "
         "chaos-mesh links backend adds latency, bandwidth, timeout toxics only"),
        ("slow_close", {"delay": 10}, 1.0, "toxic slow_close has no Chaos Mesh equivalent"),
        ("limit_data", {"bytes": 10}, 1.0, "toxic limit_data has no Chaos Mesh equivalent"),
        ("timeout", {"timeout": 500}, 1.0, "toxic timeout with timeout > 0 (close each "
         "connection after it) has no Chaos Mesh equivalent on the chaos-mesh links backend"),
        ("latency", {"latency": 100}, 0.5, "toxic latency with toxicity 0.5: the chaos-mesh "
         "links backend faults every connection of a link (toxicity 1) only"),
    ],
)  # fmt: skip
def test_a_toxic_without_a_chaos_mesh_equivalent_is_refused_before_any_object(
    toxic: str, attributes: dict[str, Any], toxicity: float, says: str
) -> None:
    fake = FakeChaosMesh()
    with pytest.raises(CapabilityError) as info:
        _links(fake).add_toxic("feature-store", toxic, attributes, toxicity=toxicity)
    assert str(info.value).startswith(says) and "\n" not in str(info.value)
    assert fake.made("create") == []


def test_undo_removes_exactly_what_was_created_and_waits_until_it_is_gone() -> None:
    foreign = {"metadata": {"name": "someone-elses", "labels": {"team": "sre"}}, "spec": {}}
    fake = FakeChaosMesh(objects={"someone-elses": foreign}, gone_after=3)
    links = _links(fake)
    links.add_toxic("feature-store", "latency", {"latency": 100})
    links.add_toxic("feature-store", "bandwidth", {"rate": 5})
    links.disable("feature-store")
    links.remove_toxic("feature-store", "latency_downstream")
    assert fake.made("delete") == [resource_name("feature-store", "latency_downstream")]
    assert resource_name("feature-store", "latency_downstream") not in fake.objects  # gone, waited
    assert links.enable("feature-store")["enabled"] is True
    assert fake.made("delete")[1:] == [resource_name("feature-store", "cut")]
    left = sorted(fake.objects)
    assert left == sorted(["someone-elses", resource_name("feature-store", "bandwidth_downstream")])
    links.remove_toxic("feature-store", "latency_downstream")  # already gone: no call
    assert len(fake.made("delete")) == 2


def test_repair_deletes_every_labelled_leftover_and_nothing_else() -> None:
    fake = FakeChaosMesh()
    crashed = _links(fake)
    crashed.add_toxic("feature-store", "latency", {"latency": 100})
    crashed.disable("payments")
    fake.objects["someone-elses"] = {"metadata": {"name": "someone-elses"}, "spec": {}}
    done = _links(fake).reset()  # a new session: it knows nothing but the labels
    lat, cut = (
        resource_name("feature-store", "latency_downstream"),
        resource_name("payments", "cut"),
    )
    assert sorted(done) == sorted([f"chaos mesh: deleted NetworkChaos {lat} (link feature-store)",
                                   f"chaos mesh: deleted NetworkChaos {cut} (link payments)"])  # fmt: skip
    assert sorted(fake.made("delete")) == sorted([lat, cut])
    assert list(fake.objects) == ["someone-elses"]
    assert _links(fake).reset() == []


@pytest.mark.parametrize(
    ("over", "says"),
    [
        ({"context": "prod"}, "kube context 'prod' is not on the allowlist (gpu-staging); add it "
         "to links.allowed_contexts in the deployment file"),
        ({"namespace": "kube-system"}, "namespace 'kube-system' is not on the allowlist "
         "(recommender); add it to links.allowed_namespaces in the deployment file"),
        ({"links": {"x": {"source": {"label_selector": "a=b"},
                          "target": {"label_selector": "c=d", "namespace": "payments"}}}},
         "namespace 'payments' is not on the allowlist (recommender)"),
    ],
)  # fmt: skip
def test_a_context_or_namespace_off_the_allowlist_makes_no_api_call(
    over: dict[str, Any], says: str
) -> None:
    built: list[Any] = []
    spec = ChaosMeshSpec.from_dict({**SECTION, **over}, "dep.json")
    with pytest.raises(FaultError) as info:
        ChaosMeshLinks(spec, lambda s: built.append(s) or FakeChaosMesh())
    assert str(info.value).startswith(says)
    assert built == []  # no client was even built


def test_a_fault_not_injected_by_the_deadline_is_deleted_and_reported_in_one_line() -> None:
    fake = FakeChaosMesh(inject_after=None)
    links = _links(fake, inject_timeout_s=0.05)
    name = resource_name("feature-store", "latency_downstream")
    with pytest.raises(FaultError) as info:
        links.add_toxic("feature-store", "latency", {"latency": 100})
    assert str(info.value) == (
        f"toxic latency_downstream on link feature-store not injected within 0.05s "
        f"(NetworkChaos {name}: Selected=False, AllInjected=False); deleted it"
    )
    assert fake.made("delete") == [name]
    for _ in range(2):  # the finalizer's polls
        fake.list_network_chaos(ns=NS)
    assert fake.objects == {}
    with pytest.raises(FaultError, match=r"a cut on link payments not injected within 0\.05s"):
        links.disable("payments")


def test_a_second_toxic_of_the_same_name_is_refused_and_the_first_kept() -> None:
    fake = FakeChaosMesh()
    links = _links(fake)
    links.add_toxic("feature-store", "latency", {"latency": 100})
    with pytest.raises(FaultError, match="toxic latency_downstream is already on link"):
        links.add_toxic("feature-store", "latency", {"latency": 200})
    assert len(fake.made("create")) == 1 and fake.made("delete") == []


@pytest.mark.parametrize(
    ("over", "says"),
    [
        ({"links": {}}, "links.links: must map each link name to its source and target"),
        ({"links": {"x": {"source": {"label_selector": "app in (a,b)"},
                          "target": {"label_selector": "c=d"}}}},
         "links.links.x.source.label_selector: 'app in (a' is not key=value"),
        ({"links": {"x": {"source": {"label_selector": "a=b"}, "target": {"label_selector": "c=d"},
                          "direction": "sideways"}}},
         "links.links.x.direction: must be one of to, from, both"),
        ({"links": {"x": {"source": {"label_selector": "a=b"}}}},
         "links.links.x.target must be an object"),
        ({"allowed_contexts": []}, "links.allowed_contexts: must be a non-empty list of names"),
        ({"chaos": 1}, "links: unknown key 'chaos'"),
    ],
)  # fmt: skip
def test_a_bad_section_is_one_config_error_line(over: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as info:
        ChaosMeshSpec.from_dict({**SECTION, **over}, "dep.json")
    assert str(info.value).startswith(f"dep.json: {says}") and "\n" not in str(info.value)


def _deployment(tmp_path: Path, **extra: Any) -> Any:
    path = tmp_path / "dep.json"
    path.write_text(json.dumps({"gateway_url": "http://127.0.0.1:9", "links": SECTION, **extra}))
    return read_deployment_file(path)


def test_a_deployment_file_names_the_links_and_offers_them(tmp_path: Path) -> None:
    dep = _deployment(tmp_path)
    assert dep.links == {} and dep.toxiproxy_url is None and dep.faults_links
    assert dep.link_names == {"feature-store", "payments"}
    assert dep.link("link:payments") == "payments"
    with pytest.raises(ConfigError, match=r"no link 'replica-0' in the deployment \(links: "):
        dep.link("link:replica-0")
    caps = offered(dep)
    assert {"link:feature-store", "link:payments"} <= caps and "link:*" not in caps
    assert {c for c in caps if c.startswith("toxic:")} == {
        "toxic:latency", "toxic:bandwidth", "toxic:timeout"}  # fmt: skip
    with pytest.raises(ConfigError, match="a chaos-mesh links section and a toxiproxy_url: name"):
        _deployment(tmp_path, toxiproxy_url="http://127.0.0.1:8474")
    with pytest.raises(
        ConfigError, match=r"links\.kind: 'kubernetes' is not one of \['chaos-mesh'\]"
    ):
        _deployment(tmp_path, links={**SECTION, "kind": "kubernetes"})


def test_a_drill_adding_a_toxic_chaos_mesh_lacks_is_skipped_with_the_reason(
    tmp_path: Path,
) -> None:
    from chaos_rec.core.capabilities import describe, experiment_needs, missing

    provider = {"type": "python", "module": "chaos_rec.actions", "func": "add_toxic",
                "arguments": {"link": "link:feature-store", "toxic_type": "slicer"}}  # fmt: skip
    exp = {"method": [{"type": "action", "name": "slice", "provider": provider}]}
    needs = experiment_needs(exp)
    assert missing(needs, offered(_deployment(tmp_path))) == ["toxic:slicer"]
    assert describe("toxic:slicer", needs["toxic:slicer"]) == (
        "toxic:slicer (a link backend that adds slicer toxics; needed by add_toxic (slice))"
    )


def test_the_link_actions_report_what_chaos_mesh_observed_and_probe_no_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deployment(tmp_path)
    fake = FakeChaosMesh()
    monkeypatch.setattr(backends, "links", lambda _dep, _t: _links(fake))
    conf = {"chaos_rec_target": str(tmp_path / "dep.json")}
    ACTIVE.ledger.clear()
    out = actions.add_toxic("link:feature-store", "latency", {"latency": 300}, configuration=conf)
    assert out["observed"].startswith("NetworkChaos chaos-rec-feature-store-latency-downstream-")
    cut = actions.cut_link("link:feature-store", configuration=conf)
    assert cut["listen"] is None and "AllInjected" in cut["observed"]
    assert len(ACTIVE.ledger) == 2  # both undone by a rollback
    assert actions.rollback_all(configuration=conf)
    assert fake.objects == {}


def test_the_next_session_repairs_a_crashed_sessions_chaos_mesh_faults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaos_rec.core.guard import MARKER, DrillGuard

    dep = _deployment(tmp_path)
    fake = FakeChaosMesh()
    _links(fake).add_toxic("feature-store", "latency", {"latency": 100})  # then the session died
    state = tmp_path / "state"
    state.mkdir()
    (state / MARKER).write_text(json.dumps({"pid": 2**22 + 7, "drill": "feature_store_latency"}))
    monkeypatch.setattr(backends, "_chaos_mesh", lambda _dep: _links(fake))
    assert backends.guard_repairer(read_deployment_file(tmp_path / "dep.json")) is not None
    lines = DrillGuard(state, None, backends.guard_repairer(dep)).recover()
    lat = resource_name("feature-store", "latency_downstream")
    assert lines == [f"drill feature_store_latency (pid {2**22 + 7}) did not finish: repaired "
                     f"chaos mesh: deleted NetworkChaos {lat} (link feature-store)"]  # fmt: skip
    assert fake.objects == {} and not (state / MARKER).exists()
    assert backends.guard_repairer(_deployment(tmp_path, links={})) is None  # the guard's own


def test_halt_deletes_a_chaos_mesh_deployments_leftovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from chaos_rec.halt import _halt

    _deployment(tmp_path)
    fake = FakeChaosMesh()
    _links(fake).disable("feature-store")
    _links(fake).add_toxic("payments", "latency", {"latency": 10})
    monkeypatch.setattr(backends, "_chaos_mesh", lambda _dep: _links(fake))
    args = argparse.Namespace(state_dir=tmp_path / "state", drill_stack=tmp_path / "dep.json")
    assert _halt(args) == 0
    out = capsys.readouterr().out
    cut = resource_name("feature-store", "cut")
    assert f"chaos-rec halt: chaos mesh: deleted NetworkChaos {cut} (link feature-store)" in out
    assert "(link payments)" in out and fake.objects == {}


LINK_DRILLS = ["bandwidth_degradation", "feature_store_blackhole", "feature_store_latency",
               "feature_store_outage", "network_partition", "node_loss_during_slow_feature_store"]  # fmt: skip


@pytest.mark.parametrize("drill", LINK_DRILLS)
def test_the_example_offers_every_link_and_toxic_the_catalogues_link_drills_need(
    drill: str,
) -> None:
    from chaos_rec.core.capabilities import experiment_needs, missing

    root = Path(__file__).parents[3]
    dep = read_deployment_file(root / "deploy" / "k8s" / "deployment.chaos-mesh.json")
    spec = ChaosMeshSpec.from_dict(dep.backends["links"], "example")
    spec.check_allowed()
    exp = json.loads((root / "experiments" / f"{drill}.json").read_text())
    needs = {cap: why for cap, why in experiment_needs(exp).items() if ":" in cap}
    assert needs and missing(needs, offered(dep)) == []
    assert {cap[5:] for cap in needs if cap.startswith("link:")} <= set(spec.links)


def test_every_chaosk8s_function_the_backends_call_takes_the_arguments_passed() -> None:
    for method, (module, func, arguments) in CHAOSK8S_CALLS.items():
        activity = getattr(import_module(module), func)
        params = set(inspect.signature(activity).parameters)
        assert arguments <= params, (method, arguments - params)
        assert "secrets" in params, method  # how the pinned context reaches chaosk8s
    network = {name: CHAOSK8S_CALLS[name][1] for name in CHAOSK8S_CALLS if "network" in name}
    assert network == {"create_network_chaos": "create_custom_object",
                       "delete_network_chaos": "delete_network_fault",
                       "list_network_chaos": "get_network_faults"}  # fmt: skip
