"""The public stack API: up, down, load_state, signal/restart/wait for components, repair."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from chaos_rec.errors import ChaosRecError, ConfigError, ProxyError, StackError, StackNotRunning
from chaos_rec.jsonhttp import call
from chaos_rec.stack import procs
from chaos_rec.stack.components import build_plan, missing_modules
from chaos_rec.stack.config import StackConfig
from chaos_rec.stack.links import delete_links, reset_proxy
from chaos_rec.stack.prometheus import PROMETHEUS_DIR
from chaos_rec.stack.secret import forget_token, read_token, write_token
from chaos_rec.stack.state import (
    CONFIG_FILE,
    ERROR_FILE,
    StackState,
    last_line,
    read_state,
    resolve_state_dir,
)

__all__ = [
    "down",
    "load_state",
    "repair",
    "restart_component",
    "signal_component",
    "up",
    "wait_component_ready",
]

Action = Literal["kill", "stop", "cont"]
_CONTROL_TIMEOUT = 10.0


def _supervisor_alive(state: StackState) -> bool:
    pid = state.supervisor_pid
    if pid is None:
        return False
    sup = state.get("supervisor") or {}
    return procs.same_process(pid, [sys.executable], sup.get("proc_start"))


def load_state(state_dir: Path | None = None, *, require_live: bool = True) -> StackState:
    """Read the state file; StackNotRunning when there is none or its supervisor is gone."""
    sdir = resolve_state_dir(state_dir)
    state = read_state(sdir)
    if require_live and not _supervisor_alive(state):
        raise StackNotRunning(
            f"the stack supervisor (pid {state.supervisor_pid}) is gone; "
            "run `chaos-rec stack down` to clean up its leftovers"
        )
    return state


def _preflight(config: StackConfig) -> None:
    plan = build_plan(config)  # resolves the redis binary (ConfigError when missing)
    missing = missing_modules(plan)
    if missing:
        raise ConfigError(
            f"the stack needs module(s) {', '.join(missing)}, which are not installed here "
            "(set replicas = 0, gateway = false, toxiproxy = false or setup = false to skip them)"
        )
    if (config.replicas > 0) and not config.bundle.is_dir():
        raise ConfigError(f"model bundle {config.bundle} does not exist (set bundle = DIR)")
    busy = [
        f"{port} ({label})" for label, port in config.ports().items() if procs.port_in_use(port)
    ]
    if busy:
        raise ConfigError(f"port(s) in use: {', '.join(busy)} (choose another base_port)")


def up(config: StackConfig, on_progress: Callable[[StackState], None] | None = None) -> StackState:
    """Start the stack under a detached supervisor and return its state once all is ready.

    ``on_progress`` sees the state file each time it is read while the stack comes up (the
    CLI prints each component as it becomes ready).
    """
    sdir = config.state_dir
    with contextlib.suppress(StackNotRunning):
        state = read_state(sdir)
        if _supervisor_alive(state) and state.get("phase") == "ready":
            return state
        down(sdir)  # leftovers of a crashed or half-started stack
    _preflight(config)
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / "logs").mkdir(exist_ok=True)
    (sdir / ERROR_FILE).unlink(missing_ok=True)
    (sdir / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=1), encoding="utf-8")
    write_token(sdir, config.admin_token)  # 0600; the supervisor hands it on by environment
    sup_log = sdir / "logs" / "supervisor.log"
    with sup_log.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chaos_rec.stack.supervisor", "--state-dir", str(sdir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"),
        )
    n = len(build_plan(config).components)
    deadline = time.monotonic() + config.ready_timeout_s * (n + 2) + 30
    try:
        while True:
            rc = proc.poll()
            if rc is not None:
                err = sdir / ERROR_FILE
                line = err.read_text().strip() if err.exists() else last_line(sup_log)
                down(sdir)
                raise StackError(line or f"stack supervisor exited with code {rc}")
            with contextlib.suppress(StackError):
                state = read_state(sdir)
                if on_progress is not None and state.supervisor_pid == proc.pid:
                    on_progress(state)
                if state.get("phase") == "ready" and state.supervisor_pid == proc.pid:
                    return state
            if time.monotonic() > deadline:
                raise StackError(f"stack not ready in time; see {sdir / 'logs'}")
            time.sleep(0.1)
    except BaseException:
        _stop_supervisor(proc)
        down(sdir)
        raise


def _stop_supervisor(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        procs.kill_tree(proc.pid, grace=15.0)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def down(state_dir: Path | None = None) -> None:
    """Stop the stack (also when its supervisor is gone): no process and no port left."""
    sdir = resolve_state_dir(state_dir)
    try:
        state = read_state(sdir)
    except StackNotRunning:
        return
    sup_pid = state.supervisor_pid
    if sup_pid and _supervisor_alive(state):
        try:
            _control(state, "/shutdown", {})
        except ChaosRecError:  # no answer, a refusal or a bad control URL
            with contextlib.suppress(OSError):  # SIGTERM asks it to stop the same way
                os.kill(sup_pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and procs.is_alive(sup_pid):
            time.sleep(0.05)
        if _supervisor_alive(state):
            procs.kill_tree(sup_pid, grace=1.0)
    ports: list[int] = []
    leftovers: list[int] = []
    for comp in state.components():
        ports += list(comp["ports"].values())
        pid = comp.get("pid")
        if pid and procs.same_process(pid, comp["cmd"], comp.get("proc_start")):
            leftovers.append(pid)
    procs.kill_many(leftovers, grace=3.0)
    cfg = state.get("config") or {}
    tox = state.get("toxiproxy_url")
    links = state.get("links") or {}
    if tox and cfg.get("toxiproxy_url"):  # external fault proxy: remove our links from it
        with contextlib.suppress(ProxyError, ConfigError):  # unreachable or a bad URL
            delete_links(str(tox), list(links))
    elif links:
        ports += [int(link["listen"].rpartition(":")[2]) for link in links.values()]
    held = procs.wait_ports_free(ports, timeout=10.0)
    if held:
        raise StackError(f"stack stopped but port(s) still held: {', '.join(map(str, held))}")
    (sdir / "stack.json").unlink(missing_ok=True)
    forget_token(sdir)
    shutil.rmtree(sdir / PROMETHEUS_DIR, ignore_errors=True)  # its samples go with the stack


def _control(state: StackState, path: str, body: dict[str, Any]) -> None:
    """POST to the supervisor's control API; StackError when it refuses or does not answer."""
    url = state.control_url
    if not url:
        raise StackNotRunning("the stack state names no supervisor control API")
    timeout = float((state.get("config") or {}).get("ready_timeout_s", 60)) + 20
    if path == "/shutdown":
        timeout = _CONTROL_TIMEOUT
    headers = {"Authorization": f"Bearer {read_token(state.state_dir) or ''}"}
    reply = call(
        "POST",
        url + path,
        json=body,
        timeout=timeout,
        headers=headers,
        into=StackError,
        what=f"stack supervisor {path[1:]}",
    )
    if not reply.ok:
        raise StackError(f"supervisor refused {path[1:]}: {reply.error_message()}")


