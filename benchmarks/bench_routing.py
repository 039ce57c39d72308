"""Gateway routing figures: cost per pick, balance of users over replicas, users moved by a loss.

Pure in-process (the gateway's own `ReplicaPool.candidates`, no sockets); ends with one JSON line.
Usage: .venv/bin/python benchmarks/bench_routing.py [--users 100000] [--picks 50000]

- cost: microseconds per `candidates(user)` call, affinity vs round-robin, for 1/2/3/8 replicas;
- balance: the largest and smallest replica share of `--users` users, as a ratio to the fair
  share 1/N (rendezvous hashing: both near 1.0);
- moved: the fraction of users whose first replica changes when one replica is ejected
  (ideal 1/N: only that replica's users move), and whether every one of them moved to its own
  second choice (bounded loads are checked by the unit tests, not measured here).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

from serving.gateway.pool import Replica, ReplicaPool
from serving.metrics import GatewayMetrics
from serving.settings import GATEWAY_MECHANISMS, GatewaySettings, Switches


def _pool(n: int, routing: str) -> ReplicaPool:
    names = {f"replica-{i}": f"127.0.0.1:{17401 + i}" for i in range(n)}
    settings = GatewaySettings(port=1, replicas=names, routing=routing)
    pool = ReplicaPool(settings, Switches(GATEWAY_MECHANISMS, ()), GatewayMetrics())
    pool.replicas = [Replica(name, addr, None, None, None) for name, addr in names.items()]  # type: ignore[arg-type]
    return pool


def _cost_us(pool: ReplicaPool, picks: int) -> float:
    t0 = time.perf_counter()
    for u in range(picks):
        pool.candidates(u)
    return (time.perf_counter() - t0) / picks * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--picks", type=int, default=50_000)
    a = ap.parse_args()
    rows = []
    print(f"{'replicas':>8} | {'affinity us':>11} {'rr us':>6} | {'max/fair':>8} {'min/fair':>8} "
          f"| {'moved':>6} {'ideal':>6} {'2nd choice':>10}")  # fmt: skip
    for n in (1, 2, 3, 8):
        aff = _pool(n, "affinity")
        cost_aff = _cost_us(aff, a.picks)
        cost_rr = _cost_us(_pool(n, "round-robin"), a.picks)
        orders = {u: [r.name for r in aff.candidates(u)] for u in range(a.users)}
        share = Counter(o[0] for o in orders.values())
        fair = a.users / n
        row: dict[str, object] = {
            "replicas": n,
            "affinity_us": round(cost_aff, 2),
            "round_robin_us": round(cost_rr, 2),
            "max_share_vs_fair": round(max(share.values()) / fair, 3),
            "min_share_vs_fair": round(min(share.values()) / fair, 3),
        }
        moved_s, ideal_s, second_s = "-", "-", "-"
        if n > 1:
            lost = aff.replicas[0]
            lost.ejected = True
            moved = second_ok = 0
            for u, order in orders.items():
                now = aff.candidates(u)[0].name
                if now != order[0]:
                    moved += 1
                    second_ok += now == order[1]
            lost.ejected = False
            row.update(
                moved_on_loss=round(moved / a.users, 4),
                ideal_moved=round(1 / n, 4),
                moved_to_second_choice=second_ok == moved,
            )
            moved_s, ideal_s, second_s = (
                f"{moved / a.users:.4f}",
                f"{1 / n:.4f}",
                str(second_ok == moved),
            )
        rows.append(row)
        print(f"{n:>8} | {cost_aff:>11.2f} {cost_rr:>6.2f} | {row['max_share_vs_fair']:>8} "
              f"{row['min_share_vs_fair']:>8} | {moved_s:>6} {ideal_s:>6} {second_s:>10}")  # fmt: skip
    print(json.dumps({"bench": "routing", "users": a.users, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
