"""Every action against the real reference stack (fault observed, rollback observed),
and the probes' figures against known injected conditions, under real Locust load."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos_rec import actions, probes
from chaos_rec.backends.net import proc_state
from chaos_rec.core.rundir import RunContext
from chaos_rec.core.target import Deployment
from chaos_rec.extconfig import ExtConfig
from chaos_rec.load import LoadRunner
from chaos_rec.targets import load_deployment
from tests.support.chaos_cli import chaos, py_activity, run_experiment
from tests.support.procs import free_port
from tests.support.stacks import cli, free_base_port

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = Path(os.environ.get("CHAOS_REC_BUNDLE", ROOT / "bundles" / "reference"))
NEEDED = ("serving.model_server", "serving.gateway", "chaos_rec.toxiproxy", "training")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not (BUNDLE / "manifest.json").exists(), reason=f"no bundle at {BUNDLE}"),
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in NEEDED), reason="stack parts missing"
    ),
]


@pytest.fixture(scope="module")
def ext_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real reference stack (2 replicas) on free ports; yields its state dir."""
    tmp = tmp_path_factory.mktemp("ext-stack")
    sdir = tmp / "state"
    cfg = tmp / "stack.toml"
    cfg.write_text(
        f'[stack]\nmodel_server_threads = 1\nbundle = "{BUNDLE}"\ngateway_deadline_ms = 2000\n'
    )
    base, tox = free_base_port(), free_port()
    res = cli("stack", "up", "--config", str(cfg), "--state-dir", str(sdir), "--replicas", "2",
               "--base-port", str(base), "--toxiproxy-port", str(tox), timeout=400)  # fmt: skip
    try:
        assert res.returncode == 0, res.stderr
        yield sdir
    finally:
        cli("stack", "down", "--state-dir", str(sdir), timeout=400)


@pytest.fixture
def conf(ext_stack: Path, tmp_path: Path) -> dict[str, Any]:
    """Chaos Toolkit configuration naming the stack and a fresh run dir."""
    return {"chaos_rec_state_dir": str(ext_stack), "chaos_rec_run_dir": str(tmp_path / "run")}


@pytest.fixture
def dep(conf: dict[str, Any]) -> Deployment:
    return load_deployment(ExtConfig.from_ctk(conf))


@pytest.fixture
def load(conf: dict[str, Any], dep: Deployment) -> Iterator[LoadRunner]:
    """Real Locust load (20 rps) for the test, into the test's run dir."""
    runner = LoadRunner(dep.gateway_url, conf["chaos_rec_run_dir"], rps=20, users=6, seed=3,
                        holdout=dep.holdout)  # fmt: skip
    with runner:
        time.sleep(4)
        yield runner
    actions.rollback_all(configuration=conf)


def test_latency_toxic_raises_p50_by_its_latency_and_removal_recovers(
    conf: dict[str, Any], load: LoadRunner
) -> None:
    before = probes.latency_ms(50, window_s=3, configuration=conf)
    for link in ("link:replica-0", "link:replica-1"):
        out = actions.add_toxic(link, "latency", {"latency": 200}, configuration=conf)
        assert out["toxic"]["attributes"]["latency"] == 200
    time.sleep(4)
    during = probes.latency_ms(50, window_s=3, configuration=conf)
    assert RunContext(conf["chaos_rec_run_dir"]).current_phase() == "fault"
    print(f"p50 before {before:.1f} ms, with 200 ms toxic {during:.1f} ms")
    assert during - before == pytest.approx(200, abs=80)
    for link in ("link:replica-0", "link:replica-1"):
        assert actions.remove_toxic(link, configuration=conf)["toxics_left"] == []
    rec = probes.time_to_recover(timeout_s=20, window_s=3, max_p99_ms=150, configuration=conf)
    assert rec["recovered"], rec
    assert probes.latency_ms(50, window_s=2, configuration=conf) < before + 60


