"""Soak: steady load for a long run with a fault every period; resources bounded, no write lost.

Starts a reference stack of its own (2 replicas, fault proxy, gateway, Prometheus when
installed) in a state dir (default: a temp dir) on free ports, puts Locust load on the gateway
(``chaos_rec.load.LoadRunner``: Locust as a subprocess) and, every ``--fault-every-s``, injects
the next fault of a rotation of the catalogue's kinds, holds it ``--hold-s`` (centred in its
period), undoes it and checks that it is undone:

- ``latency``: 300 ms (±50) latency toxic on the feature-store link (replicas -> Redis);
- ``hang``: SIGSTOP a replica, SIGCONT it (it must run and be ready again);
- ``outage``: the feature-store link disabled, then enabled (no toxic, a PING through it);
- ``kill``: SIGKILL a replica; the supervisor restarts it (new pid, one more restart, ready);
- ``blackhole``: a timeout toxic (timeout 0) on the feature-store link, then removed;
- ``partition``: the gateway's link to a replica disabled, then enabled (it accepts again);
- ``bandwidth``: a 1 KB/s bandwidth toxic on the feature-store link, then removed.

Left out: the data-loss fault (it restarts Redis empty: the stack runs Redis without
persistence, so the writes below would be wiped by design, not lost), a bad model rollout (it
swaps bundles, a deployment change rather than a fault to soak) and the traffic spike (it
changes the load whose answers are counted). ``--kinds`` runs a subset (in its order). The
replica of each process or link fault is drawn with ``--seed``.

Sampled every ``--sample-s`` from ``/proc`` (``benchmarks/_soak_watch.py``): RSS (VmRSS) and
open fds of every component (supervisor, redis, fault proxy, replicas, gateway, Prometheus,
the load generator), each summed over its process tree (a replica's model worker counts with
it) and followed by name across restarts. Bounded: the median of the last 5 minutes (a third
of the run when shorter) is at most ``--rss-factor`` (1.25) x the median of the first 5 minutes
for RSS, at most ``--fd-slack`` (16) above it for fds, and no process is left in the session
of a killed root. Any component not bounded fails the run.

Writes: ``SET soak:<tag>:<n> <n>`` at ``--write-rps`` through the fault proxy's feature-store
link (the replicas' path to the features, so every link fault acts on them); a write is
acknowledged when ``OK`` comes back. Each one is read back straight from Redis once it is two
fault periods old (so it has lived through one whole fault), then deleted; the rest are read
back at the end. Lost = acknowledged but missing or changed; it must be 0.

The load's answers (requests not ending in a 5xx or a transport error) per second come from the
run's timeline (whole seconds only), by phase: steady, fault (the hold) and recovery (from the
undo until the gateway is ready; a phase shorter than a second gets no row of its own).
Prints one line per fault, then a table of components, one of writes, one of the load, then
one JSON line. Exit 1 when a component is unbounded, a write is lost or a fault was not undone.
Usage: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/soak.py [--minutes 30] [--fault-every-s 60]
       [--hold-s 20] [--rps 20] [--write-rps 20] [--seed 0] [--state-dir DIR] [--kinds A,B]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._soak_watch import ProcSampler, WriteCheck, load_figures, redis_client  # noqa: E402
from chaos_rec import stack  # noqa: E402
from chaos_rec.core.rundir import RunContext  # noqa: E402
from chaos_rec.errors import ChaosRecError, StackNotRunning  # noqa: E402
from chaos_rec.load import LoadRunner  # noqa: E402
from chaos_rec.stack.procs import is_paused, port_in_use  # noqa: E402
from chaos_rec.toxiproxy.client import ToxiproxyClient  # noqa: E402

ROTATION = ("latency", "hang", "outage", "kill", "blackhole", "partition", "bandwidth")
TOXICS = {
    "latency": ("latency", {"latency": 300, "jitter": 50}),
    "blackhole": ("timeout", {"timeout": 0}),
    "bandwidth": ("bandwidth", {"rate": 1}),
}
FS = "feature-store"
WINDOW_S = 300.0


class NotUndone(Exception):
    """A fault still in force after its undo."""


def _addr(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host, int(port)


class Faults:
    """Injects, undoes and checks the rotation's faults through the project's own clients."""

    def __init__(self, sdir: Path, state: stack.StackState) -> None:
        self.sdir = sdir
        self.tox = ToxiproxyClient(str(state["toxiproxy_url"]), timeout=5.0)
        self.links = {name: _addr(link["listen"]) for name, link in state["links"].items()}
        self.ready_timeout = float(state["config"]["ready_timeout_s"])

    def inject(self, kind: str, replica: int) -> dict[str, Any]:
        """Put the fault in force; what ``undo`` and ``verify`` need."""
        name = f"replica-{replica}"
        if kind in TOXICS:
            typ, attrs = TOXICS[kind]
            self.tox.add_toxic(FS, typ, attrs, name=f"soak_{kind}")
            return {"target": f"link {FS}", "link": FS, "toxic": f"soak_{kind}"}
        if kind in ("outage", "partition"):
            link = FS if kind == "outage" else name
            self.tox.disable(link)
            return {"target": f"link {link}", "link": link}
        comp = stack.load_state(self.sdir).component(name)
        ctx = {"target": name, "name": name, "pid": comp["pid"], "restarts": comp["restarts"]}
        stack.signal_component(name, "stop" if kind == "hang" else "kill", state_dir=self.sdir)
        return ctx

    def undo(self, kind: str, ctx: dict[str, Any]) -> None:
        """Take the fault back (a killed replica is brought back by the supervisor itself)."""
        if "toxic" in ctx:
            self.tox.remove_toxic(ctx["link"], ctx["toxic"])
        elif "link" in ctx:
            self.tox.enable(ctx["link"])
        elif kind == "hang":
            stack.signal_component(ctx["name"], "cont", state_dir=self.sdir)

    def verify(self, kind: str, ctx: dict[str, Any]) -> str:
        """Check the fault is undone; what was seen (NotUndone when it is not)."""
        if "link" in ctx:
            proxy = self.tox.get_proxy(ctx["link"])
            if proxy.get("toxics") or not proxy.get("enabled", True):
                raise NotUndone(f"link {ctx['link']}: enabled {proxy.get('enabled')}, "
                                f"toxics {[t.get('name') for t in proxy.get('toxics') or []]}")  # fmt: skip
            t0 = time.perf_counter()
            if ctx["link"] == FS:
                with contextlib.closing(redis_client(*self.links[FS], 2.0)) as client:
                    client.ping()
                what = "PING through it"
            else:
                socket.create_connection(self.links[ctx["link"]], timeout=2.0).close()
                what = "it accepts"
            return f"no toxic, enabled, {what} in {(time.perf_counter() - t0) * 1000:.1f} ms"
        waited = stack.wait_component_ready(ctx["name"], self.ready_timeout, state_dir=self.sdir)
        comp = stack.load_state(self.sdir).component(ctx["name"])
        if kind == "hang":
            if comp["pid"] is None or is_paused(comp["pid"]):
                raise NotUndone(f"{ctx['name']} is still stopped")
            return f"running, ready {waited:.1f}s after SIGCONT"
        if comp["pid"] == ctx["pid"] or comp["restarts"] != ctx["restarts"] + 1:
            raise NotUndone(f"{ctx['name']}: pid {ctx['pid']} -> {comp['pid']}, restarts "
                            f"{ctx['restarts']} -> {comp['restarts']}")  # fmt: skip
        return (f"restarted by the supervisor (pid {ctx['pid']} -> {comp['pid']}), "
                f"ready {waited:.1f}s after the hold")  # fmt: skip


def _config(sdir: Path, replicas: int, seed: int) -> stack.StackConfig:
    """The reference stack on a base port whose every port is free (the fault proxy's too)."""
    pick = random.Random()  # not the seeded one: ports must not repeat across runs
    for _ in range(200):
        base = pick.randrange(20000, 32000, 10)
        cfg = stack.StackConfig.load(None, state_dir=sdir, replicas=replicas, base_port=base,
                                     toxiproxy_port=base + 30, seed=seed)  # fmt: skip
        if not any(port_in_use(p) for p in cfg.ports().values()):
            return cfg
    raise SystemExit("soak: no free base port found in 20000..32000")


def _roots(sdir: Path, run_dir: Path) -> dict[str, list[int]]:
    """The root pid(s) of every component now (a restarted replica has a new one)."""
    state = stack.load_state(sdir)
    out = {"supervisor": [state.supervisor_pid or 0]}
    out.update({c["name"]: [c["pid"] or 0] for c in state.components()})
    pids = []
    for path in [run_dir / "load.pid", *sorted(run_dir.glob("load-worker-*.pid"))]:
        with contextlib.suppress(OSError, ValueError):
            pids.append(int(path.read_text()))
    out["load"] = pids
    return out


def _gateway_ready(url: str, limit_s: float = 30.0) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return time.monotonic() - t0
        time.sleep(0.2)
    return None


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--fault-every-s", type=float, default=60.0)
    ap.add_argument("--hold-s", type=float, default=20.0)
    ap.add_argument("--rps", type=float, default=20.0, help="steady load on the gateway")
    ap.add_argument("--write-rps", type=float, default=20.0, help="feature-store writes per s")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--state-dir", default=None, help="default: a new temp dir (kept)")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--kinds", default=",".join(ROTATION), help="the rotation, in order")
    ap.add_argument("--sample-s", type=float, default=5.0)
    ap.add_argument("--rss-factor", type=float, default=1.25)
    ap.add_argument("--fd-slack", type=int, default=16)
    args = ap.parse_args(argv)
    if args.minutes <= 0 or args.sample_s <= 0 or args.write_rps <= 0 or args.rps <= 0:
        ap.error("--minutes, --rps, --write-rps and --sample-s must be > 0")
    if not 0 < args.hold_s < args.fault_every_s:
        ap.error("--hold-s must be > 0 and shorter than --fault-every-s")
    if args.fault_every_s > args.minutes * 60:
        ap.error("--fault-every-s is longer than the run (--minutes)")
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in args.kinds if k not in ROTATION]
    if unknown or not args.kinds:
        ap.error(
            f"--kinds: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(ROTATION)}"
        )
    if args.replicas < 1 or args.rss_factor < 1 or args.fd_slack < 0:
        ap.error("--replicas must be >= 1, --rss-factor >= 1 and --fd-slack >= 0")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM: the same clean-up as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    """Run the soak; print each fault, the tables and a JSON line; exit 1 on any failure."""
    args = _args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    sdir = Path(args.state_dir or tempfile.mkdtemp(prefix="soak-")).absolute()
    with contextlib.suppress(StackNotRunning):
        stack.load_state(sdir)
        print(f"soak: a stack already runs in {sdir}; the soak starts its own", file=sys.stderr)
        return 2
    run_dir = sdir / "soak-run"
    rng = random.Random(args.seed)
    cfg = _config(sdir, args.replicas, args.seed)
    period, hold = args.fault_every_s, args.hold_s
    faults: list[dict[str, Any]] = []
    phase = {"now": "steady"}
    runner: LoadRunner | None = None
    writes: WriteCheck | None = None
    sampler: ProcSampler | None = None
    t_up = time.monotonic()
    state = stack.up(cfg)
    try:
        print(f"stack up in {time.monotonic() - t_up:.1f}s (base port {cfg.base_port}, state "
              f"{sdir}); components: {', '.join(c['name'] for c in state.components())}",
              flush=True)  # fmt: skip
        ctx = RunContext(run_dir)
        ctx.mark("steady", "soak")
        runner = LoadRunner(str(state["gateway_url"]), run_dir, rps=args.rps, seed=args.seed,
                            holdout=state.get("holdout"))  # fmt: skip
        redis_port = int(state.component("redis")["ports"]["redis"])
        writes = WriteCheck(f"{args.seed}-{int(time.time())}", _addr(state["links"][FS]["listen"]),
                            ("127.0.0.1", redis_port), rate=args.write_rps,
                            verify_after_s=2 * period, phase=lambda: phase["now"])  # fmt: skip
        sampler = ProcSampler(lambda: _roots(sdir, run_dir), args.sample_s)
        inj = Faults(sdir, state)
        runner.start()
        writes.start()
        sampler.start()
        t0, wall0 = time.monotonic(), time.time()
        end = t0 + args.minutes * 60
        k = 0
        while (at := t0 + k * period + (period - hold) / 2) + hold < end:
            time.sleep(max(0.0, at - time.monotonic()))
            late = time.monotonic() - at
            kind, replica = args.kinds[k % len(args.kinds)], rng.randrange(args.replicas)
            rec: dict[str, Any] = {"n": k + 1, "kind": kind, "t_s": round(time.monotonic() - t0, 1)}
            ctx.mark("fault", "soak")
            phase["now"] = "fault"
            try:
                fctx = inj.inject(kind, replica)
                rec["target"] = fctx["target"]
                time.sleep(hold)
                ctx.mark("recovery", "soak")
                phase["now"] = "recovery"
                inj.undo(kind, fctx)
                rec["verified"], rec["undone"] = inj.verify(kind, fctx), True
            except (ChaosRecError, NotUndone, OSError, ValueError) as exc:
                rec["verified"], rec["undone"] = f"{type(exc).__name__}: {exc}", False
                ctx.mark("recovery", "soak")
                phase["now"] = "recovery"
                with contextlib.suppress(ChaosRecError):
                    rec["repair"] = stack.repair(sdir)
            ready = _gateway_ready(str(state["gateway_url"]))
            rec["gateway_ready_s"] = None if ready is None else round(ready, 1)
            ctx.mark("steady", "soak")
            phase["now"] = "steady"
            faults.append(rec)
            latest = [s[-1] for s in sampler.samples.values() if s]
            print(f"fault {k + 1:>3} t={rec['t_s']:>6.0f}s{f' (late {late:.0f}s)' if late > 1 else ''}"
                  f" {kind:<9} {rec.get('target', '?'):<20} {'undone' if rec['undone'] else 'NOT UNDONE'}:"
                  f" {rec['verified']}; gateway ready {rec['gateway_ready_s']}s later; RSS sum "
                  f"{sum(s.rss_kib for s in latest) / 1024:.0f} MiB, fds {sum(s.fds for s in latest)}",
                  flush=True)  # fmt: skip
            k += 1
        time.sleep(max(0.0, end - time.monotonic()))
        wall1 = time.time()
        expected = set(_roots(sdir, run_dir))  # every component must have been sampled
        sampler.stop()
        runner.stop()
        counts = writes.finish()
        rows = [dict(r) for r in runner.timeline() if wall0 <= r["t"] <= wall1 - 1]  # whole s
        restarts = {c["name"]: c["restarts"] for c in stack.load_state(sdir).components()}
    finally:
        if sampler is not None:
            sampler.stop()
        if writes is not None:
            writes.close()
        if runner is not None:
            runner.stop()
        stack.down(sdir)
    window = min(WINDOW_S, args.minutes * 60 / 3)
    comps = sampler.summary(window, args.rss_factor, args.fd_slack)
    errors = [f"{n}: never sampled" for n in sorted(expected - set(comps))] + sampler.errors
    if writes.read_errors:
        errors.append(f"{writes.read_errors} read-backs failed (Redis did not answer)")
    return _report(args, window, comps, counts, load_figures(rows), faults, restarts, sdir,
                   errors)  # fmt: skip


