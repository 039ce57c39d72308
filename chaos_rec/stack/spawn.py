"""Start a supervised child that never runs unrecorded.

A child is started in its own session through ``/bin/sh``, held before it execs its command until
the supervisor has written its pid to the state file (``Gate.open``). If the supervisor dies in
between (SIGKILL, OOM), the gate's pipe reaches end-of-file and the child exits without running
its command: no process is left that ``stack down`` cannot find. The exec keeps the pid and the
start time, so the recorded identity is that of the command itself.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import IO

__all__ = ["Gate", "spawn_gated"]

# stdin is the gate: one line lets the command run (with stdin on /dev/null); EOF ends the child
_HOLD = 'read _ || exit 1; exec "$@" </dev/null'


class Gate:
    """The supervisor's end of a held child's gate; open or close it exactly once."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def open(self) -> None:
        """Let the held child run its command."""
        self._finish(go=True)

    def close(self) -> None:
        """Stop the held child before it runs its command (a no-op once opened)."""
        self._finish(go=False)

    def _finish(self, *, go: bool) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if go:
                with contextlib.suppress(BrokenPipeError):  # the child is already gone
                    os.write(fd, b"\n")
        finally:
            os.close(fd)


def _executable(program: str, env: Mapping[str, str]) -> str:
    """The file ``program`` names, as exec would find it; the OSError Popen would raise if none."""
    found = program if os.sep in program else shutil.which(program, path=env.get("PATH"))
    if found is None or not os.path.isfile(found):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    if not os.access(found, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
    return found


def spawn_gated(
    cmd: Sequence[str], *, stdout: IO[bytes], env: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], Gate]:
    """Start ``cmd`` held (see the module doc); OSError, as Popen's, when it cannot be run."""
    _executable(cmd[0], env)
    read_end, write_end = os.pipe()  # both non-inheritable: only stdin reaches the child
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", _HOLD, "sh", *cmd],
            stdin=read_end,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env),
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return proc, Gate(write_end)
