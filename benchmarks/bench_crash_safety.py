"""Crash safety: SIGKILL a drill's process at a random moment; the next session must repair all.

Starts a reference stack of its own (2 replicas, fault proxy) in a temp state dir. Each round
runs a drill that, under Locust load, hangs replica-0, slows the feature store and cuts the
gateway's link to replica-1, holds them, then undoes them; at a random moment after the drill
began (its in-progress marker appeared) the `pytest -m drill` process is SIGKILLed, so
nothing of its own clean-up runs. The next `pytest -m drill` session then runs a no-op drill,
which must find and repair what was left. After it, the round counts leftovers: a toxic, a
disabled link, a stopped (SIGSTOP) replica, a stray load generator or other process of the
killed session, and a gateway not ready again within 15 s (the time it takes is printed). Prints one line per round, the totals (leftovers must be
0) and the repair time, then one JSON line.
Usage: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_crash_safety.py [--runs 50]
       [--seed 0] [--max-delay-s 9]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaos_rec import stack  # noqa: E402
from chaos_rec.stack.procs import is_paused  # noqa: E402
from chaos_rec.toxiproxy.client import ToxiproxyClient  # noqa: E402


def _act(name: str, func: str, pause: float = 0, **args: Any) -> dict[str, Any]:
    act: dict[str, Any] = {
        "type": "action",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaos_rec.actions",
            "func": func,
            "arguments": args,
        },
    }
    if pause:
        act["pauses"] = {"after": pause}
    return act


def _experiments(folder: Path) -> tuple[Path, Path]:
    control = [
        {"name": "chaos-rec", "provider": {"type": "python", "module": "chaos_rec.controls"}}
    ]
    crash = {
        "title": "crash target",
        "description": "three faults at once, held, then undone",
        "configuration": {
            "chaos_rec_load_rps": 20,
            "chaos_rec_load_users": 8,
            "chaos_rec_warmup_s": 2,
        },
        "controls": control,
        "method": [
            _act("hang", "hang_replica", target="replica:0"),
            _act(
                "slow",
                "add_toxic",
                link="link:feature-store",
                toxic_type="latency",
                attributes={"latency": 300},
            ),
            _act("cut", "cut_link", pause=6, link="link:replica-1"),
            _act("uncut", "restore_link", link="link:replica-1"),
            _act("heal", "remove_toxic", link="link:feature-store", toxic_type="latency"),
            _act("resume", "resume_replica", target="replica:0"),
        ],
        "rollbacks": [_act("undo", "rollback_all")],
    }
    noop = {
        "title": "next session",
        "description": "a drill with no fault: its session start repairs a crashed one",
        "method": [{"type": "probe", "name": "ready", "provider": {
            "type": "python", "module": "chaos_rec.probes", "func": "gateway_ready"}}],
    }  # fmt: skip
    a, b = folder / "crash_target.json", folder / "next_session.json"
    a.write_text(json.dumps(crash, indent=1))
    b.write_text(json.dumps(noop, indent=1))
    return a, b


def _session_pids(mark: str) -> list[int]:
    """Processes whose environment carries this round's mark (the killed session's children)."""
    needle = mark.encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    out.append(int(entry))
        except OSError:
            continue
    return out


def _leftovers(sdir: Path, mark: str) -> list[str]:
    state = stack.load_state(sdir)
    found = []
    tox = ToxiproxyClient(str(state.get("toxiproxy_url")), timeout=5.0)
    for name, proxy in tox.proxies().items():
        if proxy.get("toxics"):
            found.append(f"toxic on {name}")
        if not proxy.get("enabled", True):
            found.append(f"link {name} disabled")
    for comp in state.components():
        if comp.get("pid") and is_paused(int(comp["pid"])):
            found.append(f"{comp['name']} stopped")
        if comp["status"] != "ready":
            found.append(f"{comp['name']} {comp['status']}")
    found += [f"stray process {pid}" for pid in _session_pids(mark)]
    return found


def _healthy_after(sdir: Path, limit_s: float = 15.0) -> float | None:
    """Seconds until the gateway is ready again (it re-admits ejected replicas), None: never."""
    url = str(stack.load_state(sdir).get("gateway_url")) + "/readyz"
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return None


def _round(n: int, rng: random.Random, args: argparse.Namespace, sdir: Path, proj: Path,
           crash: Path, noop: Path) -> dict[str, Any]:  # fmt: skip
    mark = f"CHAOS_REC_CRASH_ROUND={n}-{os.getpid()}"
    env = dict(os.environ, CHAOS_REC_STATE_DIR=str(sdir), HF_HUB_OFFLINE="1")
    env["CHAOS_REC_CRASH_ROUND"] = mark.split("=", 1)[1]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "drill"]
    cmd.append(str(crash))
    marker = sdir / "drill-in-progress.json"
    proc = subprocess.Popen(cmd, cwd=proj, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)  # fmt: skip
    delay = rng.uniform(0, args.max_delay_s)
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    finished_first = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    t0 = time.monotonic()
    nxt = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "drill", str(noop)],
        cwd=proj, env=dict(env, CHAOS_REC_CRASH_ROUND="next"), capture_output=True, text=True,
        check=False, timeout=300,
    )  # fmt: skip
    repair_s = time.monotonic() - t0
    repaired = [ln.strip() for ln in nxt.stdout.splitlines() if "did not finish" in ln]
    left = _leftovers(sdir, mark)
    healthy = _healthy_after(sdir)
    if healthy is None:
        left.append("gateway not ready within 15 s of the repair")
    return {"healthy_after_s": None if healthy is None else round(healthy, 1), "round": n, "kill_after_s": round(delay, 2), "finished_first": finished_first,
            "next_exit": nxt.returncode, "repaired": repaired, "leftovers": left,
            "repair_s": round(repair_s, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the crash rounds; print each, the totals and a JSON line; exit 1 on any leftover."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-delay-s", type=float, default=9.0)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="crash-safety-"))
    sdir, proj = root / "state", root / "project"
    (proj / "experiments").mkdir(parents=True)
    (proj / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-p no:locust"\n')
    crash, noop = _experiments(proj / "experiments")
    cfg = stack.StackConfig.load(None, state_dir=sdir, replicas=2)
    rounds: list[dict[str, Any]] = []
    stack.up(cfg)
    try:
        for n in range(1, args.runs + 1):
            r = _round(n, rng, args, sdir, proj, crash, noop)
            rounds.append(r)
            print(f"round {n:>3}: killed {r['kill_after_s']:>5.2f}s into the drill"
                  f"{' (it had ended)' if r['finished_first'] else ''}, next session exit "
                  f"{r['next_exit']} in {r['repair_s']:.1f}s, gateway ready {r['healthy_after_s']}s later, "
                  f"leftovers {r['leftovers'] or 0}",
                  flush=True)  # fmt: skip
    finally:
        stack.down(sdir)
    left = sum(len(r["leftovers"]) for r in rounds)
    times = [r["repair_s"] for r in rounds]
    print(f"== {len(rounds)} rounds: leftovers found {left}; next session (repair "
          f"included) median {statistics.median(times):.1f}s, max {max(times):.1f}s")  # fmt: skip
    print(json.dumps({"bench": "crash_safety", "rounds": len(rounds),
                      "leftovers": left, "repair_s_median": statistics.median(times),
                      "repair_s_max": max(times), "detail": rounds}))  # fmt: skip
    return 0 if left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
