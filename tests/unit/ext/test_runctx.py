"""Run context: phase marks, timeline reading, artefacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos_rec.core.rundir import RunContext, phase_at
from chaos_rec.errors import ConfigError


def test_marks_are_appended_and_read_back_in_order(tmp_path: Path) -> None:
    ctx = RunContext(tmp_path / "run")
    assert ctx.current_phase() == "steady"
    ctx.mark("fault", "kill_replica", t=200.0)
    ctx.mark("steady", "control", t=100.0)
    ctx.mark("recovery", "restore", t=300.0)
    assert [m["phase"] for m in ctx.phases()] == ["steady", "fault", "recovery"]
    assert ctx.current_phase() == "recovery"
    assert ctx.phase_since("fault") == 200.0
    assert phase_at(ctx.phases(), 250.0) == "fault"
    assert phase_at(ctx.phases(), 50.0) == "steady"
    with pytest.raises(ConfigError, match="unknown phase 'broken'"):
        ctx.mark("broken", "x")


def test_timeline_skips_torn_lines_and_windows(tmp_path: Path) -> None:
    ctx = RunContext(tmp_path)
    rows = [{"t": t, "phase": "steady", "requests": 1} for t in (12, 10, 11)]
    ctx.timeline_path.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"t": 13, "pha')
    assert [r["t"] for r in ctx.timeline()] == [10, 11, 12]
    assert [r["t"] for r in ctx.window(2, until=13)] == [11, 12]


def test_create_makes_unique_dirs_and_json_round_trips(tmp_path: Path) -> None:
    a = RunContext.create(tmp_path, stamp="s")
    b = RunContext.create(tmp_path, stamp="s")
    assert a.run_dir != b.run_dir and a.run_dir.parent == tmp_path.resolve() / "runs"
    a.write_json("x.json", {"k": 1})
    assert a.read_json("x.json") == {"k": 1}
    assert a.read_json("missing.json") is None
