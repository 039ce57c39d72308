"""The chaos-mesh links backend against a fake at its one seam, the NetworkChaosApi Protocol.

The fake (``chaosmesh_fake.py``) plays the API server and Chaos Mesh; the tests see exactly
which NetworkChaos objects would have reached a cluster, field by field — and that nothing did
when a context or namespace is refused. No cluster was reachable where these were written.
"""

from __future__ import annotations

import inspect
from importlib import import_module
from typing import Any

import pytest

from chaos_rec.backends.chaosmesh import ChaosMeshLinks
from chaos_rec.backends.chaosmesh_spec import ChaosMeshSpec, resource_name
from chaos_rec.backends.kube import CHAOSK8S_CALLS
from chaos_rec.errors import CapabilityError, ConfigError, FaultError
from tests.unit.backends.chaosmesh_fake import (
    MODEL_SERVERS,
    NS,
    OURS,
    REDIS,
    SECTION,
    FakeChaosMesh,
    fake_links,
)


def test_a_latency_toxic_is_a_delay_from_the_source_pods_to_the_target_pods() -> None:
    fake = FakeChaosMesh()
    links = fake_links(fake)
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
    fake_links(fake).add_toxic("feature-store", "bandwidth", {"rate": 1}, name="slow")
    spec = fake.objects[resource_name("feature-store", "slow")]["spec"]
    assert spec["action"] == "bandwidth"  # chaosk8s 0.39's set_bandwidth writes "bandwdith"
    assert spec["bandwidth"] == {"rate": "1kbps", "limit": 20 * 1024 * 1024, "buffer": 1600}
    assert spec["direction"] == "to" and spec["target"] == REDIS


def test_a_blackhole_timeout_and_a_cut_are_partitions() -> None:
    fake = FakeChaosMesh()
    links = fake_links(fake)
    links.add_toxic("feature-store", "timeout", {"timeout": 0})
    state = links.disable("feature-store")
    timeout = fake.objects[resource_name("feature-store", "timeout_downstream")]
    cut = fake.objects[resource_name("feature-store", None)]
    assert timeout["spec"] == {"action": "partition", **MODEL_SERVERS, "direction": "to",
                               "target": REDIS}  # fmt: skip
    assert cut["spec"] == timeout["spec"]
    assert cut["metadata"]["labels"]["chaos-rec.dev/fault"] == "cut"
    assert resource_name("feature-store", "cut") != resource_name("feature-store", None)
    assert state["upstream"] == "pods app.kubernetes.io/name=redis in namespace recommender"
    assert state["enabled"] is False and state["listen"] is None  # no address to probe
    assert [t["name"] for t in state["toxics"]] == ["timeout_downstream"]  # the cut is no toxic


def test_an_external_target_is_external_targets_with_direction_to() -> None:
    fake = FakeChaosMesh()
    fake_links(fake).add_toxic("payments", "latency", {"latency": 80})
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
        ("latency", {"latncy": 100}, 1.0, "toxic latency has no attribute 'latncy'"),
        ("latency", {"latency": -1}, 1.0, "toxic attribute latency: must be a whole number >= 0"),
    ],
)  # fmt: skip
def test_a_toxic_without_a_chaos_mesh_equivalent_or_a_bad_one_is_refused_before_any_object(
    toxic: str, attributes: dict[str, Any], toxicity: float, says: str
) -> None:
    fake = FakeChaosMesh()
    with pytest.raises((CapabilityError, ConfigError)) as info:
        fake_links(fake).add_toxic("feature-store", toxic, attributes, toxicity=toxicity)
    assert isinstance(info.value, CapabilityError) == ("equivalent" in says or "toxicity" in says)
    assert str(info.value).startswith(says) and "\n" not in str(info.value)
    assert fake.made("create") == []


def test_undo_removes_exactly_what_was_created_and_waits_until_it_is_gone() -> None:
    foreign = {"metadata": {"name": "someone-elses", "labels": {"team": "sre"}}, "spec": {}}
    fake = FakeChaosMesh(objects={"someone-elses": foreign}, gone_after=3)
    links = fake_links(fake)
    links.add_toxic("feature-store", "latency", {"latency": 100})
    links.add_toxic("feature-store", "bandwidth", {"rate": 5})
    links.disable("feature-store")
    links.remove_toxic("feature-store", "latency_downstream")
    assert fake.made("delete") == [resource_name("feature-store", "latency_downstream")]
    assert resource_name("feature-store", "latency_downstream") not in fake.objects  # gone, waited
    assert links.enable("feature-store")["enabled"] is True
    assert fake.made("delete")[1:] == [resource_name("feature-store", None)]
    left = sorted(fake.objects)
    assert left == sorted(["someone-elses", resource_name("feature-store", "bandwidth_downstream")])
    links.remove_toxic("feature-store", "latency_downstream")  # already gone: no call
    assert len(fake.made("delete")) == 2


