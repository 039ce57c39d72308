"""Public surface of the extension: every activity is discoverable, typed and documented."""

from __future__ import annotations

import inspect
from pathlib import Path

import chaos_rec
from chaos_rec import actions, probes
from chaos_rec.controls import judge_journal
from chaos_rec.slo import SLOSpec, evaluate


def test_discover_lists_every_action_probe_and_control_hook_with_types_and_docs() -> None:
    found = chaos_rec.discover(discover_system=False)["activities"]
    names = {(a["type"], a["name"]) for a in found}
    assert names == {("action", n) for n in actions.__all__} | {
        ("probe", n) for n in probes.__all__
    } | {("control", "before_experiment_control"), ("control", "after_experiment_control")}
    controls = [a for a in found if a["type"] == "control"]
    assert {a["mod"] for a in controls} == {"chaos_rec.controls"}
    for act in found:
        assert act["doc"] and "\n" not in act["doc"].strip(), act["name"]
        for arg in act.get("arguments", []):
            # CTK hands a control its context, state and experiment: those are objects by design
            allowed = (
                ("attributes",)
                if act["type"] != "control"
                else ("context", "state", "configuration", "secrets")
            )
            assert arg["type"] != "object" or arg["name"] in allowed, (act["name"], arg)


def test_activities_take_keyword_only_configuration_and_secrets() -> None:
    for mod in (actions, probes):
        for name in mod.__all__:
            params = inspect.signature(getattr(mod, name)).parameters
            for p in ("configuration", "secrets"):
                assert params[p].kind is inspect.Parameter.KEYWORD_ONLY, (name, p)


def _journal(**over: object) -> dict[str, object]:
    j: dict[str, object] = {
        "status": "completed",
        "deviated": False,
        "steady_states": {"before": {"steady_state_met": True, "probes": []}, "after": None},
        "run": [],
        "rollbacks": [],
    }
    j.update(over)
    return j


def test_guard_catches_the_three_chaos_toolkit_traps_and_slo_misses() -> None:
    assert judge_journal(_journal(), None) == []
    broken = {
        "steady_state_met": False,
        "probes": [{"activity": {"name": "gateway-ready"}, "tolerance_met": False}],
    }
    (line,) = judge_journal(_journal(steady_states={"before": broken}), None)
    assert line.startswith("steady state was NOT met before the method, so no fault was injected")
    assert "probe gateway-ready returned" in line
    failed = {
        "status": "failed",
        "activity": {"type": "action", "name": "kill"},
        "exception": ["Traceback...\n", "chaos_rec.errors.FaultError: replica-0 still alive\n"],
    }
    (line,) = judge_journal(_journal(run=[failed]), None)
    assert line == "action kill failed: FaultError: replica-0 still alive"
    after = {"steady_state_met": False, "probes": []}
    assert judge_journal(_journal(steady_states={"before": None, "after": after}), None) == [
        "steady state deviated after the method: a probe was not within tolerance"
    ]
    spec = SLOSpec.parse({"min_quality_ratio": 0.9})
    verdict = evaluate(spec, [], [], {"measurements": [{"t": 0, "phase": "fault", "ratio": 0.5}]})
    (line,) = judge_journal(_journal(), verdict)
    assert line.startswith("SLO min_quality_ratio missed in phase fault")


def test_guard_judges_tolerances_of_probes_in_the_method() -> None:
    probe = {"type": "probe", "name": "p99", "tolerance": [0, 300]}
    ok = {"status": "succeeded", "activity": probe, "output": 120.0}
    bad = {"status": "succeeded", "activity": probe, "output": 512.5}
    untested = {"status": "succeeded", "activity": {"type": "probe", "name": "x"}, "output": 1}
    assert judge_journal(_journal(run=[ok, untested]), None) == []
    (line,) = judge_journal(_journal(run=[bad]), None)
    assert line == (
        "method probe p99 returned 512.5, outside tolerance [0, 300] "
        "(Chaos Toolkit does not judge it)"
    )


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    assert chaos_rec.__version__ == version("chaos-rec")
    assert chaos_rec.discover(discover_system=False)["extension"]["version"] == version("chaos-rec")


def test_a_dry_chaos_run_starts_no_stack_and_no_load(tmp_path: Path) -> None:
    from chaoslib.types import Dry

    from chaos_rec import controls
    from chaos_rec.core.run import ACTIVE

    conf = {"chaos_rec_state_dir": str(tmp_path / "no-stack"), "chaos_rec_load": True}
    for dry in (Dry.ACTIVITIES, Dry.ACTIONS):
        controls.before_experiment_control({"title": "t", "dry": dry}, configuration=conf)
        assert ACTIVE.run is None and not (tmp_path / "no-stack").exists()
        state: dict[str, object] = {"status": "completed"}
        controls.after_experiment_control({"title": "t"}, state, configuration=conf)
        assert "chaos_rec" not in state and state["status"] == "completed"