def test_cut_feature_store_serves_fallbacks_and_restore_reconnects(
    conf: dict[str, Any], dep: Deployment, load: LoadRunner
) -> None:
    out = actions.cut_link("link:feature-store", configuration=conf)
    assert out["refused"] is True
    time.sleep(4)
    assert probes.fallback_ratio(window_s=3, configuration=conf) > 0.3
    assert probes.availability(window_s=3, configuration=conf) >= 0.99  # never a 5xx for Redis
    assert actions.restore_link("link:feature-store", configuration=conf)["refused"] is False
    time.sleep(5)
    assert probes.fallback_ratio(window_s=2, configuration=conf) < 0.2


def test_hang_then_resume_replica(conf: dict[str, Any], dep: Deployment) -> None:
    out = actions.hang_replica("replica:1", configuration=conf)
    assert proc_state(out["pid"]) == "T"
    assert probes.replica_ready("replica:1", configuration=conf) is False
    actions.resume_replica("replica:1", configuration=conf)
    assert proc_state(out["pid"]) in ("R", "S")
    assert probes.replica_ready("replica:1", configuration=conf) is True


def test_kill_replica_then_supervisor_restores_it(conf: dict[str, Any]) -> None:
    out = actions.kill_replica("replica:0", configuration=conf)
    assert proc_state(out["killed_pid"]) in ("X", "Z")
    assert probes.replicas_ready(configuration=conf) <= 1
    back = actions.wait_replica_restored("replica:0", timeout_s=120, configuration=conf)
    assert back["pid"] != out["killed_pid"]
    assert probes.replicas_ready(configuration=conf) == 2


def test_resilience_switches_off_and_back_on(conf: dict[str, Any]) -> None:
    off = actions.set_resilience({"retries": False}, "gateway", configuration=conf)
    assert off["gateway"]["retries"] is False
    on = actions.reset_resilience("gateway", configuration=conf)
    assert on["gateway"]["retries"] is True
    off = actions.set_resilience({"breaker": False}, "replicas", configuration=conf)
    assert all(v["breaker"] is False for v in off.values()) and len(off) == 2
    actions.reset_resilience("replicas", configuration=conf)
    assert all(
        v is True
        for v in actions.reset_resilience("replicas", configuration=conf)["replica-0"].values()
    )


def test_corrupt_bundle_is_refused_and_reference_bundle_accepted(conf: dict[str, Any]) -> None:
    out = actions.push_corrupt_bundle("replica:0", configuration=conf)
    assert out["status"] == 409 and out["accepted"] is False
    assert out["model_version_after"] == out["model_version_before"]
    assert "checksum" in json.dumps(out["response"])
    back = actions.restore_bundle("replica:0", configuration=conf)
    assert back["model_version"] == out["model_version_before"]


def test_redis_data_loss_then_rematerialise(conf: dict[str, Any]) -> None:
    assert probes.feature_store_consistent(configuration=conf) is True
    out = actions.restart_redis_empty(configuration=conf)
    assert out["keys_before"] > 0 and out["keys_after"] == 0
    assert probes.feature_store_consistent(configuration=conf) is False
    back = actions.rematerialize_features(configuration=conf)
    assert back["keys"] >= out["keys_before"] - 1
    assert probes.feature_store_consistent(configuration=conf) is True


def test_load_spike_multiplies_the_rate(conf: dict[str, Any], load: LoadRunner) -> None:
    actions.spike_load(2.5, configuration=conf)
    time.sleep(3)
    rows = RunContext(conf["chaos_rec_run_dir"]).window(2)
    assert rows and all(float(dict(r)["level"]) == 2.5 for r in rows)
    actions.end_spike(configuration=conf)
    assert RunContext(conf["chaos_rec_run_dir"]).current_phase() == "recovery"


