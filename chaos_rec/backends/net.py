"""Low-level checks of the backends: a round trip through a link, a refused connect, a
process's state, an admin call."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from chaos_rec.errors import FaultError
from chaos_rec.jsonhttp import call

__all__ = ["admin_request", "connect_refused", "link_round_trip", "proc_state", "wait_until"]

_PROBE_BYTES: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _hostport(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return (host.strip("[]") or "127.0.0.1"), int(port)


def link_round_trip(addr: str, timeout: float = 3.0) -> float:
    """Seconds from sending a few bytes through ``host:port`` to the first byte back.

    Works for Redis (it answers an error) and gRPC/HTTP/2 (it answers SETTINGS).
    Raises OSError (refused, reset, closed, timeout) when no byte comes back.
    """
    start = time.perf_counter()
    with socket.create_connection(_hostport(addr), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_PROBE_BYTES)
        data = sock.recv(1)
        if not data:
            raise ConnectionResetError(f"{addr} closed the connection without answering")
    return time.perf_counter() - start


def connect_refused(addr: str, timeout: float = 1.0) -> bool:
    """True when a TCP connect to ``host:port`` is refused (nothing listens)."""
    try:
        with socket.create_connection(_hostport(addr), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def proc_state(pid: int) -> str:
    """The /proc state letter of a process (``R``, ``S``, ``T``, ``Z``…); ``X`` if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    return stat.rpartition(")")[2].split()[0]


def admin_request(
    base_url: str,
    method: str,
    path: str,
    *,
    token: str | None,
    body: Mapping[str, Any] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """Call an admin endpoint; returns (status, JSON or text). FaultError when unreachable."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    reply = call(
        method, base_url + path, json=body, headers=headers, timeout=timeout, into=FaultError
    )
    return reply.status, reply.text if reply.data is None else reply.data


def wait_until(test: Callable[[], bool], seconds: float, step: float = 0.02) -> bool:
    """Poll ``test()`` until it holds or ``seconds`` passed; whether it held."""
    deadline = time.monotonic() + seconds
    while not test():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True
