"""Runtime records the supervisor keeps: one per component, one per control request."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_rec.stack.components import ComponentSpec
from chaos_rec.stack.state import ComponentState, Status

__all__ = ["Child", "Command"]


@dataclass
class Child:
    """Runtime record of one supervised component."""

    spec: ComponentSpec
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    proc_start: int | None = None
    status: Status = "stopped"
    restarts: int = 0
    failures: int = 0
    next_restart: float = 0.0
    started: float = 0.0
    ready_since: float | None = None
    paused: bool = False

    def record(self) -> ComponentState:
        """This component as the state file names it."""
        alive = self.proc is not None and self.proc.poll() is None
        return {
            "name": self.spec.name,
            "role": self.spec.role,
            "pid": self.proc.pid if alive and self.proc else None,
            "proc_start": self.proc_start if alive else None,
            "cmd": list(self.spec.cmd),
            "ports": dict(self.spec.ports),
            "endpoints": dict(self.spec.endpoints),
            "status": self.status,
            "restarts": self.restarts,
            "replica": self.spec.replica,
            "paused": self.paused,
            "log": str(self.log),
        }


@dataclass
class Command:
    """A control request handed from the API thread to the main loop."""

    op: str
    args: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    reply: tuple[int, dict[str, Any]] = (500, {"error": "not handled"})
