"""Drill plugin/report benchmark: HTML report rendering and per-drill plugin overhead.

Prints the figures and ends with one JSON line. Run:
    .venv/bin/python benchmarks/bench_report.py [--drills 10] [--seconds 600] [--items 20]
(a) renders a session report for N drills with S-second timelines (sizes, time);
(b) runs ``pytest -m drill`` in a child process over M trivial experiments (one python
probe each) and reports the plugin's wall time per drill (collection + chaoslib run +
judging + report files), i.e. the fixed cost a drill adds on top of its own faults/load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timeline(
    seconds: int, rng: random.Random
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    t0 = 1_700_000_000
    rows = []
    for i in range(seconds):
        phase = "steady" if i < seconds // 3 else ("fault" if i < 2 * seconds // 3 else "recovery")
        p99 = rng.uniform(60, 90) * (4 if phase == "fault" else 1)
        rows.append(
            {
                "t": t0 + i,
                "phase": phase,
                "requests": 30,
                "failures": rng.randint(0, 1),
                "status": {"200": 30},
                "p50_ms": p99 / 3,
                "p95_ms": p99 * 0.8,
                "p99_ms": p99,
                "max_ms": p99 * 1.3,
                "tiers": {"none": 25, "cached_features": 5},
            }
        )
    marks = [
        {"t": t0, "phase": "steady", "by": "b"},
        {"t": t0 + seconds // 3, "phase": "fault", "by": "b"},
        {"t": t0 + 2 * seconds // 3, "phase": "recovery", "by": "b"},
    ]
    return rows, marks


def bench_render(drills: int, seconds: int) -> dict[str, float]:
    from chaos_rec.report.files import drill_dir, write_session_report
    from chaos_rec.report.model import DrillRecord
    from chaos_rec.slo.result import SLOResult

    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        records = []
        for n in range(drills):
            rows, marks = _timeline(seconds, rng)
            folder = drill_dir(out, f"drill_{n}")
            folder.mkdir(parents=True)
            (folder / "timeline.json").write_text(json.dumps(rows))
            (folder / "phases.json").write_text(json.dumps(marks))
            records.append(
                DrillRecord(
                    f"drill_{n}",
                    f"experiments/drill_{n}.json::drill_{n}",
                    "bench",
                    "experiment",
                    recovery_s=5.0,
                    slos=[SLOResult("p99_ms", "fault", None, 350.0, 400.0, "ms", True)],
                )
            )
        t = time.perf_counter()
        html = write_session_report(out, records)
        elapsed = time.perf_counter() - t
        return {"render_s": round(elapsed, 4), "html_kib": round(html.stat().st_size / 1024, 1)}


def bench_plugin(items: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text(
            '[tool.pytest.ini_options]\naddopts = "-p no:locust"\n'
        )
        (root / "bench_provider.py").write_text("def value(v):\n    return v\n")
        (root / "experiments").mkdir()
        for n in range(items):
            exp = {
                "title": f"d{n}",
                "description": "bench",
                "method": [],
                "steady-state-hypothesis": {
                    "title": "ok",
                    "probes": [
                        {
                            "type": "probe",
                            "name": "p",
                            "tolerance": True,
                            "provider": {
                                "type": "python",
                                "module": "bench_provider",
                                "func": "value",
                                "arguments": {"v": True},
                            },
                        }
                    ],
                },
            }
            (root / "experiments" / f"d{n:03d}.json").write_text(json.dumps(exp))
        env = {**os.environ, "CHAOS_REC_STATE_DIR": str(root / "state")}
        results = {}
        for label, extra in (
            ("collect_only", ["--collect-only", "-q"]),
            ("run", ["--drill-report", "r"]),
        ):
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-m", "drill", *extra],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            results[label] = time.perf_counter() - t
            if proc.returncode != 0:
                raise SystemExit(f"bench pytest run failed:\n{proc.stdout[-2000:]}")
        return {
            "collect_only_s": round(results["collect_only"], 3),
            "run_s": round(results["run"], 3),
            "per_drill_ms": round(1000 * (results["run"] - results["collect_only"]) / items, 1),
        }


def main() -> None:
    """Run both benchmarks and print figures plus one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drills", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--items", type=int, default=20)
    args = parser.parse_args()
    render = bench_render(args.drills, args.seconds)
    print(
        f"report: {args.drills} drills x {args.seconds} s timeline -> {render['html_kib']} KiB HTML "
        f"in {render['render_s']} s"
    )
    plugin = bench_plugin(args.items)
    print(
        f"plugin: {args.items} trivial drills: collect-only {plugin['collect_only_s']} s, "
        f"run with report {plugin['run_s']} s -> {plugin['per_drill_ms']} ms per drill"
    )
    print(
        json.dumps(
            {
                "bench": "report",
                "drills": args.drills,
                "seconds": args.seconds,
                "items": args.items,
                **render,
                **plugin,
            }
        )
    )


if __name__ == "__main__":
    main()
