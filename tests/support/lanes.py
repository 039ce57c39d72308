"""The suite in lanes: which lane runs what, and what keeps concurrent lanes apart.

`make test LANES=2` runs the suite as concurrent pytest processes ("lanes", `tests.support.run_lanes`):
the drills mostly wait (the machine is busy about a quarter of a catalogue run), so two lanes on
the 2 cores take far less wall time than one. Lane 0 runs the rest of the suite with the
environment it was given; lane i > 0 runs the folders :data:`SPLITS` names for it, against a
reference stack of its own (:func:`stack_overrides`), and every lane draws the random base ports
of the stacks its tests start from a window of its own (:func:`port_window`), so no two lanes
ever share a state dir, a port or a stack.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LANE_ENV = "CHAOS_REC_TEST_LANE"  # "i/n": this process is lane i of n (unset: the only lane)
PORT_SPAN = (20000, 32000)  # random stack base ports: below the ephemeral range (32768 up)
LANE_PORT_STEP = 1000  # lane i's own reference stack: the default base and Toxiproxy ports + i·this

# Per lane count, the folders of lanes 1.. (lane 0 runs everything else), balanced on measured
# time. One serial run with busy CPU per test (2026-12-07, a slow spell): tests/integration 1107 s
# of wall (1.02 cores busy), tests/sensitivity 557 s (0.88), experiments 488 s (0.71),
# tests/drills 149 s (0.92), tests/plugin 124 s, tests/unit 18 s; 2240 busy CPU seconds in all.
# The first split (experiments + sensitivity alone) ended 1200 s against lane 0's 1587 s
# (series s12), so tests/drills joins lane 1: the drills all share its one stack. That split took
# 24.7 min of tests but the spike drill failed beside the integration lane at an equal CPU weight
# (series s13): lane 0 now yields the CPU (below).
SPLITS: dict[int, tuple[tuple[str, ...], ...]] = {
    1: (),
    2: (("experiments", "tests/drills", "tests/sensitivity"),),
}

# Lane 0 (the rest of the suite) runs no drill: beside a drill lane it yields the CPU, running in a
# cpu cgroup weighted this fraction of a default process tree's (tests.support.cpu_share), so the
# drills judge their stack as if it ran alone and lane 0 takes the CPU they leave idle.
YIELDING_SHARE = 1 / 8


def yields(i: int, count: int) -> bool:
    """Whether lane i of ``count`` runs at :data:`YIELDING_SHARE` of the CPU weight."""
    return count > 1 and i == 0


def lane_of(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(i, n) from ``CHAOS_REC_TEST_LANE=i/n``; (0, 1) when unset."""
    text = (os.environ if env is None else env).get(LANE_ENV, "")
    if not text:
        return 0, 1
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"{LANE_ENV} must be i/n (lane i of n), got {text!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"{LANE_ENV} must be i/n with 0 <= i < n, got {text!r}")
    return i, n


def port_window(max_offset: int, env: Mapping[str, str] | None = None) -> range:
    """The base ports (step 10) this lane's tests may pick: its share of :data:`PORT_SPAN`, less
    ``max_offset`` at the top so that a stack's whole range stays inside the share."""
    i, n = lane_of(env)
    lo, hi = PORT_SPAN
    width = (hi - lo) // n
    start = lo + i * width
    return range(start, start + width - max_offset, 10)


def stack_overrides(i: int, state_dir: Path) -> dict[str, Any]:
    """Lane i's reference stack config overrides: none for lane 0 (the stack the environment
    names), else its own state dir and the default ports + i·:data:`LANE_PORT_STEP`."""
    if i == 0:
        return {}
    from chaos_rec.stack import StackConfig

    first = StackConfig.load()
    return {
        "state_dir": state_dir,
        "base_port": first.base_port + LANE_PORT_STEP * i,
        "toxiproxy_port": first.toxiproxy_port + LANE_PORT_STEP * i,
    }


def env_of(overrides: Mapping[str, Any]) -> dict[str, str]:
    """The CHAOS_REC_* variables that give a process those stack config overrides."""
    from chaos_rec.settings import ENV_PREFIX

    return {ENV_PREFIX + key.upper(): str(value) for key, value in overrides.items()}


def suite_roots(root: Path = REPO) -> list[str]:
    """What a bare ``pytest`` collects: the ini's testpaths and the drill plugin's paths."""
    from chaos_rec.settings import default

    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    testpaths = data["tool"]["pytest"]["ini_options"]["testpaths"]
    return [*testpaths, *(str(p) for p in default("paths"))]


def rest_of(roots: list[str], taken: list[str], root: Path = REPO) -> list[str]:
    """``roots`` less the paths in ``taken``: a root holding a taken path is replaced by its
    entries (folders, ``test_*.py`` files), recursively, so nothing is collected twice or left out."""
    out: list[str] = []
    for rel in roots:
        if rel in taken:
            continue
        inner = [t for t in taken if Path(t).is_relative_to(rel)]
        path = root / rel
        if not inner or not path.is_dir():
            out.append(rel)
            continue
        entries = sorted(
            str(p.relative_to(root))
            for p in path.iterdir()
            if (p.is_dir() and p.name != "__pycache__") or p.name.startswith("test_")
        )
        out += rest_of(entries, taken, root)
    return out


def lane_paths(count: int, root: Path = REPO) -> list[list[str]]:
    """Per lane, the paths its pytest is given (lane 0: the rest of the suite; a lone lane: none,
    so that pytest collects its testpaths and the plugin adds its drill paths, as a bare run)."""
    if count == 1:
        return [[]]
    if count not in SPLITS:
        raise ValueError(f"lanes: {count} lane(s) has no split; known: {sorted(SPLITS)}")
    later = [list(paths) for paths in SPLITS[count]]
    for paths in later:
        for rel in paths:
            if not (root / rel).exists():
                raise ValueError(f"lanes: the split names {rel}, which does not exist")
    taken = [rel for paths in later for rel in paths]
    return [rest_of(suite_roots(root), taken, root), *later]
