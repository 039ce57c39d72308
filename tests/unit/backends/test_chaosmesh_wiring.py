"""The chaos-mesh links backend wired in: the deployment file, capabilities, the link actions,
the drill guard's repair of a crashed session, ``chaos-rec halt``, and the example file — all
against the fake of its seam (``chaosmesh_fake.py``); no cluster was reachable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos_rec import actions, backends
from chaos_rec.backends.capabilities import offered
from chaos_rec.backends.chaosmesh_spec import ChaosMeshSpec, resource_name
from chaos_rec.core.run import ACTIVE
from chaos_rec.core.target import read_deployment_file
from chaos_rec.errors import ConfigError
from tests.unit.backends.chaosmesh_fake import SECTION, FakeChaosMesh, fake_links, write_deployment


def test_a_deployment_file_names_the_links_and_offers_them(tmp_path: Path) -> None:
    dep = write_deployment(tmp_path)
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
        write_deployment(tmp_path, toxiproxy_url="http://127.0.0.1:8474")
    with pytest.raises(
        ConfigError, match=r"links\.kind: 'kubernetes' is not one of \['chaos-mesh'\]"
    ):
        write_deployment(tmp_path, links={**SECTION, "kind": "kubernetes"})


def test_a_drill_adding_a_toxic_chaos_mesh_lacks_is_skipped_with_the_reason(
    tmp_path: Path,
) -> None:
    from chaos_rec.core.capabilities import describe, experiment_needs, missing

    provider = {"type": "python", "module": "chaos_rec.actions", "func": "add_toxic",
                "arguments": {"link": "link:feature-store", "toxic_type": "slicer"}}  # fmt: skip
    exp = {"method": [{"type": "action", "name": "slice", "provider": provider}]}
    needs = experiment_needs(exp)
    assert missing(needs, offered(write_deployment(tmp_path))) == ["toxic:slicer"]
    assert describe("toxic:slicer", needs["toxic:slicer"]) == (
        "toxic:slicer (a link backend that adds slicer toxics; needed by add_toxic (slice))"
    )


def test_the_link_actions_report_what_chaos_mesh_observed_and_probe_no_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_deployment(tmp_path)
    fake = FakeChaosMesh()
    monkeypatch.setattr(backends, "links", lambda _dep, _t: fake_links(fake))
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

    dep = write_deployment(tmp_path)
    fake = FakeChaosMesh()
    fake_links(fake).add_toxic(
        "feature-store", "latency", {"latency": 100}
    )  # then the session died
    state = tmp_path / "state"
    state.mkdir()
    (state / MARKER).write_text(json.dumps({"pid": 2**22 + 7, "drill": "feature_store_latency"}))
    monkeypatch.setattr(backends, "_chaos_mesh", lambda _dep: fake_links(fake))
    assert backends.guard_repairer(read_deployment_file(tmp_path / "dep.json")) is not None
    lines = DrillGuard(state, None, backends.guard_repairer(dep)).recover()
    lat = resource_name("feature-store", "latency_downstream")
    assert lines == [f"drill feature_store_latency (pid {2**22 + 7}) did not finish: repaired "
                     f"chaos mesh: deleted NetworkChaos {lat} (link feature-store)"]  # fmt: skip
    assert fake.objects == {} and not (state / MARKER).exists()
    assert backends.guard_repairer(write_deployment(tmp_path, links={})) is None  # the guard's own


def test_halt_deletes_a_chaos_mesh_deployments_leftovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from chaos_rec.halt import _halt

    write_deployment(tmp_path)
    fake = FakeChaosMesh()
    fake_links(fake).disable("feature-store")
    fake_links(fake).add_toxic("payments", "latency", {"latency": 10})
    monkeypatch.setattr(backends, "_chaos_mesh", lambda _dep: fake_links(fake))
    args = argparse.Namespace(state_dir=tmp_path / "state", drill_stack=tmp_path / "dep.json")
    assert _halt(args) == 0
    out = capsys.readouterr().out
    cut = resource_name("feature-store", None)
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
