"""The traffic-spike drill with one Locust process against a master with N workers.

The catalogue's own `experiments/traffic_spike.json` is run through `pytest -m drill` (the
reference stack is started, or reused when up), once per (multiplier, workers) pair: the
experiment is copied with its spike multiplier (x the capacity it measures in the same run)
and `chaos_rec_load_workers` set, nothing else changed. From each run's timeline, over the
seconds judged as fault, it prints side by side: the schedule asked (`target_rps`), the
requests the generator sent per second (median), the share of the schedule sent, the
generator's own loop lag, the drill's result and its failed SLOs; then one JSON line.
At the committed 3x one process already sends its schedule; a multiplier past what one process
can send (default 12x) shows whether workers raise the offered rate. On 2 cores the generator
shares the machine with the stack it loads, so a gain is what the workers get of the cores.
Usage: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_spike_workers.py
       [--multipliers 3,12] [--workers 2]   (CHAOS_REC_STATE_DIR / … pick the stack)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaos_rec.core.rundir import RunContext  # noqa: E402

SPIKE = REPO / "experiments" / "traffic_spike.json"


def _experiment(dest: Path, multiplier: float, workers: int) -> Path:
    exp = json.loads(SPIKE.read_text(encoding="utf-8"))
    exp["configuration"]["chaos_rec_load_workers"] = workers
    spikes = [a for a in exp["method"] if a["provider"].get("func") == "spike_load"]
    if len(spikes) != 1:
        raise SystemExit(f"error: {SPIKE} should hold one spike_load action, has {len(spikes)}")
    spikes[0]["provider"]["arguments"]["multiplier"] = multiplier
    path = dest / f"traffic_spike_x{multiplier:g}_w{workers}.json"
    path.write_text(json.dumps(exp, indent=1), encoding="utf-8")
    return path


def _run(exp: Path, report: Path) -> dict[str, Any]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "drill", str(exp)]
    cmd += ["--drill-report", str(report)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, check=False, capture_output=True, text=True)
    summary = report / "summary.json"
    if not summary.is_file():
        raise SystemExit(f"error: no drill report at {summary}: {proc.stdout[-800:]}")
    (drill,) = json.loads(summary.read_text(encoding="utf-8"))["drills"]
    rows = [r for r in RunContext(Path(drill["run_dir"])).timeline() if r["phase"] == "fault"]
    rows = [r for r in rows if "sent" in r]
    sent = [float(r["sent"]) for r in rows] or [0.0]  # type: ignore[typeddict-item]
    asked = [float(r["target_rps"]) for r in rows] or [0.0]  # type: ignore[typeddict-item]
    return {
        "target_rps": round(statistics.median(asked), 1),
        "sent_per_s": round(statistics.median(sent), 1),
        "send_ratio": round(sum(sent) / max(1.0, sum(asked)), 3),
        "gen_lag_ms": round(statistics.median(float(r["gen_lag_ms"]) for r in rows), 1)  # type: ignore[typeddict-item]
        if rows
        else None,
        "seconds": len(rows),
        "result": drill["result"],
        "failed": sorted(f"{s['phase']}.{s['slo']}" for s in drill["slos"] if not s["passed"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--multipliers", default="3,12", help="spike multipliers, comma-separated")
    parser.add_argument("--workers", type=int, default=2, help="workers under one master")
    args = parser.parse_args()
    try:
        mults = [float(m) for m in args.multipliers.split(",")]
    except ValueError:
        print(f"error: --multipliers wants numbers like 3,12, not {args.multipliers!r}")
        return 2
    if args.workers < 1 or any(m <= 0 for m in mults):
        print("error: --workers must be >= 1 and every multiplier > 0")
        return 2
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for mult in mults:
            for workers in (0, args.workers):
                exp = _experiment(Path(tmp), mult, workers)
                fig = _run(exp, Path(tmp) / f"report-{exp.stem}")
                figures.append({"multiplier": mult, "workers": workers, **fig})
    head = f"{'spike':>6} {'generator':<18}{'asked/s':>9}{'sent/s':>9}{'of sched':>10}"
    print(head + f"{'lag ms':>8}  result, failed SLOs")
    for f in figures:
        gen = "one process" if f["workers"] == 0 else f"master+{f['workers']} workers"
        print(
            f"{f['multiplier']:>5g}x {gen:<18}{f['target_rps']:>9}{f['sent_per_s']:>9}"
            f"{f['send_ratio']:>10}{f['gen_lag_ms']!s:>8}  {f['result']} {', '.join(f['failed'])}"
        )
    gains = {}
    for mult in mults:
        one, many = (f for f in figures if f["multiplier"] == mult)
        gains[f"{mult:g}x"] = round(many["sent_per_s"] / max(1.0, one["sent_per_s"]), 2)
    print("offered rate, workers / one process:", ", ".join(f"{k} {v}" for k, v in gains.items()))
    print(json.dumps({"bench": "spike_workers", "workers": args.workers, "runs": figures,
                      "gain": gains}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
