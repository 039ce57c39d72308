"""A supervised child runs its command only once its pid is recorded (chaos_rec.stack.spawn).

The race it closes (clean-clone series s8, run 2): the supervisor was SIGKILLed between starting
Redis and writing its pid, so `stack down` could not find it and Redis bound its port afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chaos_rec.stack.procs import is_alive, proc_start_time
from chaos_rec.stack.spawn import spawn_gated

pytestmark = pytest.mark.integration


def _marker_cmd(marker: Path, linger_s: float = 0.0) -> list[str]:
    """A command that leaves ``marker`` (its stdin's text, else 'eof') if it ever runs."""
    script = (
        f"import sys, time, pathlib; pathlib.Path({str(marker)!r}).write_text(sys.stdin.read() or"
        f" 'eof'); time.sleep({linger_s})"
    )
    return [sys.executable, "-c", script]


def test_an_opened_gate_runs_the_command_with_the_same_pid_and_start_time(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with (tmp_path / "log").open("wb") as log:
        proc, gate = spawn_gated(_marker_cmd(marker, 30), stdout=log, env=dict(os.environ))
    try:
        started = proc_start_time(proc.pid)
        time.sleep(0.3)
        assert not marker.exists() and proc.poll() is None  # held until the gate opens
        gate.open()
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        assert marker.read_text() == "eof"  # its stdin is /dev/null, not the gate
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0] == sys.executable.encode()  # the command itself, exec'd in place of sh
        assert proc_start_time(proc.pid) == started  # the identity the supervisor recorded
        assert os.getpgid(proc.pid) == proc.pid  # its own session and group, as before
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_closed_gate_ends_the_child_without_running_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with (tmp_path / "log").open("wb") as log:
        proc, gate = spawn_gated(_marker_cmd(marker), stdout=log, env=dict(os.environ))
    gate.close()
    gate.open()  # a no-op once closed
    assert proc.wait(timeout=10) == 1
    assert not marker.exists()


def test_a_parent_killed_before_opening_leaves_no_command_running(tmp_path: Path) -> None:
    marker, pid_file = tmp_path / "ran", tmp_path / "child.pid"
    parent = textwrap.dedent(f"""
        import os, sys, time
        from chaos_rec.stack.spawn import spawn_gated
        with open(os.devnull, "wb") as log:
            proc, gate = spawn_gated({_marker_cmd(marker)!r}, stdout=log, env=dict(os.environ))
        open({str(pid_file)!r}, "w").write(str(proc.pid))
        time.sleep(60)
    """)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", parent])
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        child = int(pid_file.read_text())
        assert is_alive(child)
        proc.send_signal(signal.SIGKILL)  # the supervisor dies before it records the child
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while is_alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not is_alive(child)
    finally:  # also when an assertion fails: no parent left sleeping
        proc.kill()
        proc.wait(timeout=10)
    assert not marker.exists()


def test_a_missing_program_raises_as_popen_would(tmp_path: Path) -> None:
    with (tmp_path / "log").open("wb") as log, pytest.raises(FileNotFoundError, match="nope"):
        spawn_gated([str(tmp_path / "nope")], stdout=log, env=dict(os.environ))
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    with (tmp_path / "log").open("wb") as log, pytest.raises(PermissionError):
        spawn_gated([str(script)], stdout=log, env=dict(os.environ))
