"""Replica faults: lose a GPU node (SIGKILL) or hang it (SIGSTOP), and their rollbacks."""

from __future__ import annotations

from typing import Any

from chaos_rec import backends
from chaos_rec.actions._common import Cfg, ledger, mark, setup
from chaos_rec.backends.net import wait_until
from chaos_rec.errors import FaultError

__all__ = ["hang_replica", "kill_replica", "resume_replica", "wait_replica_restored"]


def kill_replica(
    target: str = "replica:0", *, configuration: Cfg = None, secrets: Cfg = None
) -> dict[str, Any]:
    """Lose a GPU node: SIGKILL a replica (the supervisor restarts it); verifies it died."""
    cfg, dep = setup(configuration, secrets)
    rep = dep.replica(target)
    procs = backends.processes(dep, "kill_replica")
    pid = procs.pid(rep.name)
    procs.kill(rep.name)
    if not wait_until(lambda: procs.state(rep.name, pid) in ("X", "Z"), 5.0):
        raise FaultError(f"{rep.name} (pid {pid}) still alive 5s after SIGKILL")
    mark(cfg, "fault", "kill_replica")
    ledger().remember(
        f"kill:{rep.name}",
        f"wait for {rep.name} to be restored",
        lambda: wait_replica_restored(target, configuration=configuration, secrets=secrets),
    )
    return {"replica": rep.name, "killed_pid": pid}


def wait_replica_restored(
    target: str = "replica:0",
    timeout_s: float = 120.0,
    *,
    configuration: Cfg = None,
    secrets: Cfg = None,
) -> dict[str, Any]:
    """Wait until the supervisor has restored a replica and it reports ready."""
    cfg, dep = setup(configuration, secrets)
    rep = dep.replica(target)
    procs = backends.processes(dep, "wait_replica_restored")
    waited = procs.wait_restored(rep.name, timeout_s)
    ledger().forget(f"kill:{rep.name}")
    mark(cfg, "recovery", "wait_replica_restored")
    return {"replica": rep.name, "waited_s": round(waited, 3), "pid": procs.pid(rep.name)}


def hang_replica(
    target: str = "replica:0", *, configuration: Cfg = None, secrets: Cfg = None
) -> dict[str, Any]:
    """Hang a GPU node: SIGSTOP a replica; verifies its /proc state is T (stopped)."""
    cfg, dep = setup(configuration, secrets)
    rep = dep.replica(target)
    procs = backends.processes(dep, "hang_replica")
    pid = procs.pid(rep.name)
    ledger().remember(
        f"hang:{rep.name}",
        f"resume {rep.name}",
        lambda: resume_replica(target, configuration=configuration, secrets=secrets),
    )
    procs.hang(rep.name)
    if not wait_until(lambda: procs.state(rep.name, pid) == "T", 3.0):
        procs.resume(rep.name)
        ledger().forget(f"hang:{rep.name}")
        raise FaultError(f"{rep.name} (pid {pid}) is not stopped 3s after SIGSTOP")
    mark(cfg, "fault", "hang_replica")
    return {"replica": rep.name, "pid": pid, "state": "T"}


def resume_replica(
    target: str = "replica:0", *, configuration: Cfg = None, secrets: Cfg = None
) -> dict[str, Any]:
    """Resume a hung replica (SIGCONT); verifies it is no longer stopped."""
    cfg, dep = setup(configuration, secrets)
    rep = dep.replica(target)
    procs = backends.processes(dep, "resume_replica")
    pid = procs.pid(rep.name)
    was_stopped = procs.state(rep.name, pid) == "T"
    procs.resume(rep.name)
    if not wait_until(lambda: procs.state(rep.name, pid) != "T", 3.0):
        raise FaultError(f"{rep.name} (pid {pid}) still stopped 3s after SIGCONT")
    ledger().forget(f"hang:{rep.name}")
    if was_stopped:
        mark(cfg, "recovery", "resume_replica")
    return {"replica": rep.name, "pid": pid, "state": procs.state(rep.name, pid)}
