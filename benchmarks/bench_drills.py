"""Catalogue timing: run `pytest -m drill` over experiments/ and print per-drill and total time.

The stack is started once for the session (reused when it is already up) and each drill's
duration comes from the drill report (``summary.json``). Ends with one JSON line.
Usage: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_drills.py [-k EXPR] [--report DIR]
       (CHAOS_REC_STATE_DIR / CHAOS_REC_BASE_PORT / CHAOS_REC_TOXIPROXY_PORT pick the stack)
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

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Run the catalogue once; print one line per drill, the total, and a JSON summary line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default=None, help="pytest -k expression to select drills")
    ap.add_argument("--report", default=None, help="drill report folder (default: a temp dir)")
    args = ap.parse_args(argv)
    report = Path(args.report or tempfile.mkdtemp(prefix="bench-drills-")).absolute()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "drill"]
    cmd += [str(REPO / "experiments"), "--drill-report", str(report)]
    if args.k:
        cmd += ["-k", args.k]
    from chaos_rec import stack
    from chaos_rec.errors import ChaosRecError

    started = False
    t0 = time.monotonic()
    try:
        try:
            stack.load_state()
        except ChaosRecError:
            stack.up(stack.StackConfig.load())
            started = True
        up_s = time.monotonic() - t0
        t1 = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO, env=env, check=False)
        total = time.monotonic() - t1
    except ChaosRecError as exc:
        print(f"bench_drills: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if started:
            stack.down()
    summary_file = report / "summary.json"
    if not summary_file.is_file():
        print(f"bench_drills: error: no drill report at {summary_file}", file=sys.stderr)
        return 1
    drills = json.loads(summary_file.read_text(encoding="utf-8"))["drills"]
    print(f"{'drill':<40} {'result':<8} {'seconds':>8}")
    for d in drills:
        print(f"{d['name']:<40} {d['result']:<8} {d['duration_s']:>8.1f}")
    print(f"{'total (pytest wall time)':<49} {total:>8.1f}   stack up {up_s:.1f}s")
    out = {
        "bench": "drills",
        "total_s": round(total, 1),
        "stack_up_s": round(up_s, 1),
        "passed": sum(d["result"] == "passed" for d in drills),
        "failed": sum(d["result"] != "passed" for d in drills),
        "drills": {d["name"]: round(d["duration_s"], 1) for d in drills},
        "exit": proc.returncode,
    }
    print(json.dumps(out))
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
