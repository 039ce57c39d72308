"""Stack runtime figures: time to `up`, SIGKILL-to-ready restart, pause/resume, `down`.

Runs a redis(+fault proxy) stack in a temp dir on a free base port; ends with one JSON line.
Usage: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_stack.py [--rounds N] [--toxiproxy]
       [--replicas N --bundle DIR]   (full stack: fault proxy, replicas, gateway; kills replica-0)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from chaos_rec.stack import (
    StackConfig,
    down,
    load_state,
    signal_component,
    up,
    wait_component_ready,
)
from chaos_rec.stack.procs import port_in_use


def _free_base() -> int:
    for _ in range(200):
        base = random.randrange(20000, 32000, 10)
        if not any(port_in_use(base + o) for o in (0, 1, 10, 100, 101, 200)):
            return base
    raise RuntimeError("no free base port")


def _free_port() -> int:
    while True:
        port = random.randrange(10000, 20000)
        if not port_in_use(port):
            return port


def main() -> None:
    """Measure and print; the last line is JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--toxiproxy", action="store_true")
    ap.add_argument("--replicas", type=int, default=0)
    ap.add_argument("--bundle", default=None)
    args = ap.parse_args()
    ups, downs, restarts, pauses = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            cfg = StackConfig.from_dict(
                {"state_dir": str(Path(tmp) / f"s{r}"), "base_port": _free_base(),
                 "replicas": args.replicas, "gateway": args.replicas > 0,
                 "toxiproxy": args.toxiproxy or args.replicas > 0, "toxiproxy_port": _free_port(),
                 "restart_backoff_s": 0.05, "model_server_threads": 1,
                 **({"bundle": args.bundle} if args.bundle else {})}
            )  # fmt: skip
            victim = "replica-0" if args.replicas else "redis"
            t0 = time.perf_counter()
            up(cfg)
            ups.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            signal_component(victim, "kill", state_dir=cfg.state_dir)
            wait_component_ready(victim, 300, state_dir=cfg.state_dir)
            restarts.append(time.perf_counter() - t0)
            assert load_state(cfg.state_dir).component(victim)["restarts"] == 1
            t0 = time.perf_counter()
            signal_component(victim, "stop", state_dir=cfg.state_dir)
            signal_component(victim, "cont", state_dir=cfg.state_dir)
            wait_component_ready(victim, 30, state_dir=cfg.state_dir)
            pauses.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            down(cfg.state_dir)
            downs.append(time.perf_counter() - t0)
    figs = {
        "rounds": args.rounds,
        "toxiproxy": args.toxiproxy or args.replicas > 0,
        "replicas": args.replicas,
        "up_s_median": statistics.median(ups),
        "kill_to_ready_s_median": statistics.median(restarts),
        "stop_cont_ready_s_median": statistics.median(pauses),
        "down_s_median": statistics.median(downs),
        "up_s_max": max(ups),
        "down_s_max": max(downs),
    }
    for key, value in figs.items():
        print(f"{key:>26}: {value:.3f}" if isinstance(value, float) else f"{key:>26}: {value}")
    print(json.dumps({"bench": "stack", **figs}))


if __name__ == "__main__":
    main()