def test_quality_ratio_is_one_when_healthy_and_drops_without_features(conf: dict[str, Any]) -> None:
    base = probes.quality_baseline(sample=150, configuration=conf)
    assert base["answered"] == base["n"] == 150
    assert probes.quality_ratio(configuration=conf) == pytest.approx(1.0, abs=0.02)
    # known degradation: no feature store and no feature cache -> popularity fallbacks
    actions.set_resilience({"cache": False}, "replicas", configuration=conf)
    actions.cut_link("link:feature-store", configuration=conf)
    try:
        degraded = probes.quality_ratio(configuration=conf)
    finally:
        actions.rollback_all(configuration=conf)
    saved = RunContext(conf["chaos_rec_run_dir"]).read_json("quality.json")
    print("quality ratio without features:", degraded, saved["measurements"][-1]["tiers"])
    assert degraded < 0.7
    assert saved["measurements"][-1]["phase"] == "fault"
    # Healed: the link is back and the cache on, but each replica's breaker probes the store
    # every 2 s, so the first replay after the rollback may still meet fallbacks; quality must
    # be back within 20 s.
    deadline = time.monotonic() + 20.0
    healed = probes.quality_ratio(configuration=conf)
    while healed < 0.95 and time.monotonic() < deadline:
        time.sleep(1.0)
        healed = probes.quality_ratio(configuration=conf)
    assert healed == pytest.approx(1.0, abs=0.05)


# ---- a real `chaos run` end to end (stock Chaos Toolkit CLI + the chaos-rec control) -------


def _experiment(sdir: Path, slo: dict[str, Any], **over: Any) -> dict[str, Any]:
    slow = [
        py_activity("action", f"slow-{i}", "chaos_rec.actions", "add_toxic", link=f"link:replica-{i}",
            toxic_type="latency", attributes={"latency": 100})
        for i in (0, 1)
    ]  # fmt: skip
    slow[-1]["pauses"] = {"after": 4}
    heal = [py_activity("action", f"heal-{i}", "chaos_rec.actions", "remove_toxic", link=f"link:replica-{i}")
            for i in (0, 1)]  # fmt: skip
    exp: dict[str, Any] = {
        "title": "Replica links slow down by 100 ms",
        "description": "Latency toxic on every gateway->replica link; the SLOs must hold.",
        "configuration": {
            "chaos_rec_state_dir": {"type": "env", "key": "EXT_STATE_DIR"},
            "chaos_rec_load_rps": 15, "chaos_rec_load_users": 5, "chaos_rec_warmup_s": 3,
        },
        "controls": [{"name": "chaos-rec", "provider": {"type": "python", "module": "chaos_rec.controls"}}],
        "extensions": [{"name": "chaos_rec", "slo": slo}],
        "steady-state-hypothesis": {
            "title": "gateway ready and SLOs met",
            "probes": [
                {**py_activity("probe", "gateway-ready", "chaos_rec.probes", "gateway_ready"), "tolerance": True},
                {**py_activity("probe", "slo-met", "chaos_rec.probes", "slo_met"), "tolerance": True},
            ],
        },
        "method": [
            *slow,
            py_activity("probe", "p50-under-fault", "chaos_rec.probes", "latency_ms", percentile=50, window_s=3),
            *heal,
            py_activity("probe", "recovered", "chaos_rec.probes", "time_to_recover", timeout_s=15, window_s=3),
        ],
        "rollbacks": [py_activity("action", f"clear-{i}", "chaos_rec.actions", "clear_link", link=f"link:replica-{i}")
                      for i in (0, 1)],
    }  # fmt: skip
    exp.update(over)
    return exp


GOOD_SLO = {
    "steady": {"p99_ms": 2000, "availability": 0.99},
    "fault": {"p50_ms": 1000, "availability": 0.99},
    "recovery": {"availability": 0.99},
    "max_recovery_s": 15,
    "window_s": 3,
}


def _run(exp: dict[str, Any], sdir: Path, tmp: Path) -> tuple[int, dict[str, Any], str]:
    return run_experiment(exp, tmp, env={"EXT_STATE_DIR": str(sdir)})


