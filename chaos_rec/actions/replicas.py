"""Replica faults: lose a GPU node (SIGKILL) or hang it (SIGSTOP), and their rollbacks."""

from __future__ import annotations

import time
from typing import Any

from chaos_rec.actions._common import Cfg, forget, mark, remember, setup
from chaos_rec.errors import FaultError
from chaos_rec.targets import Deployment, admin_request, proc_state

__all__ = ["hang_replica", "kill_replica", "resume_replica", "wait_replica_restored"]


def _replica_pid(dep: Deployment, name: str) -> int:
    from chaos_rec.stack import load_state

    pid = load_state(dep.state_dir).component(name).get("pid")
    if not pid:
        raise FaultError(f"{name} has no running process (status not ready); wait for it first")
    return int(pid)


def kill_replica(
    target: str = "replica:0", *, configuration: Cfg = None, secrets: Cfg = None
) -> dict[str, Any]:
    """Lose a GPU node: SIGKILL a replica (the supervisor restarts it); verifies it died."""
    from chaos_rec.stack import signal_component

    cfg, dep = setup(configuration, secrets)
    rep = dep.replica(target)
    sdir = dep.require_managed("kill_replica")
    pid = _replica_pid(dep, rep.name)
    signal_component(rep.name, "kill", sdir)
    deadline = time.monotonic() + 5.0
    while proc_state(pid) not in ("X", "Z"):
        if time.monotonic() > deadline:
            raise FaultError(f"{rep.name} (pid {pid}) still alive 5s after SIGKILL")
        time.sleep(0.02)
    mark(cfg, "fault", "kill_replica")
    remember(
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
    from chaos_rec.stack import wait_component_ready

    cfg, dep = setup(configuration, secrets)
    rep = dep.replica(target)
    waited = wait_component_ready(rep.name, timeout_s, dep.require_managed("wait_replica_restored"))
    if rep.http_url:
        status, _ = admin_request(rep.http_url, "GET", "/v2/health/ready", token=None, timeout=5.0)
        if status != 200:
            raise FaultError(f"{rep.name} restarted but /v2/health/ready answers {status}")
    forget(f"kill:{rep.name}")
    mark(cfg, "recovery", "wait_replica_restored")
    return {"replica": rep.name, "waited_s": round(waited, 3), "pid": _replica_pid(dep, rep.name)}


def hang_replica(
    target: str = "replica:0", *, configuration: Cfg = None, secrets: Cfg = None
) -> dict[str, Any]:
    """Hang a GPU node: SIGSTOP a replica; verifies its /proc state is T (stopped)."""
    from chaos_rec.stack import signal_component

    cfg, dep = setup(configuration, secrets)
    rep = dep.replica(target)
    sdir = dep.require_managed("hang_replica")
    pid = _replica_pid(dep, rep.name)
    remember(
        f"hang:{rep.name}",
        f"resume {rep.name}",
        lambda: resume_replica(target, configuration=configuration, secrets=secrets),
    )
    signal_component(rep.name, "stop", sdir)
    deadline = time.monotonic() + 3.0
    while proc_state(pid) != "T":
        if time.monotonic() > deadline:
            signal_component(rep.name, "cont", sdir)
            forget(f"hang:{rep.name}")
            raise FaultError(f"{rep.name} (pid {pid}) is not stopped 3s after SIGSTOP")
        time.sleep(0.02)
    mark(cfg, "fault", "hang_replica")
    return {"replica": rep.name, "pid": pid, "state": "T"}


def resume_replica(
    target: str = "replica:0", *, configuration: Cfg = None, secrets: Cfg = None
) -> dict[str, Any]:
    """Resume a hung replica (SIGCONT); verifies it is no longer stopped."""
    from chaos_rec.stack import signal_component

    cfg, dep = setup(configuration, secrets)
    rep = dep.replica(target)
    pid = _replica_pid(dep, rep.name)
    was_stopped = proc_state(pid) == "T"
    signal_component(rep.name, "cont", dep.require_managed("resume_replica"))
    deadline = time.monotonic() + 3.0
    while proc_state(pid) == "T":
        if time.monotonic() > deadline:
            raise FaultError(f"{rep.name} (pid {pid}) still stopped 3s after SIGCONT")
        time.sleep(0.02)
    forget(f"hang:{rep.name}")
    if was_stopped:
        mark(cfg, "recovery", "resume_replica")
    return {"replica": rep.name, "pid": pid, "state": proc_state(pid)}
