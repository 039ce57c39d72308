"""A smaller share of the CPU for one lane's whole process tree, through a cpu cgroup.

Two lanes on 2 cores compete for CPU, and the drills judge latency: beside the CPU-heavy
integration lane the spike drill's server and load generator were both starved (series s13).
The lane that runs no drill therefore yields: it runs in a cpu cgroup of its own with a low
weight, so it takes only the CPU the drill lane leaves idle. A nice value would not do: the
stacks and load generators a test starts each begin a session of their own (``setsid``), and
with the scheduler's autogroups a new session gets a fresh, full weight; a cgroup is inherited
by every descendant, whatever session it starts. The group is made inside the caller's own, so
a lane runner started by a yielding lane (the runner's own tests) keeps its lanes yielding.

cgroup v1 (``/sys/fs/cgroup/cpu``, ``cpu.shares``, default 1024) and v2 (``/sys/fs/cgroup``
with the cpu controller, ``cpu.weight``, default 100) both work; creating one needs root. Where
neither can be made, :func:`make` says why and the lane runs at the full weight.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
FULL = {"cpu.shares": 1024, "cpu.weight": 100}  # the default weight, per control file


@dataclass(frozen=True)
class CpuGroup:
    """One cgroup made for a lane: its folder and the weight file it was given."""

    path: Path
    control: str  # "cpu.shares" (v1) or "cpu.weight" (v2)
    weight: int

    def adopt(self) -> None:
        """Move the calling process into the group (a ``preexec_fn``: the child, before exec)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()), encoding="ascii")

    def remove(self) -> None:
        """Delete the group (it refuses while a process is still in it: that is left as is)."""
        with contextlib.suppress(OSError):
            self.path.rmdir()


def _control(v1: Path, v2: Path) -> tuple[Path, str] | None:
    if (v1 / "cpu.shares").is_file():
        return v1, "cpu.shares"
    controllers = v2 / "cgroup.controllers"
    if controllers.is_file() and "cpu" in controllers.read_text(encoding="ascii").split():
        return v2, "cpu.weight"
    return None


def own_group(mount: Path, control: str, table: str) -> Path:
    """The caller's own cgroup under ``mount``, from ``/proc/self/cgroup``'s ``table``: a new
    group goes inside it, so a lane runner run by a yielding lane (its own tests) stays yielding."""
    for line in table.splitlines():
        _, controllers, rel = line.split(":", 2)
        v1_line = control == "cpu.shares" and "cpu" in controllers.split(",")
        if v1_line or (control == "cpu.weight" and controllers == ""):
            return mount / rel.lstrip("/")
    return mount


def make(
    name: str, fraction: float, v1: Path = V1, v2: Path = V2, table: Path = PROC_CGROUP
) -> CpuGroup | str:
    """A cpu cgroup ``name`` inside the caller's own, weighted ``fraction`` of a default process
    tree's, or why it cannot be made."""
    found = _control(v1, v2)
    if found is None:
        return f"no cpu cgroup controller at {v1} or {v2}"
    mount, control = found
    try:
        parent = own_group(mount, control, table.read_text(encoding="ascii"))
    except OSError:
        parent = mount
    weight = max(2, round(FULL[control] * fraction))
    path = parent / name
    try:
        path.mkdir(exist_ok=True)
        (path / control).write_text(str(weight), encoding="ascii")
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.rmdir()
        return f"cannot make the cpu cgroup {path}: {exc.strerror or exc}"
    return CpuGroup(path, control, weight)
