"""Process and port helpers (Linux /proc based): identity checks, kill, port probes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "is_alive",
    "is_paused",
    "kill_many",
    "kill_tree",
    "port_in_use",
    "proc_start_time",
    "same_process",
    "wait_ports_free",
]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces/parens: split after the last ')'
    rest = raw[raw.rfind(")") + 2 :].split()
    return rest  # rest[0] = state (field 3), rest[19] = starttime (field 22)


def proc_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (None when it is gone)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def is_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return bool(fields) and fields is not None and fields[0] not in ("Z", "X")


def is_paused(pid: int) -> bool:
    """Whether ``pid`` is stopped by a signal (SIGSTOP/SIGTSTP)."""
    fields = _stat_fields(pid)
    return bool(fields) and fields is not None and fields[0] in ("T", "t")


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


def same_process(pid: int, cmd: Sequence[str], proc_start: int | None) -> bool:
    """Whether ``pid`` still runs the process recorded (start time, else command line)."""
    if not is_alive(pid):
        return False
    if proc_start is not None:
        return proc_start_time(pid) == proc_start
    # no start time recorded: compare the program names loosely (redis rewrites argv)
    current = _cmdline(pid)
    if not current or not cmd:
        return False
    return Path(current[0]).name.split()[0] == Path(cmd[0]).name


def kill_tree(pid: int, *, grace: float = 3.0) -> None:
    """SIGTERM (+SIGCONT) the process and its group, then SIGKILL after ``grace`` seconds."""
    kill_many([pid], grace=grace)


def kill_many(pids: Sequence[int], *, grace: float = 3.0) -> None:
    """Stop several processes (and their groups) at once: SIGTERM, wait ``grace``, SIGKILL."""
    targets = [_group_or_pid(pid) for pid in pids]
    for target in targets:
        for sig in (signal.SIGTERM, signal.SIGCONT):
            _send(target, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(is_alive(p) for p in pids):
        time.sleep(0.05)
    for pid, target in zip(pids, targets, strict=True):
        if is_alive(pid) or (target[0] == "group" and _group_alive(pid)):
            _send(target, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(is_alive(p) for p in pids):
        time.sleep(0.02)


def _group_or_pid(pid: int) -> tuple[str, int]:
    with contextlib.suppress(OSError):
        if os.getpgid(pid) == pid:
            return ("group", pid)
    return ("pid", pid)


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except OSError:
        return False
    return True


def _send(target: tuple[str, int], sig: signal.Signals) -> None:
    kind, pid = target
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if kind == "group":
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on (or holds) ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def wait_ports_free(ports: Iterable[int], timeout: float = 10.0) -> list[int]:
    """Wait until no port in ``ports`` is held; returns those still held at the deadline."""
    pending = sorted(set(ports))
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if port_in_use(p)]
        if pending:
            time.sleep(0.05)
    return pending