def signal_component(name: str, action: Action, state_dir: Path | None = None) -> None:
    """SIGKILL (``kill``), SIGSTOP (``stop``) or SIGCONT (``cont``) one component."""
    if action not in ("kill", "stop", "cont"):
        raise ConfigError(f"action must be kill, stop or cont, got {action!r}")
    state = load_state(state_dir)
    state.component(name)
    _control(state, "/signal", {"name": name, "action": action})


def restart_component(name: str, *, wipe: bool = False, state_dir: Path | None = None) -> None:
    """Restart one component and wait until it is ready (``wipe``: drop its data first)."""
    state = load_state(state_dir)
    state.component(name)
    _control(state, "/restart", {"name": name, "wipe": wipe})


def wait_component_ready(name: str, timeout: float, state_dir: Path | None = None) -> float:
    """Wait until ``name`` is ready (not paused); returns the seconds waited."""
    t0 = time.monotonic()
    while True:
        state = load_state(state_dir)
        comp = state.component(name)
        if comp["status"] == "ready" and not comp["paused"]:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise StackError(
                f"{name} not ready after {timeout:g}s (status {comp['status']}, "
                f"restarts {comp['restarts']})"
            )
        time.sleep(0.05)


def repair(state_dir: Path | None = None) -> list[str]:
    """Undo every fault: SIGCONT paused processes, clear toxics, re-enable links; says what."""
    state = load_state(state_dir)
    done: list[str] = []
    for comp in state.components():
        pid = comp.get("pid")
        if comp["paused"] or (pid and procs.is_paused(pid)):
            _control(state, "/signal", {"name": comp["name"], "action": "cont"})
            done.append(f"resumed {comp['name']}")
    limit = float((state.get("config") or {}).get("ready_timeout_s", 60))
    for comp in load_state(state_dir).components():
        if comp["status"] != "ready":  # e.g. killed and still coming back
            wait_component_ready(comp["name"], limit, state_dir)
            done.append(f"waited for {comp['name']} to be ready again")
    tox = state.get("toxiproxy_url")
    if tox:
        done += reset_proxy(str(tox), state.get("links") or {})
    return done
