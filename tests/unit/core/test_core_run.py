"""The drill core with fakes at every seam: each judge rule and each rollback path.

No socket, no process: the traffic, the reference-stack runtime and the repair are fakes, the
run dir is a tmp folder. These run in well under a second.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.core.guard import MARKER, DrillGuard
from chaos_rec.core.judge import Judgement, judge_run
from chaos_rec.core.lease import StackLease
from chaos_rec.core.run import ACTIVE, DrillRun, RunPlan
from chaos_rec.core.rundir import RunContext
from chaos_rec.core.seams import Answer
from chaos_rec.errors import FaultError, LoadError
from chaos_rec.slo import SLOResult, SLOSpec
from chaos_rec.slo.metrics import SecondStats

T0 = 1_800_000_000
SLO = {"fault": {"p99_ms": 400, "availability": 0.95}, "window_s": 2}


def _rows(ms_in_fault: float) -> list[dict[str, Any]]:
    rows = []
    for i in range(8):
        phase = "steady" if i < 3 else ("fault" if i < 6 else "recovery")
        stats = SecondStats(T0 + i)
        for _ in range(20):
            stats.add(
                ms_in_fault if phase == "fault" else 20.0, 200, "none", failed=False, known=True
            )
        rows.append(stats.row(phase))
    return rows


def _ctx(tmp_path: Path, ms_in_fault: float = 30.0) -> RunContext:
    ctx = RunContext(tmp_path / "run")
    ctx.append_timeline(_rows(ms_in_fault))
    for i, phase in ((0, "steady"), (3, "fault"), (6, "recovery")):
        ctx.mark(phase, "test", t=T0 + i)
    return ctx


def _journal(**over: Any) -> dict[str, Any]:
    journal: dict[str, Any] = {
        "status": "completed",
        "deviated": False,
        "experiment": {"steady-state-hypothesis": {"probes": [{"name": "ready"}]}},
        "steady_states": {"before": {"steady_state_met": True, "probes": []}, "after": None},
        "run": [],
        "rollbacks": [],
    }
    journal.update(over)
    return journal


class FakeLoad:
    def __init__(self) -> None:
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


class FakeTraffic:
    """Answers every user with the same items; records the load it was asked for."""

    def __init__(self, fail_load: bool = False) -> None:
        self.fail_load = fail_load
        self.loads: list[FakeLoad] = []
        self.asked: list[int] = []

    def start_load(
        self,
        run_dir: Path,
        *,
        rps: float,
        users: int,
        seed: int,
        timeout_s: float,
        workers: int = 0,
    ) -> FakeLoad:
        self.workers = workers
        if self.fail_load:
            raise LoadError("locust is not installed")
        self.loads.append(FakeLoad())
        return self.loads[-1]

    def recommend(self, user_id: int, k: int, query: str | None = None) -> Answer | None:
        self.asked.append(user_id)
        return Answer(tuple(range(1, k + 1)))

    def close(self) -> None:
        pass


class FakeStack:
    """The reference stack runtime: running or not; counts ups, downs and repairs."""

    def __init__(self, running: bool) -> None:
        self.is_running = running
        self.calls: list[str] = []

    def running(self, state_dir: Path) -> bool:
        return self.is_running

    def repair(self, state_dir: Path) -> list[str]:
        self.calls.append("repair")
        return ["resumed replica-1"]

    def up(self, state_dir: Path, config_file: Path | None) -> None:
        self.calls.append("up")
        self.is_running = True

    def down(self, state_dir: Path) -> None:
        self.calls.append("down")
        self.is_running = False


@pytest.fixture(autouse=True)
def _clean_active() -> Iterator[None]:
    ACTIVE.ledger.clear()
    ACTIVE.close()
    yield
    ACTIVE.ledger.clear()
    ACTIVE.close()


# ---- the judge ----------------------------------------------------------------------------


def test_a_healthy_run_passes_with_its_slo_rows(tmp_path: Path) -> None:
    judgement = judge_run(_ctx(tmp_path), SLO, _journal())
    assert judgement.passed and judgement.checks == [] and judgement.problems == []
    assert {(r.slo, r.phase) for r in judgement.verdict.results} == {  # type: ignore[union-attr]
        ("p99_ms", "fault"),
        ("availability", "fault"),
    }


def test_steady_state_broken_before_the_method_fails_although_ctk_says_completed(
    tmp_path: Path,
) -> None:
    before = {
        "steady_state_met": False,
        "probes": [
            {"activity": {"name": "ready", "tolerance": True}, "status": "succeeded",
             "output": False, "tolerance_met": False}
        ],
    }  # fmt: skip
    judgement = judge_run(_ctx(tmp_path), SLO, _journal(steady_states={"before": before}))
    (line,) = judgement.checks
    assert line.startswith("steady state was NOT met before the method, so no fault was injected")
    assert "Chaos Toolkit still says 'completed'" in line and "probe ready returned false" in line
    assert not judgement.passed


def test_a_failed_action_fails_with_its_exception_message(tmp_path: Path) -> None:
    failed = {
        "status": "failed",
        "activity": {"type": "action", "name": "kill"},
        "exception": ["Traceback...\n", "chaos_rec.errors.FaultError: replica-0 still alive\n"],
    }
    judgement = judge_run(_ctx(tmp_path), SLO, _journal(run=[failed]))
    assert judgement.checks == ["action kill failed: FaultError: replica-0 still alive"]


def test_a_method_probe_outside_its_tolerance_fails(tmp_path: Path) -> None:
    probe = {"type": "probe", "name": "p99", "tolerance": {"type": "range", "range": [0, 300]}}
    ok = {"status": "succeeded", "activity": probe, "output": 120.0}
    bad = {"status": "succeeded", "activity": probe, "output": 512.5}
    assert judge_run(_ctx(tmp_path), SLO, _journal(run=[ok])).passed
    (line,) = judge_run(_ctx(tmp_path), SLO, _journal(run=[ok, bad])).checks
    assert line.startswith("method probe p99 returned 512.5, outside tolerance")


def test_an_slo_miss_names_the_slo_phase_observed_value_and_budget(tmp_path: Path) -> None:
    judgement = judge_run(_ctx(tmp_path, ms_in_fault=900.0), SLO, _journal())
    assert judgement.checks == [] and not judgement.passed
    (line,) = judgement.problems
    assert line.startswith("SLO p99_ms missed in phase fault (window ")
    assert "> budget 400 ms" in line


class FakeBaseline:
    def regressions(self, results: Sequence[SLOResult], recovery_s: float | None) -> list[str]:
        p99 = next(r for r in results if r.slo == "p99_ms")
        return [] if (p99.observed or 0) < 100 else [f"fault.p99_ms {p99.observed:g} ms vs 30 ms"]


def test_a_baseline_regression_fails_a_run_that_met_its_slos(tmp_path: Path) -> None:
    assert judge_run(_ctx(tmp_path), SLO, _journal(), baseline=FakeBaseline()).passed
    judgement = judge_run(
        _ctx(tmp_path / "slower", ms_in_fault=300.0), SLO, _journal(), baseline=FakeBaseline()
    )
    assert judgement.verdict is not None and judgement.verdict.passed  # within the SLO...
    assert not judgement.passed  # ...but worse than before
    assert judgement.problems == [f"regression: {judgement.regressions[0]}"]


def test_a_stored_judgement_is_taken_as_it_is_not_judged_twice(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, ms_in_fault=900.0)
    first = judge_run(ctx, SLO, _journal(), extra=["safeguard: availability 0.3 < floor 0.5"])
    journal = _journal(chaos_rec=first.to_dict())
    again = judge_run(ctx, SLO, journal)
    assert again.checks == first.checks and again.problems == first.problems
    assert Judgement.from_dict(json.loads(json.dumps(first.to_dict()))).problems == first.problems


# ---- the run and its rollback paths ----------------------------------------------------------


def _run(tmp_path: Path, traffic: FakeTraffic, lease: StackLease | None = None) -> DrillRun:
    plan = RunPlan(spec=SLO, rps=5, users=2, warmup_s=0, safeguard_availability=None)
    return DrillRun(
        RunContext(tmp_path / "run"), plan, traffic=traffic, reference=False, lease=lease
    )


def test_normal_end_undoes_faults_stops_load_writes_the_verdict_and_releases(
    tmp_path: Path,
) -> None:
    stack = FakeStack(running=False)
    lease = StackLease(tmp_path / "state", runtime=stack).acquire()
    traffic = FakeTraffic()
    run = _run(tmp_path, traffic, lease)
    run.begin()
    assert ACTIVE.ctx is run.ctx and run.ctx.current_phase() == "steady"
    undone: list[str] = []
    ACTIVE.ledger.remember("cut:feature-store", "restore link", lambda: undone.append("cut"))
    run.ctx.append_timeline(_rows(30.0))
    judgement = run.finish(_journal())
    assert undone == ["cut"] and len(ACTIVE.ledger) == 0
    assert traffic.loads[0].stopped and ACTIVE.ctx is None
    assert stack.calls == ["up", "down"]  # the lease started the stack, so it stops it
    assert run.ctx.verdict() == judgement.to_dict()


def test_fail_fast_arms_the_safeguard_with_the_runs_spec_even_without_a_floor(
    tmp_path: Path,
) -> None:
    plan = RunPlan(spec=SLO, rps=5, users=2, warmup_s=0, safeguard_availability=None)
    off = DrillRun(RunContext(tmp_path / "off"), plan, traffic=FakeTraffic(), reference=False)
    off.begin()
    assert off.safeguard is None
    off.finish(_journal())
    on_plan = RunPlan(spec=SLO, rps=5, users=2, warmup_s=0, safeguard_availability=None,
                      fail_fast=True)  # fmt: skip
    on = DrillRun(RunContext(tmp_path / "on"), on_plan, traffic=FakeTraffic(), reference=False)
    on.begin()
    try:
        assert on.safeguard is not None and on.safeguard.floor is None
        assert on.safeguard.fail_fast == SLOSpec.parse(SLO)
    finally:
        on.finish(_journal())


def test_a_failing_undo_fails_the_run_but_every_other_fault_is_still_undone(
    tmp_path: Path,
) -> None:
    run = _run(tmp_path, FakeTraffic())
    run.begin()
    undone: list[str] = []

    def broken() -> None:
        raise FaultError("link gone")

    ACTIVE.ledger.remember("a", "undo a", lambda: undone.append("a"))
    ACTIVE.ledger.remember("b", "undo b", broken)
    run.ctx.append_timeline(_rows(30.0))
    judgement = run.finish(_journal())
    assert undone == ["a"] and len(ACTIVE.ledger) == 0
    (line,) = judgement.checks
    assert line == "rollback failed: rollback incomplete (1 failed): undo b: link gone"


def test_a_failed_start_releases_what_the_run_held(tmp_path: Path) -> None:
    stack = FakeStack(running=True)
    lease = StackLease(tmp_path / "state", runtime=stack).acquire()
    run = _run(tmp_path, FakeTraffic(fail_load=True), lease)
    with pytest.raises(LoadError, match="locust is not installed"):
        run.begin()
    run.abort()
    assert ACTIVE.ctx is None and not lease.held
    assert stack.calls == ["repair"]  # a running stack is repaired, used and left running


def test_ctrl_c_mid_method_still_undoes_the_faults_and_fails_as_interrupted(
    tmp_path: Path,
) -> None:
    traffic = FakeTraffic()
    run = _run(tmp_path, traffic)
    run.begin()
    undone: list[str] = []
    ACTIVE.ledger.remember("hang:replica-1", "resume replica-1", lambda: undone.append("hang"))
    with pytest.raises(KeyboardInterrupt):
        try:
            raise KeyboardInterrupt  # chaoslib's runner: Ctrl-C during the method
        finally:
            run.ctx.append_timeline(_rows(30.0))
            judgement = run.finish(_journal(status="interrupted"))
    assert undone == ["hang"] and traffic.loads[0].stopped
    assert "the run was interrupted (signal, safeguard or Ctrl-C)" in judgement.checks


def test_crash_repair_finds_a_dead_sessions_marker_and_repairs_its_target(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / MARKER).write_text(
        json.dumps(
            {
                "pid": 2**22 + 4321,
                "drill": "gpu_node_loss",
                "toxiproxy_url": "http://127.0.0.1:8474",
            }
        )
    )
    seen: list[tuple[Path, str | None]] = []

    def repairer(state_dir: Path, url: str | None) -> list[str]:
        seen.append((state_dir, url))
        return ["fault proxy: reset feature-store"]

    guard = DrillGuard(state, repairer=repairer)
    assert guard.other_session() is None and guard.leftovers() is not None
    (line,) = guard.recover()
    assert seen == [(state, "http://127.0.0.1:8474")]
    assert "drill gpu_node_loss" in line and "reset feature-store" in line
    assert not (state / MARKER).exists() and guard.recover() == []


def test_the_guard_refuses_to_share_a_state_dir_with_a_live_session(tmp_path: Path) -> None:
    guard = DrillGuard(tmp_path, repairer=lambda d, u: [])
    (tmp_path / MARKER).write_text(json.dumps({"pid": os.getppid(), "drill": "other"}))
    assert guard.other_session() == {"pid": os.getppid(), "drill": "other"}
    assert guard.leftovers() is None
