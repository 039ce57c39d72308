"""Triton parts for bench_serving.py: one PyTriton replica and HAProxy in front of it.

The same processes the deployment of stock parts runs (deploy/triton: replica.py, the HAProxy
config of layout.py), started bare here: no supervisord and no fault proxy, as bench_serving
starts our model server and gateway bare. Ports come from ``base`` (default 19150: the replica
HTTP/gRPC/metrics on base..base+2, HAProxy on base+3, its stats on base+4).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRITON_DIR = ROOT / "deploy" / "triton"
sys.path.insert(0, str(TRITON_DIR))

from layout import MODEL, haproxy_text, triton_libdir, venv_tool  # noqa: E402

__all__ = ["TritonParts", "missing", "print_side_by_side", "side_by_side"]


def missing() -> str | None:
    """Why the Triton parts cannot run here (one line), or None."""
    if shutil.which("haproxy") is None:
        return "haproxy is not on PATH: `make sysdeps` (Debian package haproxy)"
    if not Path(venv_tool("python")).exists():
        return f"{venv_tool('python')} is missing: `make venv-triton`"
    return None


class TritonParts:
    """A Triton replica (own process group: tritonserver and its stubs die with it) + HAProxy."""

    def __init__(self, work: Path, base: int) -> None:
        self.work, self.base = work, base
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def replica_url(self) -> str:
        """The replica's OIP v2 infer URL."""
        return f"http://127.0.0.1:{self.base}/v2/models/{MODEL}/infer"

    @property
    def replica_ready_url(self) -> str:
        """Model readiness (the server says ready before PyTriton has bound the model)."""
        return f"http://127.0.0.1:{self.base}/v2/models/{MODEL}/ready"

    @property
    def haproxy_url(self) -> str:
        """The infer URL through HAProxy."""
        return f"http://127.0.0.1:{self.base + 3}/v2/models/{MODEL}/infer"

    def start_replica(self, bundle: str, redis_url: str, threads: int) -> subprocess.Popen[bytes]:
        """deploy/triton/replica.py with the Triton venv, as supervisord would run it."""
        env = dict(os.environ, PYTHONPATH=str(ROOT), LD_LIBRARY_PATH=triton_libdir(),
                   HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")  # fmt: skip
        cmd = [venv_tool("python"), str(TRITON_DIR / "replica.py"), "--bundle", bundle,
               "--redis-url", redis_url, "--http-port", str(self.base),
               "--grpc-port", str(self.base + 1), "--metrics-port", str(self.base + 2),
               "--workspace", str(self.work / "workspace"), "--threads", str(threads)]  # fmt: skip
        return self._start(cmd, env, "replica.log")

    def start_haproxy(self) -> subprocess.Popen[bytes]:
        """HAProxy with the deployment's settings in front of the one replica."""
        cfg = self.work / "haproxy.cfg"
        cfg.write_text(haproxy_text(self.base + 3, self.base + 4, [("replica-0", self.base)],
                                    self.work / "haproxy.pid"))  # fmt: skip
        return self._start(["haproxy", "-f", str(cfg), "-db"], dict(os.environ), "haproxy.log")

    def _start(self, cmd: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        self.work.mkdir(parents=True, exist_ok=True)
        with open(self.work / log, "ab") as out:
            proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        """SIGKILL each process group and reap its leader."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)

    def wait_answer(self, url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
        """Until ``url`` (HAProxy: its health check must pass first) answers an infer."""
        import httpx

        body = {"inputs": [{"name": n, "datatype": "INT64", "shape": [1, 1], "data": [v]}
                           for n, v in (("user_id", 1), ("k", 10))]}  # fmt: skip
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise SystemExit(f"error: process for {url} exited {proc.returncode}")
            try:
                if httpx.post(url, json=body, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"error: {url} answered no infer within {timeout}s")


def side_by_side(
    rows: dict[str, list[dict[str, float]]],
    best_within: Callable[[list[dict[str, float]]], dict[str, float] | None],
) -> dict[str, object]:
    """Ours vs Triton+PyTriton: the model server alone, and each whole stack (gateway/HAProxy)."""

    def at(name: str, c: int) -> dict[str, float]:
        return next((r for r in rows[name] if r["concurrency"] == c), rows[name][0])

    def best(name: str) -> float:
        found = best_within(rows[name])
        return round(found["rps"], 1) if found else 0.0

    return {
        "rps_at_p99_50ms": {"server": best("server"), "triton": best("triton"),
                            "gateway_stack": best("gateway"), "haproxy_triton_stack": best("haproxy")},
        "p50_ms_at_4_clients": {"server": round(at("server", 4)["p50_ms"], 2),
                                "triton": round(at("triton", 4)["p50_ms"], 2),
                                "gateway_stack": round(at("gateway", 4)["p50_ms"], 2),
                                "haproxy_triton_stack": round(at("haproxy", 4)["p50_ms"], 2)},
        "levels": {"triton": rows["triton"], "haproxy_triton_stack": rows["haproxy"]},
    }  # fmt: skip


def print_side_by_side(rows: dict[str, list[dict[str, float]]], figures: dict[str, object]) -> None:
    """The Triton table beside ours, and the two headline figures."""
    print(f"{'clients':>8} | {'server rps':>10} {'p50':>6} {'p99':>6} | {'triton rps':>10} {'p50':>6} "
          f"{'p99':>6} {'!ok':>4} | {'gateway rps':>11} {'p50':>6} {'p99':>6} | "
          f"{'haproxy+triton rps':>18} {'p50':>6} {'p99':>6} {'!ok':>4}")  # fmt: skip
    for s, t, g, h in zip(
        rows["server"], rows["triton"], rows["gateway"], rows["haproxy"], strict=True
    ):
        print(f"{s['concurrency']:>8} | {s['rps']:>10.0f} {s['p50_ms']:>6.1f} {s['p99_ms']:>6.1f} | "
              f"{t['rps']:>10.0f} {t['p50_ms']:>6.1f} {t['p99_ms']:>6.1f} {t['errors'] + t['degraded']:>4} | "
              f"{g['rps']:>11.0f} {g['p50_ms']:>6.1f} {g['p99_ms']:>6.1f} | {h['rps']:>18.0f} "
              f"{h['p50_ms']:>6.1f} {h['p99_ms']:>6.1f} {h['errors'] + h['degraded']:>4}")  # fmt: skip
    print(f"rps at p99<=50ms: {figures['rps_at_p99_50ms']}")
    print(f"p50 ms at 4 clients: {figures['p50_ms_at_4_clients']}")
