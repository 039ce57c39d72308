"""Fault proxy benchmark: direct loopback vs through the proxy (no toxics), side by side.

Prints added p50/p99 latency per Redis round trip, bulk throughput (and its share of direct
loopback), and how many idle connections the proxy holds (with its RSS). Ends with one
JSON line. Usage: ``.venv/bin/python benchmarks/bench_toxiproxy.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos_rec.toxiproxy.client import ToxiproxyClient
from chaos_rec.toxiproxy.testing import free_port, wait_ready
from tests.support.procs import redis_server

_SOURCE = r"""
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(64)
buf = b"\0" * (1 << 20)
while True:
    conn, _ = srv.accept()
    n = int(conn.makefile("rb").readline())
    while n > 0:
        k = conn.send(buf[: min(n, len(buf))]); n -= k
    conn.close()
"""


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def _rtts(port: int, n: int) -> list[float]:
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    r.set("bench", "x" * 64)
    for _ in range(200):
        r.get("bench")
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        r.get("bench")
        out.append((time.perf_counter_ns() - t) / 1e6)
    r.close()
    return out


def _pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


def _bulk_mb_s(port: int, nbytes: int) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        t = time.perf_counter()
        s.sendall(f"{nbytes}\n".encode())
        got = 0
        buf = bytearray(1 << 20)
        while got < nbytes:
            k = s.recv_into(buf)
            if not k:
                break
            got += k
        return got / 1e6 / (time.perf_counter() - t)


def _hold(port: int, n: int, pid: int) -> tuple[int, int]:
    socks = []
    held = 0
    rss = -1
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
        for s in socks:
            s.sendall(b"PING\r\n")
        for s in socks:
            if s.recv(16) == b"+PONG\r\n":
                held += 1
        rss = _rss_kb(pid)
    finally:
        for s in socks:
            s.close()
    return held, rss


def main() -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer samples")
    ap.add_argument("--loop", default="auto", choices=("auto", "asyncio", "uvloop"))
    args = ap.parse_args()
    n_rtt = 2000 if args.quick else 10000
    bulk = (64 if args.quick else 256) * 1_000_000
    n_conn = 500 if args.quick else 2000

    api_port, src_port = free_port(), free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proxy_proc = subprocess.Popen(
        [sys.executable, "-m", "chaos_rec.toxiproxy", "--port", str(api_port), "--loop", args.loop],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
    )  # fmt: skip
    source = subprocess.Popen(
        [sys.executable, "-c", _SOURCE, str(src_port)], start_new_session=True, env=env
    )
    try:
        url = f"http://127.0.0.1:{api_port}"
        wait_ready(url, proxy_proc)
        client = ToxiproxyClient(url)
        with redis_server() as redis_url:
            rport = int(redis_url.rsplit(":", 1)[1].split("/")[0])
            p_redis = client.create_proxy("redis", "127.0.0.1:0", f"127.0.0.1:{rport}")
            p_src = client.create_proxy("bulk", "127.0.0.1:0", f"127.0.0.1:{src_port}")
            pr_port = int(p_redis["listen"].rsplit(":", 1)[1])
            ps_port = int(p_src["listen"].rsplit(":", 1)[1])

            direct, proxied = [], []
            for _ in range(4):  # interleave blocks to share noise
                direct += _rtts(rport, n_rtt // 4)
                proxied += _rtts(pr_port, n_rtt // 4)
            d50, p50 = statistics.median(direct), statistics.median(proxied)
            d99, p99 = _pct(direct, 0.99), _pct(proxied, 0.99)
            print(f"redis GET round trip   direct p50 {d50:.3f} ms  p99 {d99:.3f} ms")
            print(f"                       proxy  p50 {p50:.3f} ms  p99 {p99:.3f} ms")
            print(f"added p50 {p50 - d50:.3f} ms (target <= 0.15)  added p99 {p99 - d99:.3f} ms")

            time.sleep(0.3)
            _bulk_mb_s(src_port, 8_000_000)
            d_bw = max(_bulk_mb_s(src_port, bulk) for _ in range(2))
            p_bw = max(_bulk_mb_s(ps_port, bulk) for _ in range(2))
            ratio = p_bw / d_bw
            print(f"bulk throughput        direct {d_bw:.0f} MB/s  proxy {p_bw:.0f} MB/s")
            print(f"proxy/direct {ratio:.1%} (target >= 30%)")

            rss0 = _rss_kb(proxy_proc.pid)
            held, rss1 = _hold(pr_port, n_conn, proxy_proc.pid)
            print(
                f"connections held       {held}/{n_conn}  proxy RSS {rss0 // 1024} MiB idle, "
                f"{rss1 // 1024} MiB holding them"
            )

            figures = {
                "bench": "toxiproxy",
                "loop": args.loop,
                "rtt_direct_p50_ms": round(d50, 4),
                "rtt_proxy_p50_ms": round(p50, 4),
                "added_p50_ms": round(p50 - d50, 4),
                "added_p99_ms": round(p99 - d99, 4),
                "bulk_direct_mb_s": round(d_bw, 1),
                "bulk_proxy_mb_s": round(p_bw, 1),
                "bulk_ratio": round(ratio, 3),
                "connections_held": held,
                "connections_tried": n_conn,
                "proxy_rss_idle_kb": rss0,
                "proxy_rss_holding_kb": rss1,
                "targets_met": bool(p50 - d50 <= 0.15 and ratio >= 0.30 and held == n_conn),
            }
    finally:
        for proc in (proxy_proc, source):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
