"""The suite's lanes: every test in exactly one lane, lanes apart, outputs rewritten and merged."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chaos_rec.report.files import drill_dir, load_report, write_session_report
from chaos_rec.report.model import DrillRecord
from chaos_rec.stack import StackConfig
from chaos_rec.stack.config import MAX_PORT_OFFSET
from tests.support.lanes import (
    LANE_ENV,
    REPO,
    lane_of,
    lane_paths,
    port_window,
    rest_of,
    stack_overrides,
    suite_roots,
)
from tests.support.run_lanes import merge_drill_reports, merge_junit, plan, split_outputs


def _collected(root: Path, paths: list[str]) -> list[Path]:
    """The test modules and experiments a pytest given ``paths`` would read, with repeats."""
    out: list[Path] = []
    for rel in paths:
        p = root / rel
        files = [p] if p.is_file() else [*p.rglob("test_*.py"), *p.glob("*.json")]
        out += [f.resolve() for f in files]
    return out


def test_two_lanes_run_every_test_module_and_experiment_exactly_once() -> None:
    whole = _collected(REPO, suite_roots())
    lanes = lane_paths(2)
    dealt = [f for paths in lanes for f in _collected(REPO, paths)]
    assert len(lanes) == 2 and all(lanes)
    assert sorted(dealt) == sorted(whole)  # nothing twice, nothing left out
    assert len(set(dealt)) == len(dealt)
    assert any(f.suffix == ".json" for f in _collected(REPO, lanes[1]))  # the catalogue: lane 1
    assert lane_paths(1) == [[]]  # one lane: a bare pytest (testpaths + the drill paths)


def test_rest_of_opens_a_root_only_down_to_the_taken_path(tmp_path: Path) -> None:
    for rel in ("t/a/test_x.py", "t/b/deep/test_y.py", "t/b/other/test_z.py", "t/test_top.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("", encoding="utf-8")
    (tmp_path / "t" / "conftest.py").write_text("", encoding="utf-8")
    rest = rest_of(["t", "e"], ["t/b/deep"], tmp_path)
    assert rest == ["t/a", "t/b/other", "t/test_top.py", "e"]


def test_unknown_lane_counts_and_missing_split_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="3 lane"):
        lane_paths(3)
    with pytest.raises(ValueError, match="names experiments, which does not exist"):
        lane_paths(2, tmp_path)


def test_lane_windows_are_disjoint_whole_stack_ranges_included() -> None:
    spans = []
    for i in range(2):
        window = port_window(MAX_PORT_OFFSET, {LANE_ENV: f"{i}/2"})
        spans.append((window[0], window[-1] + MAX_PORT_OFFSET))
    assert spans[0][1] < spans[1][0]
    assert port_window(MAX_PORT_OFFSET, {})[0] == spans[0][0]  # no lanes: the whole span
    assert lane_of({}) == (0, 1) and lane_of({LANE_ENV: "1/2"}) == (1, 2)
    for bad in ("1", "2/2", "a/b"):
        with pytest.raises(ValueError, match=LANE_ENV):
            lane_of({LANE_ENV: bad})


def test_a_later_lanes_stack_shares_no_port_or_state_dir_with_the_default(tmp_path: Path) -> None:
    assert stack_overrides(0, tmp_path) == {}
    base = StackConfig.load()
    lane = StackConfig.load(**stack_overrides(1, tmp_path / "lane1"))
    assert lane.state_dir == tmp_path / "lane1" and lane.state_dir != base.state_dir
    assert not set(lane.ports().values()) & set(base.ports().values())


def test_outputs_are_taken_out_in_every_spelling_and_paths_are_refused() -> None:
    args = ["-q", "--junitxml", "r/j.xml", "--drill-report=r/d", "-k", "x", "--deselect", "tests"]
    rest, outputs = split_outputs(args)
    assert rest == ["-q", "-k", "x", "--deselect", "tests"]
    assert outputs == {"--junitxml": Path("r/j.xml"), "--drill-report": Path("r/d")}
    assert split_outputs(["--junit-xml=j.xml"])[1] == {"--junitxml": Path("j.xml")}
    with pytest.raises(ValueError, match=r"name a test path \(tests/unit\)"):
        split_outputs(["-v", "tests/unit"])
    with pytest.raises(ValueError, match="--drill-report needs a value"):
        split_outputs(["--drill-report"])


def test_each_lane_gets_its_own_outputs_cache_and_stack(tmp_path: Path) -> None:
    lanes, outputs = plan(2, ["--junitxml=r/j.xml", "--drill-report", "r/d"], {}, REPO)
    assert outputs == {"--junitxml": REPO / "r/j.xml", "--drill-report": REPO / "r/d"}
    assert lanes[0].outputs["--junitxml"] == REPO / "r/lanes/j-0.xml"
    assert lanes[1].outputs["--drill-report"] == REPO / "r/lanes/d-1"
    assert "cache_dir=.pytest_cache/lane1" in lanes[1].args
    assert [lane.env[LANE_ENV] for lane in lanes] == ["0/2", "1/2"]
    assert "CHAOS_REC_STATE_DIR" not in lanes[0].env
    assert lanes[1].env["CHAOS_REC_STATE_DIR"] == str(REPO / ".chaos-rec-lane1")


def test_junit_parts_merge_into_one_file_of_every_lanes_cases(tmp_path: Path) -> None:
    parts = []
    for i in range(2):
        part = tmp_path / f"j-{i}.xml"
        part.write_text(
            f'<testsuites><testsuite name="pytest" tests="1"><testcase classname="m{i}" '
            f'name="t{i}" time="1.5"/></testsuite></testsuites>',
            encoding="utf-8",
        )
        parts.append(part)
    merge_junit([*parts, tmp_path / "missing.xml"], tmp_path / "out" / "junit.xml")
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert [s.get("name") for s in root.iter("testsuite")] == ["pytest lane 0", "pytest lane 1"]
    assert [c.get("name") for c in root.iter("testcase")] == ["t0", "t1"]


def _report(folder: Path, name: str) -> None:
    record = DrillRecord(name=name, nodeid=f"x::{name}", title=name, kind="experiment")
    drill_dir(folder, name).mkdir(parents=True)
    (drill_dir(folder, name) / "timeline.json").write_text("[]", encoding="utf-8")
    write_session_report(folder, [record])


def test_drill_reports_merge_their_drills_and_refuse_a_drill_in_two_lanes(tmp_path: Path) -> None:
    _report(tmp_path / "d-0", "py_drill")
    _report(tmp_path / "d-1", "gpu_node_loss")
    dest = tmp_path / "drills"
    parts = [tmp_path / "d-0", tmp_path / "d-1", tmp_path / "d-2"]  # d-2: a lane with no drill
    assert merge_drill_reports(parts, dest) == 2
    assert [r.name for r in load_report(dest)] == ["py_drill", "gpu_node_loss"]
    assert (drill_dir(dest, "gpu_node_loss") / "timeline.json").is_file()
    assert (dest / "report.html").is_file()
    _report(tmp_path / "e-0", "same")
    _report(tmp_path / "e-1", "same")
    with pytest.raises(ValueError, match="drill same ran in two lanes"):
        merge_drill_reports([tmp_path / "e-0", tmp_path / "e-1"], tmp_path / "e")
    assert not (tmp_path / "e").exists()  # refused before anything was moved
