"""Readiness checks: HTTP 200, TCP accept, Redis PING, gRPC health SERVING."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import Literal

__all__ = ["Check"]

Kind = Literal["http", "tcp", "redis", "grpc"]


@dataclass(frozen=True)
class Check:
    """One readiness probe: ``kind`` against ``target`` (URL or host:port)."""

    kind: Kind
    target: str

    def __call__(self, timeout: float = 1.0) -> bool:
        """True when the target answers as ready within ``timeout`` seconds."""
        try:
            return _CHECKS[self.kind](self.target, timeout)
        except Exception:  # any failure to answer means "not ready yet"
            return False

    def describe(self) -> str:
        """A short human label, e.g. ``http http://127.0.0.1:1/readyz``."""
        return f"{self.kind} {self.target}"


def _host_port(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host or "127.0.0.1", int(port)


def _tcp(target: str, timeout: float) -> bool:
    with socket.create_connection(_host_port(target), timeout=timeout):
        return True


def _http(target: str, timeout: float) -> bool:
    from chaos_rec.errors import StackError
    from chaos_rec.jsonhttp import call

    return call("GET", target, into=StackError, timeout=timeout).status == 200


def _redis(target: str, timeout: float) -> bool:
    import redis

    client = redis.Redis.from_url(target, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _grpc(target: str, timeout: float) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)


_CHECKS = {"http": _http, "tcp": _tcp, "redis": _redis, "grpc": _grpc}
