"""Test support for the fault proxy's behaviour tests: a byte source, Redis through a proxy."""

from __future__ import annotations

import contextlib
import socketserver
import statistics
import threading
import time
from collections.abc import Iterator

import httpx
import redis

from chaos_rec.toxiproxy.client import ToxiproxyClient


class _ByteSource(socketserver.BaseRequestHandler):
    """Reads one line 'N' (or 'N close') and sends N bytes, then closes when asked, else echoes."""

    def handle(self) -> None:
        f = self.request.makefile("rb")
        line = f.readline().split()
        if not line:
            return
        n = int(line[0])
        self.request.sendall(b"x" * n)
        if len(line) > 1 and line[1] == b"close":
            return
        while data := self.request.recv(65536):
            self.request.sendall(data)


@contextlib.contextmanager
def byte_source() -> Iterator[str]:
    """A threaded TCP server of :class:`_ByteSource` on a free port; yields ``host:port``."""
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ByteSource)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def open_connections(client: ToxiproxyClient, proxy: str) -> int:
    """The fault proxy's own count of open proxied connections of one proxy (/metrics)."""
    text = httpx.get(client.url + "/metrics", timeout=5.0).text
    needle = f'chaos_rec_toxiproxy_connections{{proxy="{proxy}"}} '
    line = next(ln for ln in text.splitlines() if ln.startswith(needle))
    return int(float(line[len(needle) :]))


def addr(listen: str) -> tuple[str, int]:
    """``host:port`` as a (host, port) pair."""
    host, port = listen.rsplit(":", 1)
    return host, int(port)


def redis_via(listen: str, timeout: float = 5.0) -> redis.Redis:
    """A Redis client of the server behind ``listen`` (a proxy's listen address)."""
    host, port = addr(listen)
    return redis.Redis(host=host, port=port, socket_timeout=timeout, socket_connect_timeout=2)


def redis_proxy(client: ToxiproxyClient, redis_url: str, name: str = "fs") -> str:
    """A new proxy ``name`` in front of the Redis at ``redis_url``; its listen address."""
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    return str(client.create_proxy(name, "127.0.0.1:0", f"127.0.0.1:{port}")["listen"])


def rtt_ms(r: redis.Redis, n: int = 5) -> float:
    """The median round trip of ``n`` GETs, in ms."""
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        r.get("k")
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)
