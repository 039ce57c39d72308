"""Catalogue timing and SLO headroom: run `pytest -m drill` over experiments/ N times in a row.

The stack is started once (reused when it is already up). Per run it prints each drill's result
and duration (from the drill report's ``summary.json``) and the total; after all runs, the worst
observed value of every SLO over the runs against its budget (the headroom table of
docs/catalogue.md). Ends with one JSON line.
Usage: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_drills.py [--runs N] [-k EXPR]
       [--report DIR]   (CHAOS_REC_STATE_DIR / CHAOS_REC_BASE_PORT / … pick the stack)
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


def _run_once(report: Path, k: str | None) -> tuple[int, float, list[dict[str, Any]]]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "drill"]
    cmd += [str(REPO / "experiments"), "--drill-report", str(report)]
    if k:
        cmd += ["-k", k]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, check=False, capture_output=True, text=True)
    total = time.monotonic() - t0
    summary = report / "summary.json"
    if not summary.is_file():
        raise RuntimeError(f"no drill report at {summary}: {proc.stdout[-500:]}")
    drills: list[dict[str, Any]] = json.loads(summary.read_text(encoding="utf-8"))["drills"]
    return proc.returncode, total, drills


def _worse(key: str, a: float, b: float) -> float:
    from chaos_rec.slo.result import direction_of

    return max(a, b) if direction_of(key) == "max" else min(a, b)


def main(argv: list[str] | None = None) -> int:
    """Run the catalogue N times; print per-drill times, totals, worst SLO values, JSON line."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="catalogue runs in a row (default 1)")
    ap.add_argument("-k", default=None, help="pytest -k expression to select drills")
    ap.add_argument("--report", default=None, help="report parent folder (default: a temp dir)")
    args = ap.parse_args(argv)
    parent = Path(args.report or tempfile.mkdtemp(prefix="bench-drills-")).absolute()
    from chaos_rec import stack
    from chaos_rec.errors import ChaosRecError

    started = False
    runs: list[dict[str, Any]] = []
    worst: dict[str, dict[str, Any]] = {}
    t0 = time.monotonic()
    try:
        try:
            stack.load_state()
        except ChaosRecError:
            stack.up(stack.StackConfig.load())
            started = True
        up_s = time.monotonic() - t0
        for n in range(1, args.runs + 1):
            rc, total, drills = _run_once(parent / f"run{n}", args.k)
            print(f"== run {n}: exit {rc}, {total:.1f}s")
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
            runs.append(
                {
                    "exit": rc,
                    "total_s": round(total, 1),
                    "passed": sum(d["result"] == "passed" for d in drills),
                    "failed": [d["name"] for d in drills if d["result"] != "passed"],
                    "drills": {d["name"]: round(d["duration_s"], 1) for d in drills},
                }
            )
    except (ChaosRecError, RuntimeError) as exc:
        print(f"bench_drills: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if started:
            stack.down()
    from chaos_rec.slo.result import margin

    print(
        f"== worst value over {len(runs)} run(s) vs budget, and the margin left (< 0.25: redesign)"
    )
    for key, w in sorted(worst.items()):
        m = margin(w["slo"], w["worst"], w["budget"])
        flag = "  TIGHT" if m is not None and m < 0.25 else ""
        shown = "n/a" if m is None else f"{m:.2f}"
        print(f"   {key:<60} {w['worst']:>10.3f}  budget {w['budget']:<6g} margin {shown}{flag}")
    out = {
        "bench": "drills",
        "stack_up_s": round(up_s, 1),
        "runs": runs,
        "worst": {k: round(v["worst"], 4) for k, v in sorted(worst.items())},
        "margin": {
            k: None if (m := margin(v["slo"], v["worst"], v["budget"])) is None else round(m, 3)
            for k, v in sorted(worst.items())
        },
        "reports": str(parent),
    }
    print(json.dumps(out))
    return 0 if all(r["exit"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