def _report(args: argparse.Namespace, window: float, comps: dict[str, Any],
            counts: dict[str, Any], load: dict[str, Any], faults: list[dict[str, Any]],
            restarts: dict[str, int], sdir: Path, errors: list[str]) -> int:  # fmt: skip
    """Print the tables and the JSON line; the exit status."""
    print(
        f"== components (median of the first / last {window / 60:.0f} min; bounded: last RSS "
        f"<= {args.rss_factor:g} x first, last fds <= first + {args.fd_slack}, no stray process)"
    )
    print(f"{'component':<12} {'pids':>4} {'procs':>5} {'RSS MiB first':>13} {'last':>7} "
          f"{'max':>7} {'growth':>7} {'fds first':>9} {'last':>5} {'max':>5} {'+fds':>5} "
          f"{'strays':>6}  bounded")  # fmt: skip
    for name, c in comps.items():
        print(f"{name:<12} {c['pids']:>4} {c['procs_max']:>5} {c['rss_mib_first']:>13.1f} "
              f"{c['rss_mib_last']:>7.1f} {c['rss_mib_max']:>7.1f} {c['rss_growth'] or 0:>6.3f}x "
              f"{c['fds_first']:>9g} {c['fds_last']:>5g} {c['fds_max']:>5} {c['fds_growth']:>+5g} "
              f"{c['strays_last']:>6}  {'yes' if c['bounded'] else 'NO'}")  # fmt: skip
    print(
        "== feature-store writes (SET through the fault proxy's feature-store link, read back "
        "from Redis), by the phase they were sent in"
    )
    print(
        f"{'phase':<9} {'sent':>7} {'acked':>7} {'read back':>9} {'lost':>5} {'unacked but landed':>18}"
    )
    total = {"sent": 0, "acked": 0, "read_back": 0, "lost": 0, "landed_unacked": 0}
    for ph, c in sorted(counts.items()):
        print(
            f"{ph:<9} {c.sent:>7} {c.acked:>7} {c.read_back:>9} {c.lost:>5} {c.landed_unacked:>18}"
        )
        for key in total:
            total[key] += getattr(c, key)
    print(f"{'total':<9} {total['sent']:>7} {total['acked']:>7} {total['read_back']:>9} "
          f"{total['lost']:>5} {total['landed_unacked']:>18}")  # fmt: skip
    print("== load: answers (no 5xx, no transport error; fallbacks count) per second, by phase")
    for ph, f in load.items():
        print(f"{ph:<9} {f['seconds']:>5} s  answers/s median {f['answers_per_s_median']:g}, min "
              f"{f['answers_per_s_min']}; availability {f['availability'] or 0:.4f}; "
              f"p99 {f['p99_ms'] or 0:.0f} ms; fallback answers {f['fallback_ratio'] or 0:.2f}")  # fmt: skip
    undone = sum(bool(f["undone"]) for f in faults)
    unbounded = sorted(n for n, c in comps.items() if not c["bounded"])
    unbounded += [e.split(":")[0] for e in errors if e.endswith("never sampled")]
    ok = not unbounded and total["lost"] == 0 and undone == len(faults) and bool(comps)
    for line in errors[:20]:
        print(f"   note: {line}")
    print(f"== {len(faults)} faults, {undone} undone; unbounded: {', '.join(unbounded) or 'none'}; "
          f"writes acked {total['acked']}, read back {total['read_back']}, lost {total['lost']}; "
          f"restarts {restarts}; {'PASS' if ok else 'FAIL'}")  # fmt: skip
    lost_keys = [k for c in counts.values() for k in c.lost_keys][:20]
    print(json.dumps({"bench": "soak", "minutes": args.minutes, "fault_every_s": args.fault_every_s,
                      "hold_s": args.hold_s, "rps": args.rps, "write_rps": args.write_rps,
                      "seed": args.seed, "window_s": window, "rss_factor": args.rss_factor,
                      "fd_slack": args.fd_slack, "pass": ok, "faults": len(faults),
                      "faults_undone": undone, "unbounded": unbounded, "components": comps,
                      "writes": total, "writes_by_phase": {p: {k: getattr(c, k) for k in total}
                                                           for p, c in counts.items()},
                      "lost_keys": lost_keys, "load": load, "restarts": restarts,
                      "errors": errors[:20], "state_dir": str(sdir), "detail": faults}))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("soak: interrupted; everything it started is stopped", file=sys.stderr)
        sys.exit(130)
