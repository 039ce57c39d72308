"""Test support for reference stacks: a free base port, a Redis-only config, the CLI, a ping."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import redis

from chaos_rec.stack import StackConfig
from chaos_rec.stack.config import MAX_PORT_OFFSET
from chaos_rec.stack.procs import port_in_use
from tests.support.lanes import port_window
from tests.support.offline import offline_env


def free_base_port() -> int:
    """A base port whose whole stack range (base .. base + MAX_PORT_OFFSET) has no listener.

    The same check as ``stack up``'s own "port(s) in use" refusal, over every port a stack of any
    size may bind, below the ephemeral range (32768 up) where the kernel picks client ports, and
    inside this lane's window when the suite runs in lanes (``tests.support.lanes``).
    """
    window = port_window(MAX_PORT_OFFSET)
    for _ in range(200):
        base = random.choice(window)
        if not any(port_in_use(base + off) for off in range(MAX_PORT_OFFSET + 1)):
            return base
    raise RuntimeError("no free base port for a reference stack")


def minimal(tmp_path: Path, **over: object) -> StackConfig:
    """Redis only: no replicas, gateway or fault proxy (they belong to other areas)."""
    values: dict[str, object] = {
        "state_dir": tmp_path / "state",
        "base_port": free_base_port(),
        "replicas": 0,
        "gateway": False,
        "toxiproxy": False,
        "prometheus": False,
        "ready_timeout_s": 20.0,
        "restart_backoff_s": 0.2,
    }
    values.update(over)
    return StackConfig.from_dict(values)


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m chaos_rec ARGS`` in a subprocess (offline), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "chaos_rec", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=offline_env(),
        check=False,
    )


def ping(url: str, timeout: float = 1.0) -> bool:
    """Whether the Redis at ``url`` answers PING."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
