"""The gate's own stability: N clean-clone `CI=true bash .ci/run` runs in a row, one at a time.

Each run clones the repository into a fresh folder (as CI does) and checks out the commit that was
HEAD when the series began (so commits made meanwhile do not change what is measured), runs `.ci/run` there in
the foreground with SIGINT at its default, and reads the drill report it wrote. Per run it
prints the exit code, the wall time, the tests' own time (`make test` in lanes: their wall time,
and each lane's), the machine's busy CPU seconds over the run (over the cores: the wall-time
floor no number of lanes gets under), the SIGINT sweep's moments, exit codes and leftovers (from
the junit properties of the sweep tests), each drill's tightest SLO margin
(`chaos_rec.slo.result.margin`: 0 = at the budget; below 0.25 the budget is too tight for a
slower machine), and where the tests' time went (seconds per test folder, from junit.xml: the
figure to watch against the 25-minute goal); then one JSON line. Logs stay in --keep DIR
(default: a temp dir). ``--split DIR`` prints only the time split of the runs kept in DIR.
Usage: .venv/bin/python benchmarks/bench_ci_series.py [--runs 5] [--keep DIR] | --split DIR
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaos_rec.slo.result import margin  # noqa: E402

_SUMMARY = re.compile(r"=+ (.*\d+ (?:passed|failed).*) in ([\d.]+)s")
_LANES = re.compile(r"run_lanes: (\d+) lane\(s\) in ([\d.]+)s of wall time")  # make test's lanes
_LANE = re.compile(r"run_lanes: lane (\d+): exit (-?\d+) in ([\d.]+)s")


def _tightest(summary: Path) -> dict[str, dict[str, Any]]:
    """Per drill: its result and the SLO with the least margin (name, observed, budget, margin)."""
    if not summary.is_file():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for d in json.loads(summary.read_text(encoding="utf-8"))["drills"]:
        best: dict[str, Any] | None = None
        for s in d.get("slos", []):
            m = margin(s["slo"], s["observed"], float(s["budget"]))
            if m is not None and (best is None or m < best["margin"]):
                best = {"slo": f"{s['phase']}.{s['slo']}", "observed": s["observed"],
                        "budget": s["budget"], "margin": round(m, 3)}  # fmt: skip
        out[d["name"]] = {"result": d["result"], "tightest": best}
    return out


def _sweep(junit: Path) -> dict[str, Any]:
    """The SIGINT sweep of that run (junit properties `signal_sweep`): moments, exit codes, left."""
    if not junit.is_file():
        return {}
    import ast
    import xml.etree.ElementTree as ET

    seen = [
        ast.literal_eval(str(p.get("value")))
        for p in ET.parse(junit).iter("property")
        if p.get("name") == "signal_sweep"
    ]
    codes: dict[str, int] = {}
    for s in seen:
        codes[str(s["rc"])] = codes.get(str(s["rc"]), 0) + 1
    return {
        "moments": len(seen),
        "exit_codes": codes,
        "leftovers": sum(s["leftovers"] for s in seen),
    }


def _time_split(junit: Path) -> dict[str, float]:
    """Seconds of the tests per folder (``experiments``, ``tests/unit``, …), largest first."""
    if not junit.is_file():
        return {}
    import xml.etree.ElementTree as ET

    split: dict[str, float] = {}
    for case in ET.parse(junit).iter("testcase"):
        parts = str(case.get("classname") or "").split(".")
        group = "experiments" if parts[0] == "experiments" else "/".join(parts[:2])
        split[group] = split.get(group, 0.0) + float(case.get("time") or 0.0)
    return {g: round(t, 1) for g, t in sorted(split.items(), key=lambda kv: -kv[1])}


def _split_line(split: dict[str, float]) -> str:
    return ", ".join(f"{group} {secs:.0f} s" for group, secs in split.items())


def _busy_cpu_s() -> float:
    """The machine's busy CPU seconds since boot (all cores; /proc/stat, less idle and iowait).
    Over a run of a series, when nothing else runs, its delta is what the run cost in CPU: the
    floor of its wall time is that over the number of cores, however many lanes it runs in."""
    with open("/proc/stat", encoding="ascii") as fh:
        ticks = [int(x) for x in fh.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _run(n: int, keep: Path, commit: str) -> dict[str, Any]:
    clone = Path(tempfile.mkdtemp(prefix=f"ci-series-{n}-"))
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
    log = keep / f"run{n}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAOS_REC_", "PYTEST_"))}
    env["CI"] = "true"
    t0, cpu0 = time.monotonic(), _busy_cpu_s()
    with log.open("wb") as fh:
        rc = subprocess.run(
            ["bash", ".ci/run"], cwd=clone, stdin=subprocess.DEVNULL, stdout=fh,
            stderr=subprocess.STDOUT, env=env, check=False,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        ).returncode  # fmt: skip
    wall, cpu = time.monotonic() - t0, _busy_cpu_s() - cpu0
    text = log.read_text(errors="replace")
    found = _SUMMARY.findall(text)
    lanes = _LANES.findall(text)
    drills = _tightest(clone / "reports" / "drills" / "summary.json")
    sweep = _sweep(clone / "reports" / "junit.xml")
    split = _time_split(clone / "reports" / "junit.xml")
    if (clone / "reports").is_dir():  # none when the run failed before the tests (lint, venv)
        shutil.copytree(clone / "reports", keep / f"run{n}-reports", dirs_exist_ok=True)
    shutil.rmtree(clone, ignore_errors=True)
    return {
        "run": n,
        "exit": rc,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "cores": os.cpu_count(),
        # in lanes: every lane's summary, and the wall time of them all (not a lane's own)
        "tests": " + ".join(f[0] for f in found) if lanes else (found[-1][0] if found else None),
        "tests_s": float(lanes[-1][1]) if lanes else (float(found[-1][1]) if found else None),
        "lanes_s": {int(i): float(secs) for i, _rc, secs in _LANE.findall(text)},
        "drills": drills,
        "signal_sweep": sweep,
        "time_split_s": split,
    }


def _print_splits(kept: Path) -> int:
    """The time split of each run kept in ``kept`` (``runN-reports/junit.xml``); JSON line."""
    runs = sorted(kept.glob("run*-reports/junit.xml"))
    if not runs:
        print(f"bench_ci_series: no run*-reports/junit.xml in {kept}", file=sys.stderr)
        return 2
    splits = {}
    for junit in runs:
        name = junit.parent.name.removesuffix("-reports")
        splits[name] = _time_split(junit)
        total = sum(splits[name].values())
        print(f"{name}: {total / 60:.1f} min of tests: {_split_line(splits[name])}")
    print(json.dumps({"bench": "ci_series_split", "kept": str(kept), "runs": splits}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the clean-clone CI N times; print each run and the tightest margins; JSON line."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="clean-clone CI runs in a row (default 5)")
    ap.add_argument("--keep", default=None, help="folder for logs and reports (default: temp)")
    ap.add_argument("--split", default=None, metavar="DIR",
                    help="only print the time split of the runs kept in DIR (runN-reports)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.split is not None:
        return _print_splits(Path(args.split))
    keep = Path(args.keep or tempfile.mkdtemp(prefix="ci-series-")).absolute()
    keep.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    head = commit[:7]
    print(f"clean-clone CI series of {head}, {args.runs} run(s); logs in {keep}", flush=True)
    runs = []
    for n in range(1, args.runs + 1):
        r = _run(n, keep, commit)
        runs.append(r)
        print(f"== run {n}: exit {r['exit']}, {r['wall_s'] / 60:.1f} min in all, "
              f"tests {r['tests']} in {(r['tests_s'] or 0) / 60:.1f} min", flush=True)  # fmt: skip
        print(f"   busy CPU: {r['cpu_s']:.0f} s on {r['cores']} cores, a floor of "
              f"{r['cpu_s'] / (r['cores'] or 1) / 60:.1f} min of wall time", flush=True)  # fmt: skip
        if r["lanes_s"]:
            print(f"   lanes: {r['lanes_s']} s each", flush=True)
        print(f"   signal sweep: {r['signal_sweep']}", flush=True)
        print(f"   time by folder: {_split_line(r['time_split_s'])}", flush=True)
        for name, d in sorted(r["drills"].items()):
            t = d["tightest"] or {}
            print(f"   {name:<38} {d['result']:<7} tightest {t.get('slo', '-'):<28} "
                  f"{t.get('observed')!s:>10.10} / {t.get('budget')!s:<6} "
                  f"margin {t.get('margin')}", flush=True)  # fmt: skip
    passed = sum(r["exit"] == 0 for r in runs)
    print(f"== {passed}/{len(runs)} runs passed")
    print(json.dumps({"bench": "ci_series", "commit": head, "passed": passed, "runs": runs}))
    return 0 if passed == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
