"""The stack's admin token: random per stack, in a 0600 file of the state dir, never on argv.

Components get it through their environment (``CHAOS_REC_ADMIN_TOKEN``), which only the
same user can read, unlike a command line (``ps`` shows it to every local user). The state
and config files never hold it. The supervisor's control API and the components' admin APIs
require it; drills read it from this file (or from a Chaos Toolkit secret).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

__all__ = ["TOKEN_ENV", "TOKEN_FILE", "forget_token", "read_token", "write_token"]

TOKEN_FILE: Final = "admin_token"
TOKEN_ENV: Final = "CHAOS_REC_ADMIN_TOKEN"


def write_token(state_dir: Path, token: str | None = None) -> str:
    """Write ``token`` (or a fresh random one) to ``<state_dir>/admin_token``, mode 0600."""
    value = token or secrets.token_urlsafe(24)
    path = Path(state_dir) / TOKEN_FILE
    path.unlink(missing_ok=True)  # a new file: no other reader kept an open descriptor
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, value.encode("utf-8"))
    finally:
        os.close(fd)
    return value


def read_token(state_dir: Path) -> str | None:
    """The stack's token, or None when the state dir holds none."""
    try:
        return (Path(state_dir) / TOKEN_FILE).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def forget_token(state_dir: Path) -> None:
    """Remove the token file (the stack is down: the next one gets a new token)."""
    (Path(state_dir) / TOKEN_FILE).unlink(missing_ok=True)
