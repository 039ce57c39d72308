"""Load at scale: the offered rate of one Locust process against a master with N workers.

A fast loopback server (aiohttp in its own process, answering the chaos-rec gateway contract with
a fixed body) takes whatever the generator sends; the generator is asked for far more than one
process can send (``--rps``, default 10000/s from 1000 users) for ``--seconds`` each way. Printed
side by side: requests sent per second (median over the window), the share of the schedule
sent, the generator's own event-loop lag; then one JSON line. On 2 cores the server and the
generator share the machine, so the gain shows how much of a second core the workers get.
Usage: .venv/bin/python benchmarks/bench_load_workers.py [--workers 2] [--rps 10000] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaos_rec.core.rundir import RunContext  # noqa: E402
from chaos_rec.load import LoadRunner  # noqa: E402

SERVER = textwrap.dedent(
    """
    import sys
    from aiohttp import web
    BODY = b'{"items": [{"item_id": 1}], "fallback": "none"}'
    async def recommend(request):
        await request.read()
        return web.Response(body=BODY, content_type="application/json")
    app = web.Application()
    app.router.add_post("/v1/recommend", recommend)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    """
)


def _measure(url: str, workers: int, rps: float, users: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(Path(tmp) / "run")
        with LoadRunner(url, ctx.run_dir, rps=rps, users=users, seed=1, user_ids=[1, 2, 3],
                        workers=workers, mix={"personalised": 1.0}):  # fmt: skip
            start = time.time() + 2  # past the ramp-up
            time.sleep(seconds + 3)
        rows = [r for r in ctx.timeline() if start <= r["t"] < start + seconds]
    sent = [float(r["sent"]) for r in rows] or [0.0]
    asked = [float(r["target_rps"]) for r in rows] or [1.0]
    return {
        "sent_per_s": round(statistics.median(sent), 1),
        "send_ratio": round(sum(sent) / max(1.0, sum(asked)), 3),
        "gen_lag_ms": round(statistics.median([float(r["gen_lag_ms"]) for r in rows] or [0]), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rps", type=float, default=10000.0)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    from chaos_rec.load.runner import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        time.sleep(1.5)
        url = f"http://127.0.0.1:{port}"
        one = _measure(url, 0, args.rps, args.users, args.seconds)
        many = _measure(url, args.workers, args.rps, args.users, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"{'generator':<22}{'sent/s':>10}{'of schedule':>13}{'loop lag ms':>13}")
    for name, fig in (("one process", one), (f"master + {args.workers} workers", many)):
        print(f"{name:<22}{fig['sent_per_s']:>10}{fig['send_ratio']:>13}{fig['gen_lag_ms']:>13}")
    gain = round(many["sent_per_s"] / max(1.0, one["sent_per_s"]), 2)
    print(f"offered rate with {args.workers} workers: {gain}x one process")
    print(json.dumps({"bench": "load_workers", "rps_asked": args.rps, "one": one,
                      "workers": args.workers, "many": many, "gain": gain}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
