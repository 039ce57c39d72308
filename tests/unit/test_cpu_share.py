"""The yielding lane's cpu cgroup, on folders shaped like cgroup v1 and v2 mounts."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support import cpu_share
from tests.support.lanes import YIELDING_SHARE, yields


def _v1(tmp: Path) -> Path:
    root = tmp / "v1"
    root.mkdir()
    (root / "cpu.shares").write_text("1024\n")
    return root


def _table(tmp: Path, text: str = "1:cpu:/\n0::/\n") -> Path:
    """A stand-in for /proc/self/cgroup."""
    path = tmp / "cgroup-table"
    path.write_text(text)
    return path


def test_v1_group_gets_its_share_of_1024_and_adopts_the_caller(tmp_path: Path) -> None:
    made = cpu_share.make(
        "lane0", YIELDING_SHARE, v1=_v1(tmp_path), v2=tmp_path / "none", table=_table(tmp_path)
    )
    assert isinstance(made, cpu_share.CpuGroup)
    assert (made.control, made.weight) == ("cpu.shares", 128)
    assert (made.path / "cpu.shares").read_text() == "128"
    made.adopt()
    assert (made.path / "cgroup.procs").read_text() == str(os.getpid())
    (made.path / "cgroup.procs").unlink()  # a real group empties itself; this folder must
    (made.path / "cpu.shares").unlink()
    made.remove()
    assert not made.path.exists()


def test_v2_needs_the_cpu_controller_and_weighs_out_of_100(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("memory pids\n")
    reason = cpu_share.make("lane0", 0.125, v1=tmp_path / "none", v2=v2, table=_table(tmp_path))
    assert reason == f"no cpu cgroup controller at {tmp_path / 'none'} or {v2}"
    (v2 / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    made = cpu_share.make("lane0", 0.125, v1=tmp_path / "none", v2=v2, table=_table(tmp_path))
    assert isinstance(made, cpu_share.CpuGroup)
    assert (made.control, made.weight, made.path) == ("cpu.weight", 12, v2 / "lane0")


def test_a_group_that_cannot_be_made_is_a_reason_and_leaves_nothing(tmp_path: Path) -> None:
    v1 = _v1(tmp_path)
    (v1 / "lane0").write_text("a file where the group would go")
    reason = cpu_share.make(
        "lane0", YIELDING_SHARE, v1=v1, v2=tmp_path / "none", table=_table(tmp_path)
    )
    assert isinstance(reason, str) and reason.startswith(
        f"cannot make the cpu cgroup {v1 / 'lane0'}"
    )
    assert sorted(p.name for p in v1.iterdir()) == ["cpu.shares", "lane0"]
    tiny = cpu_share.make("tiny", 0.0001, v1=v1, v2=v1, table=_table(tmp_path))
    assert isinstance(tiny, cpu_share.CpuGroup) and tiny.weight == 2  # the least v1 takes


def test_only_lane_0_of_several_yields() -> None:
    assert [yields(i, 2) for i in range(2)] == [True, False]
    assert not yields(0, 1)  # a lone lane has nothing to yield to


def test_a_group_is_made_inside_the_callers_own(tmp_path: Path) -> None:
    v1 = _v1(tmp_path)
    (v1 / "outer").mkdir()
    table = _table(tmp_path, "4:memory:/m\n3:cpu,cpuacct:/outer\n0::/u\n")
    made = cpu_share.make("lane0", YIELDING_SHARE, v1=v1, v2=tmp_path / "none", table=table)
    assert isinstance(made, cpu_share.CpuGroup) and made.path == v1 / "outer" / "lane0"
    assert cpu_share.own_group(tmp_path, "cpu.weight", "4:memory:/m\n0::/u/v\n") == tmp_path / "u/v"
    assert cpu_share.own_group(tmp_path, "cpu.shares", "0::/u\n") == tmp_path  # no cpu line
