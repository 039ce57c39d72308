"""Capabilities: what drills need, what deployments offer, and the refusals in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.backends.capabilities import offered
from chaos_rec.core.capabilities import (
    CAPABILITIES,
    describe,
    experiment_needs,
    missing,
    needs,
    unjudged,
)
from chaos_rec.core.target import read_deployment_file
from chaos_rec.errors import ConfigError

CATALOGUE = sorted(Path(__file__).parents[3].joinpath("experiments").glob("*.json"))


def _act(func: str, module: str = "chaos_rec.actions", **args: Any) -> dict[str, Any]:
    provider = {"type": "python", "module": module, "func": func, "arguments": args}
    return {"type": "action", "name": func.replace("_", "-"), "provider": provider}


def _exp(*method: dict[str, Any], **ext: Any) -> dict[str, Any]:
    return {"method": list(method), "extensions": [{"name": "chaos_rec", **ext}]}


def test_needs_come_from_activities_links_and_slo_keys() -> None:
    exp = _exp(
        _act("kill_replica", target="replica:0"),
        _act("add_toxic", link="feature-store"),
        _act("cut_link", link="link:replica-1"),
        _act("something_else", module="my.own"),
    )
    slo = {"fault": {"availability": 0.9, "max_fallback_ratio": 0.5}}
    assert needs(exp, slo) == {
        "processes": "kill_replica (kill-replica)",
        "link:feature-store": "add_toxic (add-toxic)",
        "toxic:latency": "add_toxic (add-toxic)",  # the default toxic_type
        "link:replica-1": "cut_link (cut-link)",
        "fallback-marker": "the SLO key max_fallback_ratio",
    }


def test_a_declaration_that_leaves_out_a_need_is_one_line() -> None:
    exp = _exp(_act("hang_replica", target="replica:0"), requires=["replicas"])
    with pytest.raises(ConfigError, match=r"^x\.json extensions\.chaos_rec\.requires: leaves out "
                       r"'processes', which hang_replica \(hang-replica\) needs$"):  # fmt: skip
        experiment_needs(exp, where="x.json")
    with pytest.raises(ConfigError, match="unknown capability 'gpus'"):
        experiment_needs(_exp(requires=["gpus"]))
    with pytest.raises(ConfigError, match="'processes' is needed by no SLO key"):
        experiment_needs(_exp(optional=["processes"]))


def test_optional_capabilities_are_no_hard_need_and_their_keys_are_noted_not_passed() -> None:
    slo = {"fault": {"availability": 0.9, "max_fallback_ratio": 0.5}, "max_recovery_s": 5}
    exp = _exp(_act("cut_link", link="feature-store"), optional=["fallback-marker"], slo=slo)
    assert experiment_needs(exp) == {"link:feature-store": "cut_link (cut-link)"}
    kept, notes = unjudged(slo, ["fallback-marker"])
    assert kept == {"fault": {"availability": 0.9}, "max_recovery_s": 5}
    assert notes == ["fault max_fallback_ratio not judged: the target lacks fallback-marker"]
    assert unjudged(slo, []) == (slo, [])


@pytest.mark.parametrize("path", CATALOGUE, ids=lambda p: p.stem)
def test_every_catalogue_drill_declares_what_it_needs(path: Path) -> None:
    exp = json.loads(path.read_text())
    (ext,) = [e for e in exp["extensions"] if e["name"] == "chaos_rec"]
    assert "requires" in ext  # declared, and the declaration covers every activity's need
    assert set(experiment_needs(exp)) == set(ext["requires"])
    derived = needs(exp, ext["slo"])
    assert set(derived) == set(ext["requires"]) | set(ext.get("optional", []))


def _deployment(tmp_path: Path, **extra: Any) -> Any:
    data = {"gateway_url": "http://127.0.0.1:9", **extra}
    path = tmp_path / "dep.json"
    path.write_text(json.dumps(data))
    return read_deployment_file(path)


OIP = {"kind": "oip-v2", "model": "m", "items_output": "ids"}
COMMANDS = {"kind": "command", "kill": "k {replica}", "hang": "h {replica}",
            "resume": "r {replica}", "ready": "ok {replica}"}  # fmt: skip


def test_a_bare_deployment_offers_only_what_its_api_can_tell(tmp_path: Path) -> None:
    assert offered(_deployment(tmp_path)) == {"fallback-marker"}  # the chaos-rec contract
    assert offered(_deployment(tmp_path, traffic=OIP)) == frozenset()


def test_a_deployment_offers_what_its_sections_make_possible(tmp_path: Path) -> None:
    holdout = tmp_path / "holdout.json"
    holdout.write_text("[]")
    dep = _deployment(
        tmp_path, traffic=OIP, processes=COMMANDS, toxiproxy_url="http://127.0.0.1:8474",
        links={"feature-store": {"listen": "127.0.0.1:1", "upstream": "127.0.0.1:2"}},
        replicas=[{"name": "r0", "http_url": "http://127.0.0.1:8000"}], holdout=str(holdout),
    )  # fmt: skip
    assert offered(dep) == {"processes", "replicas", "link:feature-store", "toxic:*", "holdout"}
    assert missing({"link:replica-0": "x", "processes": "y"}, offered(dep)) == ["link:replica-0"]
    anylink = _deployment(tmp_path, toxiproxy_url="http://127.0.0.1:8474")
    assert missing({"link:whatever": "x"}, offered(anylink)) == []  # the proxy's links, unlisted
    assert missing({"toxic:slicer": "x"}, offered(anylink)) == []  # a fault proxy adds them all
    assert missing({"toxic:slicer": "x"}, offered(_deployment(tmp_path))) == ["toxic:slicer"]


def test_describe_says_what_and_why() -> None:
    assert describe("processes", "kill_replica (k)") == (
        f"processes ({CAPABILITIES['processes']}; needed by kill_replica (k))"
    )
    assert "a fault-proxy link named 'feature-store'" in describe("link:feature-store", "x")
    assert describe("toxic:slicer", "add_toxic (a)") == (
        "toxic:slicer (a link backend that adds slicer toxics; needed by add_toxic (a))"
    )


def test_a_server_side_budget_needs_prometheus_and_its_metric_family(tmp_path: Path) -> None:
    ours = {"name": "errors", "query": "sum(cr_x)", "max": 1, "metrics": "chaos-rec"}
    triton = {"name": "failures", "query": "sum(nv_x)", "max": 1, "metrics": "triton"}
    slo = {"fault": {"availability": 0.9, "promql": [ours, triton]}}
    assert needs({}, slo) == {
        "prometheus": "the server-side budget errors",
        "metrics:chaos-rec": "the server-side budget errors",
        "metrics:triton": "the server-side budget failures",
    }
    kept, notes = unjudged(slo, ["metrics:chaos-rec"])
    assert kept == {"fault": {"availability": 0.9, "promql": [triton]}}
    assert notes == ["fault promql errors not judged: the target lacks metrics:chaos-rec"]
    dep = _deployment(tmp_path, prometheus_url="http://127.0.0.1:9090", metrics=["triton"])
    assert missing(needs({}, slo), offered(dep)) == ["metrics:chaos-rec"]


def test_the_control_leaves_other_metric_families_unjudged_on_the_reference_stack() -> None:
    from chaos_rec import controls
    from chaos_rec.core.target import Deployment

    exp = json.loads((CATALOGUE[0].parent / "network_partition.json").read_text())
    reference = Deployment("ref", "http://g", "http://t", None, (), links={"replica-0": {}},
                           state_dir=Path("/s"), prometheus_url="http://p")  # fmt: skip
    assert controls._lacking_optional(exp, reference) == ["metrics:haproxy"]
