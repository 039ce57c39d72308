"""Find a real ``toxiproxy-server`` binary, which the stack prefers when present."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["find_real_server", "server_command"]


def find_real_server() -> str | None:
    """Path of ``toxiproxy-server`` on PATH, else None (then ours is used)."""
    return shutil.which("toxiproxy-server")


def server_command(
    host: str,
    port: int,
    *,
    config: Path | None = None,
    seed: int | None = None,
    prefer_real: bool = True,
) -> list[str]:
    """The command line that starts a fault proxy API on host:port (real one if found)."""
    real = find_real_server() if prefer_real else None
    if real is not None:
        cmd = [real, "-host", host, "-port", str(port)]
        if config is not None:
            cmd += ["-config", str(config)]
        if seed is not None:
            cmd += ["-seed", str(seed)]
        return cmd
    cmd = [sys.executable, "-m", "chaos_rec.toxiproxy", "--host", host, "--port", str(port)]
    if config is not None:
        cmd += ["--config", str(config)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    return cmd