def test_repair_deletes_every_labelled_leftover_and_nothing_else() -> None:
    fake = FakeChaosMesh()
    crashed = fake_links(fake)
    crashed.add_toxic("feature-store", "latency", {"latency": 100})
    crashed.disable("payments")
    fake.objects["someone-elses"] = {"metadata": {"name": "someone-elses"}, "spec": {}}
    done = fake_links(fake).reset()  # a new session: it knows nothing but the labels
    lat, cut = (
        resource_name("feature-store", "latency_downstream"),
        resource_name("payments", None),
    )
    assert sorted(done) == sorted([f"chaos mesh: deleted NetworkChaos {lat} (link feature-store)",
                                   f"chaos mesh: deleted NetworkChaos {cut} (link payments)"])  # fmt: skip
    assert sorted(fake.made("delete")) == sorted([lat, cut])
    assert list(fake.objects) == ["someone-elses"]
    assert fake_links(fake).reset() == []


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
    built: list[ChaosMeshSpec] = []

    def build(spec: ChaosMeshSpec) -> FakeChaosMesh:
        built.append(spec)
        return FakeChaosMesh()

    spec = ChaosMeshSpec.from_dict({**SECTION, **over}, "dep.json")
    with pytest.raises(FaultError) as info:
        ChaosMeshLinks(spec, build)
    assert str(info.value).startswith(says)
    assert built == []  # no client was even built


def test_a_fault_not_injected_by_the_deadline_is_deleted_and_reported_in_one_line() -> None:
    fake = FakeChaosMesh(inject_after=None)
    links = fake_links(fake, inject_timeout_s=0.05)
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


def _status(selected: str, all_injected: str, phase: str = "Run") -> dict[str, Any]:
    conditions = [{"type": "Selected", "status": selected},
                  {"type": "AllInjected", "status": all_injected}]  # fmt: skip
    return {"status": {"conditions": conditions, "experiment": {"desiredPhase": phase}}}


def test_in_effect_means_selected_and_all_injected_while_running() -> None:
    from chaos_rec.backends.chaosmesh import condition_summary, injected

    assert injected(_status("True", "True"))
    assert not injected(_status("True", "False"))  # some pods not injected yet
    assert not injected(_status("False", "True"))  # nothing selected: AllInjected is vacuous
    assert not injected(_status("True", "True", phase="Stop"))  # paused or being recovered
    assert not injected({"metadata": {}})
    assert condition_summary(_status("True", "False")) == "Selected=True, AllInjected=False"
    assert condition_summary({}).startswith("no status from Chaos Mesh yet")
    assert condition_summary(None) == "the object is gone"


def test_a_failed_delete_counts_as_undone_only_when_the_object_is_gone() -> None:
    fake = FakeChaosMesh()
    links = fake_links(fake)
    links.disable("feature-store")
    fake.delete_fails = "gone"
    assert links.enable("feature-store")["enabled"] is True
    links.add_toxic("feature-store", "latency", {"latency": 100})
    fake.delete_fails = "Forbidden"
    with pytest.raises(FaultError, match="delete_network_fault failed: Forbidden"):
        links.remove_toxic("feature-store", "latency_downstream")
    slow = fake_links(
        FakeChaosMesh(inject_after=None, delete_fails="Forbidden"), inject_timeout_s=0.02
    )
    with pytest.raises(FaultError, match=r"within 0\.02s \(.*\); deleting it failed too: "):
        slow.add_toxic("feature-store", "latency", {"latency": 100})


def test_a_second_toxic_of_the_same_name_is_refused_and_the_first_kept() -> None:
    fake = FakeChaosMesh()
    links = fake_links(fake)
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


def test_the_chaosk8s_client_passes_the_pinned_context_and_reads_the_list_items(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chaos_rec.backends.chaosmesh_spec import network_chaos
    from chaos_rec.backends.kube import Chaosk8sApi

    seen: list[tuple[str, dict[str, Any]]] = []

    def recorder(func: str, answer: Any) -> Any:
        def activity(**kwargs: Any) -> Any:
            seen.append((func, kwargs))
            return answer

        return activity

    listed = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaosList",
              "items": [{"metadata": {"name": "x"}}]}  # fmt: skip
    for method, answer in (("create_network_chaos", {"metadata": {"name": "x"}}),
                           ("delete_network_chaos", {}), ("list_network_chaos", listed)):  # fmt: skip
        module, func, _ = CHAOSK8S_CALLS[method]
        monkeypatch.setattr(import_module(module), func, recorder(func, answer))
    api = Chaosk8sApi.__new__(Chaosk8sApi)  # past the kubeconfig checks (tested elsewhere)
    api.context, api._secrets = "gpu-staging", {"KUBERNETES_CONTEXT": "gpu-staging"}
    spec = ChaosMeshSpec.from_dict(SECTION, "dep.json")
    body = network_chaos(spec.links["feature-store"], NS)
    assert api.create_network_chaos(body, ns=NS) == {"metadata": {"name": "x"}}
    api.delete_network_chaos("x", ns=NS)
    assert api.list_network_chaos(ns=NS) == [{"metadata": {"name": "x"}}]
    pinned = {"secrets": {"KUBERNETES_CONTEXT": "gpu-staging"}}
    assert seen == [
        ("create_custom_object", {"group": "chaos-mesh.org", "version": "v1alpha1",
                                  "plural": "networkchaos", "ns": NS, "resource": body, **pinned}),
        ("delete_network_fault", {"name": "x", "ns": NS, **pinned}),
        ("get_network_faults", {"ns": NS, **pinned}),
    ]  # fmt: skip
