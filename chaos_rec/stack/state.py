"""The stack state file (``<state_dir>/stack.json``): shape, atomic write, read."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal, TypedDict

from chaos_rec.errors import StackError, StackNotRunning
from chaos_rec.settings import resolve_state_dir  # explicit > CHAOS_REC_STATE_DIR > .chaos-rec

__all__ = [
    "CONFIG_FILE",
    "ERROR_FILE",
    "STATE_FILE",
    "ComponentState",
    "LinkState",
    "StackState",
    "Status",
    "last_line",
    "read_state",
    "resolve_state_dir",
    "write_state",
]

STATE_FILE = "stack.json"
CONFIG_FILE = "supervisor.config.json"  # the config the supervisor runs with
ERROR_FILE = "supervisor.error"  # one line: why the supervisor could not start the stack
STATE_VERSION = 1
Status = Literal["starting", "ready", "paused", "restarting", "dead", "stopped"]


class ComponentState(TypedDict):
    """One supervised process, as the state file names it."""

    name: str
    role: str
    pid: int | None
    proc_start: int | None  # /proc/<pid>/stat start time: guards against pid reuse
    cmd: list[str]
    ports: dict[str, int]
    endpoints: dict[str, str]
    status: Status
    restarts: int
    replica: int | None
    paused: bool
    log: str


class LinkState(TypedDict):
    """One fault-proxy link."""

    listen: str
    upstream: str


class StackState(dict[str, Any]):
    """The state file's JSON object, with a few typed helpers."""

    def component(self, name: str) -> ComponentState:
        """The component called ``name`` (StackError when the stack has none)."""
        comps: dict[str, ComponentState] = self.get("components", {})
        if name not in comps:
            known = ", ".join(sorted(comps)) or "none"
            raise StackError(f"no component {name!r} in the stack (components: {known})")
        return comps[name]

    def components(self) -> list[ComponentState]:
        """Every component, in start order."""
        comps: dict[str, ComponentState] = self.get("components", {})
        return list(comps.values())

    def replicas(self) -> list[ComponentState]:
        """The model-server replicas, by index."""
        reps = [c for c in self.components() if c["role"] == "replica"]
        return sorted(reps, key=lambda c: c["replica"] or 0)

    @property
    def state_dir(self) -> Path:
        """The folder holding this state file."""
        return Path(self["state_dir"])

    @property
    def control_url(self) -> str | None:
        """The supervisor's loopback control API, if it is recorded."""
        sup = self.get("supervisor") or {}
        url = sup.get("control_url")
        return str(url) if url else None

    @property
    def supervisor_pid(self) -> int | None:
        """The supervisor's pid, if recorded."""
        sup = self.get("supervisor") or {}
        pid = sup.get("pid")
        return int(pid) if pid else None


def read_state(state_dir: Path) -> StackState:
    """Read ``<state_dir>/stack.json``; StackNotRunning when there is none."""
    path = state_dir / STATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise StackNotRunning(f"no stack state at {path} (run `chaos-rec stack up`)") from exc
    except OSError as exc:
        raise StackError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StackError(f"corrupt stack state {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise StackError(f"unsupported stack state {path} (expected version {STATE_VERSION})")
    return StackState(data)


def write_state(state_dir: Path, state: dict[str, Any]) -> None:
    """Write the state file atomically (temp file + rename)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".stack.", suffix=".json", dir=state_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=1, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, state_dir / STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def last_line(path: Path, limit: int = 240) -> str:
    """The last non-empty line of a log file (for one-line errors)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            lines = [ln.strip() for ln in fh.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    return lines[-1][:limit] if lines else ""
