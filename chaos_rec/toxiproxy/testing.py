"""Start a real fault proxy process for tests and drills (free ports, always stopped)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from chaos_rec.errors import ProxyError
from chaos_rec.jsonhttp import call

__all__ = ["free_port", "running_fault_proxy", "wait_ready"]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15.0
) -> None:
    """Wait until ``GET /version`` answers; ProxyError when it never does or the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ProxyError(f"fault proxy exited with code {proc.returncode} before it was ready")
        with contextlib.suppress(ProxyError):  # not listening yet
            if call("GET", url + "/version", into=ProxyError, timeout=1.0).status == 200:
                return
        time.sleep(0.05)
    raise ProxyError(f"fault proxy at {url} not ready within {timeout}s")


@contextlib.contextmanager
def running_fault_proxy(
    *,
    seed: int | None = None,
    config: Path | None = None,
    extra_args: tuple[str, ...] = (),
    port: int | None = None,
) -> Iterator[str]:
    """Run ``python -m chaos_rec.toxiproxy`` on a free loopback port; yield its API URL."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "chaos_rec.toxiproxy", "--host", "127.0.0.1", "--port", str(port)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += list(extra_args)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
