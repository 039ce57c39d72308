"""Catalogue timing and SLO headroom: run `pytest -m drill` over experiments/ N times in a row.

The stack is started once (reused when it is already up). Per run it prints each drill's result
and duration (from the drill report's ``summary.json``) and the total; after all runs, the worst
observed value of every SLO over the runs against its budget (the headroom table of
docs/catalogue.md). Ends with one JSON line.
``--lanes 1,2`` runs the catalogue once per lane count, side by side: with L lanes the
experiments are dealt round-robin to L concurrent `pytest -m drill` processes, each against a
stack of its own (lane i > 0: state dir ``<report>/lane<i>-state``, base and Toxiproxy ports
+1000·i), and it prints each count's wall time, its ratio to the first, and every drill's
tightest margin per count: the figures for running drills in parallel on the 2 cores.
Usage: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_drills.py [--runs N] [-k EXPR]
       [--report DIR] [--lanes 1[,2…]]   (CHAOS_REC_STATE_DIR / CHAOS_REC_BASE_PORT / … pick
       lane 0's stack)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.lanes import env_of, stack_overrides  # noqa: E402


def _lane_cmd(report: Path, k: str | None, files: list[Path]) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "drill"]
    cmd += [*(str(f) for f in files), "--drill-report", str(report)]
    return [*cmd, "-k", k] if k else cmd


def _run_lanes(
    report: Path, k: str | None, lanes: list[tuple[dict[str, str], list[Path]]]
) -> tuple[int, float, list[dict[str, Any]]]:
    """Run each lane's experiments in a `pytest -m drill` of its own, all at once; merge reports."""
    base = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    t0 = time.monotonic()
    procs = [
        subprocess.Popen(
            _lane_cmd(report / f"lane{i}", k, files),
            cwd=REPO,
            env={**base, **env_of(overrides)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, (overrides, files) in enumerate(lanes)
    ]
    outs = [proc.communicate()[0] for proc in procs]
    total = time.monotonic() - t0
    drills: list[dict[str, Any]] = []
    for i, out in enumerate(outs):
        summary = report / f"lane{i}" / "summary.json"
        if procs[i].returncode == 5 and not summary.is_file():
            continue  # -k left this lane no drill
        if not summary.is_file():
            raise RuntimeError(f"no drill report at {summary}: {out[-500:]}")
        drills += json.loads(summary.read_text(encoding="utf-8"))["drills"]
    return max((abs(p.returncode) for p in procs if p.returncode != 5), default=5), total, drills


def _lane_overrides(parent: Path, count: int) -> list[dict[str, Any]]:
    """Per lane, its stack config overrides (lane i > 0: ``<parent>/lane<i>-state``, own ports)."""
    return [stack_overrides(i, parent / f"lane{i}-state") for i in range(count)]


def _up(overrides: dict[str, Any]) -> bool:
    """Start the lane's stack unless it is up; True when this bench started it."""
    from chaos_rec import stack
    from chaos_rec.errors import ChaosRecError

    config = stack.StackConfig.load(**overrides)
    try:
        stack.load_state(config.state_dir)
        return False
    except ChaosRecError:
        stack.up(config)
        return True


def _worse(key: str, a: float, b: float) -> float:
    from chaos_rec.slo.result import direction_of

    return max(a, b) if direction_of(key) == "max" else min(a, b)


def _lane_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or any(c < 1 or c > 4 for c in counts) or len(set(counts)) < len(counts):
        raise argparse.ArgumentTypeError(
            f"--lanes wants distinct counts 1..4 separated by commas, got {text!r}"
        )
    return counts


def _deal(files: list[Path], count: int) -> list[list[Path]]:
    return [files[i::count] for i in range(count)]


def _track(worst: dict[str, dict[str, Any]], drills: list[dict[str, Any]]) -> None:
    """Print each drill's result and duration; keep every SLO's worst value in ``worst``."""
    for d in drills:
        print(f"   {d['name']:<40} {d['result']:<8} {d['duration_s']:>7.1f}s")
        for s in d["slos"]:
            if s["observed"] is None:
                continue
            key = f"{d['name']} {s['phase']}.{s['slo']}"
            cur = worst.get(key)
            value = float(s["observed"])
            if cur is not None:
                value = _worse(s["slo"], value, cur["worst"])
            worst[key] = {"worst": value, "budget": s["budget"], "slo": s["slo"]}


def _margins(worst: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    from chaos_rec.slo.result import margin

    out: dict[str, float | None] = {}
    for key, w in sorted(worst.items()):
        m = margin(w["slo"], w["worst"], w["budget"])
        out[key] = None if m is None else round(m, 3)
    return out


def _print_worst(worst: dict[str, dict[str, Any]], runs: int) -> None:
    print(f"== worst value over {runs} run(s) vs budget, and the margin left (< 0.25: redesign)")
    for key, m in _margins(worst).items():
        w = worst[key]
        flag = "  TIGHT" if m is not None and m < 0.25 else ""
        shown = "n/a" if m is None else f"{m:.2f}"
        print(f"   {key:<60} {w['worst']:>10.3f}  budget {w['budget']:<6g} margin {shown}{flag}")


def _tightest(margins: dict[str, float | None]) -> dict[str, tuple[float, str]]:
    """Per drill: its least margin and the SLO that has it."""
    out: dict[str, tuple[float, str]] = {}
    for key, m in margins.items():
        name, slo = key.split(" ", 1)
        if m is not None and (name not in out or m < out[name][0]):
            out[name] = (m, slo)
    return out


def _print_side_by_side(by_count: dict[int, dict[str, Any]]) -> None:
    counts = sorted(by_count)
    first = by_count[counts[0]]["wall_s"]
    print("== lanes side by side (wall time of a catalogue run, mean over the runs)")
    for c in counts:
        wall = by_count[c]["wall_s"]
        print(f"   {c} lane(s): {wall:7.1f}s   x{wall / first:.2f} of {counts[0]} lane(s)")
    tight = {c: _tightest(by_count[c]["margin"]) for c in counts}
    print("== tightest margin per drill, per lane count")
    for name in sorted(set().union(*tight.values())):
        cells = [f"{c}: {tight[c][name][0]:.2f} {tight[c][name][1]:<30}" for c in counts
                 if name in tight[c]]  # fmt: skip
        print(f"   {name:<38} " + "  ".join(cells))


def main(argv: list[str] | None = None) -> int:
    """Run the catalogue N times (per lane count); print times, worst SLO values, JSON line."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="catalogue runs in a row (default 1)")
    ap.add_argument("-k", default=None, help="pytest -k expression to select drills")
    ap.add_argument("--report", default=None, help="report parent folder (default: a temp dir)")
    ap.add_argument("--lanes", type=_lane_counts, default=[1],
                    help="lane counts to run side by side, e.g. 1,2 (default 1)")  # fmt: skip
    args = ap.parse_args(argv)
    parent = Path(args.report or tempfile.mkdtemp(prefix="bench-drills-")).absolute()
    files = sorted((REPO / "experiments").glob("*.json"))
    from chaos_rec import stack
    from chaos_rec.errors import ChaosRecError

    overrides = _lane_overrides(parent, max(args.lanes))
    started: list[dict[str, Any]] = []
    by_count: dict[int, dict[str, Any]] = {}
    t0 = time.monotonic()
    try:
        for lane in overrides:
            if _up(lane):
                started.append(lane)
        up_s = time.monotonic() - t0
        for count in args.lanes:
            runs: list[dict[str, Any]] = []
            worst: dict[str, dict[str, Any]] = {}
            lanes = list(zip(overrides[:count], _deal(files, count), strict=True))
            for n in range(1, args.runs + 1):
                rc, total, drills = _run_lanes(parent / f"lanes{count}-run{n}", args.k, lanes)
                print(f"== run {n}, {count} lane(s): exit {rc}, {total:.1f}s")
                _track(worst, drills)
                runs.append(
                    {
                        "exit": rc,
                        "total_s": round(total, 1),
                        "passed": sum(d["result"] == "passed" for d in drills),
                        "failed": [d["name"] for d in drills if d["result"] != "passed"],
                        "drills": {d["name"]: round(d["duration_s"], 1) for d in drills},
                    }
                )
            _print_worst(worst, len(runs))
            by_count[count] = {
                "runs": runs,
                "wall_s": round(sum(r["total_s"] for r in runs) / len(runs), 1),
                "worst": {k: round(v["worst"], 4) for k, v in sorted(worst.items())},
                "margin": _margins(worst),
            }
    except (ChaosRecError, RuntimeError) as exc:
        print(f"bench_drills: error: {exc}", file=sys.stderr)
        return 1
    finally:
        for lane in started:
            stack.down(lane.get("state_dir"))
    if len(by_count) > 1:
        _print_side_by_side(by_count)
    only = by_count[args.lanes[0]]
    out = {
        "bench": "drills",
        "stack_up_s": round(up_s, 1),
        "runs": only["runs"],
        "worst": only["worst"],
        "margin": only["margin"],
        "lanes": {
            str(c): {"wall_s": v["wall_s"], "margin": v["margin"]} for c, v in by_count.items()
        },
        "reports": str(parent),
    }
    print(json.dumps(out))
    return 0 if all(r["exit"] == 0 for v in by_count.values() for r in v["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