def test_chaos_validate_and_run_a_passing_experiment(ext_stack: Path, tmp_path: Path) -> None:
    exp = _experiment(ext_stack, GOOD_SLO)
    (tmp_path / "exp.json").write_text(json.dumps(exp))
    env = {"EXT_STATE_DIR": str(ext_stack)}
    assert chaos("validate", str(tmp_path / "exp.json"), cwd=tmp_path, env=env).returncode == 0
    from chaos_rec.toxiproxy.client import ToxiproxyClient

    url = load_deployment(ExtConfig.from_ctk({"chaos_rec_state_dir": str(ext_stack)})).toxiproxy_url
    assert url  # a crashed earlier run left a black hole on the feature store:
    ToxiproxyClient(url).add_toxic("feature-store", "timeout", {"timeout": 0}, name="leftover")
    rc, journal, out = _run(exp, ext_stack, tmp_path)
    assert rc == 0, out
    assert "undid leftovers of an earlier run" in out
    verdict = journal["chaos_rec"]
    assert journal["status"] == "completed" and verdict["passed"] is True
    run_dir = Path(verdict["run_dir"])
    saved = json.loads((run_dir / "slo_verdict.json").read_text())
    assert {(r["slo"], r["phase"]) for r in saved["slo"]["results"]} >= {
        ("p50_ms", "fault"),
        ("availability", "recovery"),
        ("max_recovery_s", "recovery"),
    }
    fault_p50 = next(r["observed"] for r in saved["slo"]["results"] if r["slo"] == "p50_ms")
    assert fault_p50 == pytest.approx(100, abs=60)  # the 100 ms toxic, seen by Locust
    rows = [json.loads(line) for line in (run_dir / "timeline.jsonl").read_text().splitlines()]
    assert {"steady", "fault", "recovery"} <= {r["phase"] for r in rows}
    tox = load_deployment(ExtConfig.from_ctk({"chaos_rec_state_dir": str(ext_stack)}))
    import httpx

    proxies = httpx.get(f"{tox.toxiproxy_url}/proxies", timeout=5).json()
    assert all(p["toxics"] == [] and p["enabled"] for p in proxies.values())


def test_chaos_run_with_a_missed_slo_exits_1_and_names_it(ext_stack: Path, tmp_path: Path) -> None:
    slo = {**GOOD_SLO, "fault": {"p50_ms": 40, "availability": 0.99}}
    rc, journal, out = _run(_experiment(ext_stack, slo), ext_stack, tmp_path)
    assert rc == 1
    assert journal["status"] == "failed" and journal["deviated"] is True
    problems = journal["chaos_rec"]["problems"]
    # slo_met in the after-hypothesis
    assert any(p.startswith("steady state deviated after the method: probe ") for p in problems)
    (line,) = [p for p in problems if p.startswith("SLO ")]
    assert line.startswith("SLO p50_ms missed in phase fault (window ")
    assert line.endswith(" ms > budget 40 ms")
    assert line in out


def test_chaos_run_traps_broken_steady_state_and_failed_action(
    ext_stack: Path, tmp_path: Path
) -> None:
    exp = _experiment(ext_stack, GOOD_SLO)
    exp["steady-state-hypothesis"]["probes"] = [
        {
            **py_activity("probe", "three-replicas", "chaos_rec.probes", "replicas_ready"),
            "tolerance": 3,
        }
    ]
    rc, journal, _ = _run(exp, ext_stack, tmp_path)
    assert rc == 1 and journal["status"] == "failed"
    first = journal["chaos_rec"]["problems"][0]
    assert first.startswith("steady state was NOT met before the method, so no fault was injected")
    assert "probe three-replicas returned 2, outside tolerance 3" in first
    exp = _experiment(ext_stack, GOOD_SLO)
    exp["method"] = [
        py_activity("action", "bad-link", "chaos_rec.actions", "add_toxic", link="link:nope")
    ]
    (tmp_path / "b").mkdir()
    rc, journal, _ = _run(exp, ext_stack, tmp_path / "b")
    assert rc == 1
    (line,) = [p for p in journal["chaos_rec"]["problems"] if "bad-link" in p]
    assert "no link 'nope' in the deployment" in line


