"""Actions: bad input rejected before any fault, and the rollback ledger."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from chaos_rec import actions
from chaos_rec.core.run import ACTIVE
from chaos_rec.errors import ConfigError, FaultError


@pytest.fixture
def conf(tmp_path: Path) -> dict[str, Any]:
    return {
        "chaos_rec_state_dir": str(tmp_path / "no-stack"),
        "chaos_rec_run_dir": str(tmp_path / "run"),
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: actions.add_toxic("link:x", "lag", configuration=c), "unknown toxic type 'lag'"),
        (
            lambda c: actions.add_toxic("link:x", "latency", stream="sideways", configuration=c),
            "stream must be upstream or downstream",
        ),
        (lambda c: actions.spike_load(0, configuration=c), "multiplier must be within (0, 100]"),
        (
            lambda c: actions.set_resilience({"breaker": "off"}, configuration=c),
            "switches must map mechanism names to true/false",
        ),
        (lambda c: actions.push_bundle("/nonexistent", configuration=c), "bundle folder not found"),
        (
            lambda c: actions.push_bundle("/tmp", expect="maybe", configuration=c),
            "expect must be any",
        ),
        (lambda c: actions.mark_phase("chaos", configuration=c), "unknown phase 'chaos'"),
    ],
)
def test_bad_arguments_are_one_clear_line(conf: dict[str, Any], call: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        call(conf)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_without_a_stack_the_error_says_how_to_start_one(conf: dict[str, Any]) -> None:
    with pytest.raises(Exception, match="chaos-rec stack up"):
        actions.kill_replica("replica:0", configuration=conf)


def test_rollback_all_undoes_newest_first_and_reports_failures(conf: dict[str, Any]) -> None:
    ledger = ACTIVE.ledger
    ledger.clear()
    done: list[str] = []

    def boom() -> None:
        raise FaultError("link gone")

    ledger.remember("a", "undo a", lambda: done.append("a"))
    ledger.remember("b", "undo b", boom)
    ledger.remember("c", "undo c", lambda: done.append("c"))
    with pytest.raises(FaultError, match=r"rollback incomplete \(1 failed\): undo b: link gone"):
        actions.rollback_all(configuration=conf)
    assert done == ["c", "a"]
    assert len(ledger) == 0
    assert actions.rollback_all(configuration=conf) == []


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (
            lambda c: actions.spike_load(3, relative_to="cores", configuration=c),
            "relative_to must be one of rate, capacity",
        ),
        (
            lambda c: actions.measure_capacity(0, configuration=c),
            "concurrency must be an integer within [1, 256]",
        ),
        (
            lambda c: actions.measure_capacity(8, 1, configuration=c),
            "duration_s must be within [3, 60] s",
        ),
    ],
)
def test_load_actions_refuse_bad_arguments_before_touching_the_load(
    call: Any, needle: str, tmp_path: Path
) -> None:
    conf = {"chaos_rec_run_dir": str(tmp_path / "run")}
    with pytest.raises(ConfigError, match=re.escape(needle)):
        call(conf)
    assert not (tmp_path / "run" / "load_level.json").exists()


def test_a_spike_relative_to_capacity_needs_a_measured_capacity(tmp_path: Path) -> None:
    from chaos_rec.core.rundir import RunContext

    ctx = RunContext(tmp_path / "run")
    ctx.timeline_path.write_text('{"t": 1, "phase": "steady", "requests": 1}\n')
    conf = {"chaos_rec_run_dir": str(ctx.run_dir)}
    with pytest.raises(
        FaultError, match="no capacity measured in this run: call measure_capacity first"
    ):
        actions.spike_load(3, relative_to="capacity", configuration=conf)
    assert not (ctx.run_dir / "load_level.json").exists()
