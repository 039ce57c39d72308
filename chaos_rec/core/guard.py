"""The rollback guarantee: repair after every drill, and after a crashed session."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos_rec.core.ledger import FaultLedger, UndoReport
from chaos_rec.core.rundir import stop_stale_load
from chaos_rec.errors import ChaosRecError, FaultError, StackNotRunning

__all__ = ["MARKER", "DrillGuard", "halt", "repair", "undo_faults"]

MARKER = "drill-in-progress.json"


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped by its parent, has ended)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust the signal check
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def repair(state_dir: Path, toxiproxy_url: str | None = None) -> list[str]:
    """Undo every fault: the reference stack's own repair, else a fault-proxy reset."""
    done: list[str] = []
    if (state_dir / "stack.json").is_file():
        from chaos_rec import stack

        try:
            done += [f"stack: {what}" for what in stack.repair(state_dir)]
        except StackNotRunning:
            pass
        except ChaosRecError as exc:
            raise FaultError(f"could not repair the reference stack in {state_dir}: {exc}") from exc
        else:
            return done
    if toxiproxy_url:
        from chaos_rec.toxiproxy.client import ToxiproxyClient

        try:
            client = ToxiproxyClient(toxiproxy_url, timeout=5.0)
            proxies = client.proxies()
            dirty = [n for n, p in proxies.items() if p.get("toxics") or not p.get("enabled", True)]
            client.reset()
        except ChaosRecError as exc:
            raise FaultError(f"could not reset the fault proxy at {toxiproxy_url}: {exc}") from exc
        done += [f"fault proxy: reset {name}" for name in dirty]
    return done


def undo_faults(ledger: FaultLedger, state_dir: Path | None, *, reference: bool) -> UndoReport:
    """Undo this process's faults (newest first), then repair the reference stack if targeted."""
    report = ledger.undo_all()
    done = list(report.done)
    if reference:
        from chaos_rec import stack

        with contextlib.suppress(ChaosRecError):  # no stack running: nothing more to repair
            done += stack.repair(state_dir)
    return UndoReport(done, report.errors)


def _stop_stale_load(state_dir: Path) -> list[str]:
    """Stop the load generators (Locust) a crashed session left running, from their pid files."""
    done = []
    for pid_file in sorted(state_dir.glob("runs/*/*.pid")):
        if stop_stale_load(pid_file.parent, pid_file.stem):
            done.append(f"stopped the load generator of run {pid_file.parent.name}")
    return done


Repairer = Callable[[Path, str | None], list[str]]


class DrillGuard:
    """Marks a drill in progress on disk so that a crashed session is repaired by the next one.

    ``repairer`` undoes every fault on the target (default :func:`repair`: the reference
    stack's own repair, else a reset of the deployment's fault proxy).
    """

    def __init__(
        self, state_dir: Path, toxiproxy_url: str | None = None, repairer: Repairer | None = None
    ) -> None:
        self.state_dir = state_dir
        self.toxiproxy_url = toxiproxy_url
        self.marker = state_dir / MARKER
        self.repairer: Repairer = repairer or repair

    def begin(self, drill: str) -> None:
        """Record that ``drill`` is about to inject faults."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = {
            "pid": os.getpid(),
            "drill": drill,
            "started": time.time(),
            "toxiproxy_url": self.toxiproxy_url,
        }
        self.marker.write_text(json.dumps(data), encoding="utf-8")

    def end(self) -> list[str]:
        """Repair everything, then clear the marker; returns what was repaired."""
        done = self.repairer(self.state_dir, self.toxiproxy_url)
        self.marker.unlink(missing_ok=True)
        return done

    def _marker_data(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def other_session(self) -> dict[str, Any] | None:
        """The marker of a drill another live process is running on this state dir, if any."""
        data = self._marker_data()
        if data is None:
            return None
        pid = int(data.get("pid", 0) or 0)
        return data if pid != os.getpid() and _pid_alive(pid) else None

    def leftovers(self) -> dict[str, Any] | None:
        """The marker of a drill whose session died (its pid is gone), if any."""
        data = self._marker_data()
        if data is None:
            return None
        pid = int(data.get("pid", 0) or 0)
        if pid == os.getpid() or _pid_alive(pid):
            return None
        return data

    def recover(self) -> list[str]:
        """Repair what a crashed session left behind; returns human-readable lines."""
        left = self.leftovers()
        stale_stack = (self.state_dir / "stack.json").is_file()
        if left is None and not stale_stack:
            return []
        url = self.toxiproxy_url or (left or {}).get("toxiproxy_url")
        done = self.repairer(self.state_dir, url)
        if left is not None:
            done += _stop_stale_load(self.state_dir)
        lines: list[str] = []
        if left is not None:
            lines.append(
                f"drill {left.get('drill', '?')} (pid {left.get('pid')}) did not finish: repaired "
                + (", ".join(done) if done else "nothing was left")
            )
            with contextlib.suppress(FileNotFoundError):
                self.marker.unlink()
        elif done:
            lines.append("repaired leftovers: " + ", ".join(done))
        return lines


def halt(state_dir: Path, toxiproxy_url: str | None = None, *, grace_s: float = 10.0) -> list[str]:
    """The emergency stop: interrupt a drill in progress, then undo every fault there is.

    A live drill session on ``state_dir`` gets SIGINT first (it rolls back as on Ctrl-C) and up
    to ``grace_s`` to end; then the target is repaired whatever it did (the reference stack's
    own repair, else a reset of the fault proxy) and every run's leftover load generator is
    stopped. Returns what was done, one line each.
    """
    guard = DrillGuard(state_dir, toxiproxy_url)
    done: list[str] = []
    live = guard.other_session()
    if live is not None:
        pid = int(live["pid"])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + grace_s
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        state = "ended" if not _pid_alive(pid) else f"still running after {grace_s:g} s"
        done.append(f"interrupted drill {live.get('drill', '?')} (pid {pid}): {state}")
    url = toxiproxy_url or (live or guard._marker_data() or {}).get("toxiproxy_url")
    done += repair(state_dir, url)
    done += _stop_stale_load(state_dir)
    if live is None or not _pid_alive(int(live["pid"])):
        guard.marker.unlink(missing_ok=True)
    return done