def test_control_starts_a_missing_stack_and_stops_only_what_it_started(tmp_path: Path) -> None:
    sdir = tmp_path / "own-state"
    cfg = tmp_path / "mini.toml"
    cfg.write_text(
        f"[stack]\nreplicas = 0\ngateway = false\ntoxiproxy = false\nsetup = false\nbase_port = {free_base_port()}\n"
    )
    exp = {
        "title": "control brings the stack up", "description": "no load, no fault",
        "configuration": {"chaos_rec_state_dir": str(sdir), "chaos_rec_stack_config": str(cfg),
                          "chaos_rec_load": False, "chaos_rec_target": "reference"},
        "controls": [{"name": "chaos-rec", "provider": {"type": "python", "module": "chaos_rec.controls"}}],
        "method": [py_activity("action", "mark", "chaos_rec.actions", "mark_phase", phase="fault")],
    }  # fmt: skip
    rc, journal, out = _run(exp, sdir, tmp_path)
    assert rc == 0, out
    assert "starting the reference stack" in out
    assert not (sdir / "stack.json").exists()  # taken down again: the control had started it
    phases = (Path(journal["chaos_rec"]["run_dir"]) / "phases.jsonl").read_text()
    assert '"phase":"steady"' in phases and '"phase":"fault"' in phases


def test_safeguard_aborts_and_rolls_back_when_availability_collapses(
    ext_stack: Path, tmp_path: Path
) -> None:
    exp = _experiment(ext_stack, GOOD_SLO)
    exp["configuration"].update(
        {"chaos_rec_safeguard_availability": 0.9, "chaos_rec_safeguard_s": 3}
    )
    exp["steady-state-hypothesis"]["probes"] = exp["steady-state-hypothesis"]["probes"][:1]
    hang = [py_activity("action", f"hang-{i}", "chaos_rec.actions", "hang_replica", target=f"replica:{i}")
            for i in (0, 1)]  # fmt: skip
    hang[-1]["pauses"] = {"after": 60}
    exp["method"] = hang
    exp["rollbacks"] = []
    t0 = time.monotonic()
    rc, journal, out = _run(exp, ext_stack, tmp_path)
    assert rc == 1, out
    assert time.monotonic() - t0 < 50  # aborted long before the 60 s pause ended
    assert journal["status"] == "interrupted"
    (line,) = [p for p in journal["chaos_rec"]["problems"] if p.startswith("safeguard")]
    assert "availability" in line and "< floor 0.9" in line
    assert (Path(journal["chaos_rec"]["run_dir"]) / "safeguard.json").exists()
    conf = {"chaos_rec_state_dir": str(ext_stack)}
    dep = load_deployment(ExtConfig.from_ctk(conf))
    assert all(proc_state(r.pid or 0) in ("R", "S") for r in dep.replicas)  # resumed by the control
    assert probes.replicas_ready(configuration=conf) == 2


def test_fail_fast_stops_at_the_end_of_the_missed_phase_and_rolls_back(
    ext_stack: Path, tmp_path: Path
) -> None:
    exp = _experiment(ext_stack, {**GOOD_SLO, "fault": {"p50_ms": 40, "availability": 0.99}})
    exp["configuration"]["chaos_rec_fail_fast"] = True
    exp["method"][-1]["pauses"] = {"before": 40}  # the recovery a fail-fast run does not wait for
    t0 = time.monotonic()
    rc, journal, out = _run(exp, ext_stack, tmp_path)
    assert rc == 1 and journal["status"] == "interrupted", out
    assert time.monotonic() - t0 < 35, out  # stopped long before the 40 s pause ended
    problems = journal["chaos_rec"]["problems"]
    assert any(p.startswith("fail-fast: phase fault missed its SLOs (p50_ms ") for p in problems)
    assert any(p.startswith("SLO p50_ms missed in phase fault (window ") for p in problems)
    results = journal["chaos_rec"]["slo"]["results"]
    assert {r["phase"] for r in results} == {"steady", "fault"}  # recovery is not judged
    url = load_deployment(ExtConfig.from_ctk({"chaos_rec_state_dir": str(ext_stack)})).toxiproxy_url
    import httpx

    proxies = httpx.get(f"{url}/proxies", timeout=5).json()
    assert all(p["toxics"] == [] and p["enabled"] for p in proxies.values())
