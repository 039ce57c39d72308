"""Fuzzing campaign against the fault proxy's API (schemathesis, from its /openapi.json).

Starts a real fault proxy process, sends ``--cases`` schema-driven requests (valid and
invalid), and prints cases run, 5xx found, crashes found, answers outside the document, then
one JSON line. Exits 1 when anything was found. The bounded CI run of the same is
``tests/integration/test_toxiproxy_fuzz.py``.

Usage: ``.venv/bin/python benchmarks/fuzz_fault_proxy.py [--cases 5000] [--seed 0]
[--loop auto|asyncio|uvloop]`` (run it under ``nice`` on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos_rec.toxiproxy.fuzz import fuzz_api
from chaos_rec.toxiproxy.testing import free_port, running_fault_proxy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000, help="requests to send")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (reproducible)")
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    args = parser.parse_args()
    if args.cases < 1:
        parser.error("--cases must be at least 1")
    with running_fault_proxy(extra_args=("--loop", args.loop)) as api:
        report = fuzz_api(api, f"127.0.0.1:{free_port()}", max_examples=args.cases, seed=args.seed)
    figures = report.to_json()
    print(f"cases run:          {report.cases} in {report.seconds:.1f} s")
    print(f"statuses:           {figures['statuses']}")
    print(f"5xx found:          {len(report.server_errors)}")
    print(f"bind failures:      {report.bind_failures} (the documented 500, as the real server)")
    print(f"crashes found:      {len(report.crashes)}")
    print(f"undocumented:       {len(report.nonconforming)}")
    for line in report.server_errors + report.crashes + report.nonconforming:
        print(f"  {line}")
    print(
        json.dumps({"bench": "fuzz_fault_proxy", "seed": args.seed, "loop": args.loop, **figures})
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
