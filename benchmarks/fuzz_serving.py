"""Fuzz campaign against a real model server and gateway (issue #18, "Fuzzing").

Five targets, in rounds with fresh random seeds until the time is spent:
  model-server       schemathesis from the replica's /openapi.json (positive and negative)
  model-server-json  hostile JSON bodies (hypothesis) to its infer and reload routes
  gateway            schemathesis from the gateway's /openapi.json
  gateway-json       hostile JSON bodies to POST /v1/recommend
  grpc               hypothesis-generated ModelInferRequests over real gRPC to the replica
Prints per target: cases run, 5xx (gRPC: a status other than a refusal), check failures,
crashes (the process gone), the answers seen; ends with one JSON line. Exits 1 on any finding.
Run (the CI tests run a bounded, seeded slice of this):
    nice -n 15 .venv/bin/python benchmarks/fuzz_serving.py [--seconds 180] [--examples 50]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.integration.test_serving_fuzz import GATEWAY_ARGS, SERVER_ARGS  # noqa: E402
from tests.integration.test_serving_helpers import (  # noqa: E402
    Proc,
    running,
    start_gateway,
    start_replica,
)
from tests.support import fuzz, fuzz_grpc  # noqa: E402
from tests.support.procs import redis_server  # noqa: E402

TOKEN = "tok"  # what start_replica/start_gateway give the servers


def _alive(p: Proc) -> bool:
    return p.proc.poll() is None


def _round(rep: Proc, gw: Proc, examples: int, seed: int) -> list[fuzz.Tally]:
    """One pass over every target that is still alive."""
    out: list[fuzz.Tally] = []
    for server, name in ((rep, "model-server"), (gw, "gateway")):
        alive = functools.partial(_alive, server)
        if not alive():
            continue
        out.append(
            fuzz.fuzz_openapi(
                name, server.http, token=TOKEN, examples=examples, alive=alive, seed=seed
            )
        )
        for path, bodies, token in BODIES[name]:
            tally = fuzz.fuzz_bodies(
                f"{name}-json",
                server.http + path,
                bodies,
                examples=examples * 2,
                alive=alive,
                token=token,
                seed=seed,
            )
            out.append(tally)
    if _alive(rep):
        out.append(
            fuzz_grpc.fuzz_grpc(
                "grpc", rep.grpc, examples=examples * 10, alive=lambda: _alive(rep), seed=seed
            )
        )
    return out


# hostile JSON bodies, per server: (path, strategy, admin token)
BODIES = {
    "model-server": [
        ("/v2/models/recommender/infer", fuzz.infer_bodies(), None),
        ("/admin/reload", fuzz.json_bodies(), TOKEN),
    ],
    "gateway": [("/v1/recommend", fuzz.recommend_bodies(), None)],
}
TARGETS = ("model-server", "model-server-json", "gateway", "gateway-json", "grpc")


def campaign(rep: Proc, gw: Proc, seconds: float, examples: int) -> list[fuzz.Tally]:
    """Rounds over the targets until `seconds` have passed (a dead server is skipped)."""
    totals = {n: fuzz.Tally(n) for n in TARGETS}
    end = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < end and (_alive(rep) or _alive(gw)):
        rounds += 1
        seed = random.randrange(2**32)  # printed: a round can be replayed with its seed
        t0 = time.monotonic()
        for tally in _round(rep, gw, examples, seed):
            totals[tally.target].add(tally)
        cases = sum(t.cases for t in totals.values())
        print(
            f"round {rounds} (seed {seed}): {time.monotonic() - t0:.1f}s, {cases} cases so far",
            flush=True,
        )
    return list(totals.values())


def main() -> int:
    """Start Redis, a replica and a gateway; fuzz; print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0, help="campaign length (default 180)")
    ap.add_argument(
        "--examples",
        type=int,
        default=50,
        help="cases per operation and mode per round (bodies 2x, gRPC 10x; default 50)",
    )
    args = ap.parse_args()
    if args.seconds <= 0 or args.examples <= 0:
        ap.error("--seconds and --examples must be > 0")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cr-fuzz-") as tmp, redis_server() as url:
        rep = start_replica(Path(tmp), url, extra=SERVER_ARGS)
        with running(rep):
            gw = start_gateway(Path(tmp), {"replica-0": rep.grpc}, extra=GATEWAY_ARGS)
            with running(gw):
                tallies = campaign(rep, gw, args.seconds, args.examples)
                logs = {p.name: p.output()[-2000:] for p in (rep, gw) if not _alive(p)}
    print(f"\n{'target':<19}{'cases':>8}{'5xx':>6}{'check fails':>13}{'crashes':>9}  answers")
    for t in tallies:
        answers = ", ".join(f"{k}={v}" for k, v in sorted(t.answers.items()))
        print(
            f"{t.target:<19}{t.cases:>8}{t.server_errors:>6}{t.check_failures:>13}"
            f"{t.crashes:>9}  {answers}"
        )
    for line in fuzz.iter_findings(tallies):
        print(f"  finding: {line}")
    for name, text in logs.items():
        print(f"  {name} died; its log ends:\n{text}")
    bad = any(t.server_errors or t.check_failures or t.crashes for t in tallies)
    summary = {
        "seconds": round(time.monotonic() - started, 1),
        "targets": {
            t.target: {k: v for k, v in t.as_dict().items() if k not in ("target",)}
            for t in tallies
        },
        "ok": not bad,
    }
    print(json.dumps(summary))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
