"""The stack supervisor: a detached process that starts, watches and restarts components.

Started by :func:`chaos_rec.stack.up` as ``python -m chaos_rec.stack.supervisor --state-dir D``
in its own session. It owns the state file while it lives and removes it when it stops.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from chaos_rec.errors import ChaosRecError, StackError
from chaos_rec.stack import procs
from chaos_rec.stack.components import Hook, StackPlan, build_plan, start_waves
from chaos_rec.stack.config import StackConfig
from chaos_rec.stack.control import ControlServer
from chaos_rec.stack.links import ensure_links
from chaos_rec.stack.records import Child, Command
from chaos_rec.stack.secret import TOKEN_ENV, read_token, write_token
from chaos_rec.stack.spawn import spawn_gated
from chaos_rec.stack.state import (
    CONFIG_FILE,
    ERROR_FILE,
    STATE_FILE,
    STATE_VERSION,
    last_line,
    write_state,
)

__all__ = ["Supervisor", "main"]

STABLE_S = 30.0  # ready this long -> the back-off resets
TICK_S = 0.1


class StartupError(StackError):
    """The stack could not be brought up."""


class Supervisor:
    """Runs one stack plan until asked to stop."""

    def __init__(self, plan: StackPlan) -> None:
        self.plan = plan
        self.config: StackConfig = plan.config
        self.state_dir = self.config.state_dir
        logs = self.state_dir / "logs"
        self.children = {s.name: Child(s, logs / f"{s.name}.log") for s in plan.components}
        self.stop_event = threading.Event()
        self.commands: queue.Queue[Command] = queue.Queue()
        self.phase = "starting"
        self.stack_id = uuid.uuid4().hex[:12]
        self.started_at = time.time()
        token = read_token(self.state_dir) or write_token(self.state_dir, self.config.admin_token)
        self.control = ControlServer(self.handle, token)
        self.snapshot: dict[str, Any] = {}
        self.env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env[TOKEN_ENV] = token  # components read it from their environment, not argv

    # ---- lifecycle ----------------------------------------------------
    def run(self) -> int:
        """Start everything, supervise until stopped; 0 on a clean stop, 1 on a failed start."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: self.stop_event.set())
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.control.start()
        self.write()
        code = 0
        try:
            for wave in self._waves():  # parts whose dependencies are ready start together
                for child in wave:
                    self._spawn(child)
                deadline = time.monotonic() + self.config.ready_timeout_s
                for child in wave:
                    self._await_ready(child, deadline)
                    self._run_hooks(child, first=True, wiped=False)
                    self._became_ready(child)
            self.phase = "ready"
            self.write()
            self._loop()
        except ChaosRecError as exc:
            line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            (self.state_dir / ERROR_FILE).write_text(line + "\n", encoding="utf-8")
            code = 1
        finally:
            self.phase = "stopping"
            self.write()
            self._stop_all()
            self.control.close()
            self._remove_state()
        return code

    def _waves(self) -> list[list[Child]]:
        return [[self.children[s.name] for s in wave] for wave in start_waves(self.plan.components)]

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            self._drain()
            changed = False
            for child in self.children.values():
                changed |= self._tick(child)
            if changed:
                self.write()
            self.stop_event.wait(TICK_S)

    def _tick(self, child: Child) -> bool:
        now = time.monotonic()
        if child.status == "restarting":
            if now < child.next_restart:
                return False
            child.restarts += 1
            try:
                self._spawn(child)
            except StartupError as exc:
                self._died(child, str(exc))
            return True
        if child.proc is None:
            return False
        rc = child.proc.poll()
        if rc is not None:
            self._died(child, f"exited with code {rc}")
            return True
        if child.status == "starting":
            if child.spec.ready(0.5):
                self._run_hooks(child, first=False, wiped=False)  # ready = hooks done too
                self._became_ready(child)
                return True
            if now - child.started > self.config.ready_timeout_s:
                self._log(f"{child.spec.name} not ready in time; killing it")
                procs.kill_tree(child.proc.pid, grace=1.0)
            return False
        paused = procs.is_paused(child.proc.pid)
        if paused != child.paused:
            child.paused = paused
            child.status = "paused" if paused else "ready"
            return True
        if child.failures and child.ready_since and now - child.ready_since > STABLE_S:
            child.failures = 0
        return False

    # ---- processes ----------------------------------------------------
    def _spawn(self, child: Child) -> None:
        child.log.parent.mkdir(parents=True, exist_ok=True)
        if child.spec.data_dir is not None:
            child.spec.data_dir.mkdir(parents=True, exist_ok=True)
        with child.log.open("ab") as log:
            try:
                child.proc, gate = spawn_gated(child.spec.cmd, stdout=log, env=self.env)
            except OSError as exc:
                raise StartupError(f"cannot start {child.spec.name}: {exc}") from exc
        try:
            child.proc_start = procs.proc_start_time(child.proc.pid)
            child.status, child.started, child.ready_since, child.paused = (
                "starting",
                time.monotonic(),
                None,
                False,
            )
            self.write()  # the child runs its command only once its pid is in the state file
            gate.open()
        finally:
            gate.close()

    def _await_ready(self, child: Child, deadline: float) -> None:
        assert child.proc is not None
        name = child.spec.name
        while True:
            if self.stop_event.is_set():
                raise StartupError(f"interrupted while starting {name}")
            rc = child.proc.poll()
            if rc is not None:
                raise StartupError(
                    f"{name} exited with code {rc} before it was ready: {last_line(child.log)}"
                    f" (log: {child.log})"
                )
            if child.spec.ready(1.0):
                return
            if time.monotonic() > deadline:
                raise StartupError(
                    f"{name} not ready within {self.config.ready_timeout_s:g}s "
                    f"({child.spec.ready.describe()}); log: {child.log}"
                )
            time.sleep(TICK_S)

    def _became_ready(self, child: Child) -> None:
        child.status, child.ready_since = "ready", time.monotonic()
        self.write()

    def _died(self, child: Child, why: str) -> None:
        child.failures += 1
        delay = min(
            self.config.restart_backoff_s * 2 ** (child.failures - 1),
            self.config.restart_backoff_max_s,
        )
        child.status, child.next_restart, child.paused = (
            "restarting",
            time.monotonic() + delay,
            False,
        )
        self._log(f"{child.spec.name} {why}; restarting in {delay:.2f}s")

    def _stop(self, child: Child) -> None:
        if child.proc is not None and child.proc.poll() is None:
            procs.kill_tree(child.proc.pid, grace=3.0)
            try:
                child.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._log(f"{child.spec.name} (pid {child.proc.pid}) did not exit")
        child.status = "stopped"

    def _stop_all(self) -> None:
        running = [c for c in self.children.values() if c.proc and c.proc.poll() is None]
        procs.kill_many([c.proc.pid for c in running if c.proc], grace=3.0)
        for child in self.children.values():
            self._stop(child)  # reaps; SIGKILLs anything still there

    def _run_hooks(self, child: Child, *, first: bool, wiped: bool) -> None:
        for hook in child.spec.hooks:
            if (not first and not hook.on_restart) or (wiped and hook.skip_on_wipe):
                continue
            try:
                self._run_hook(child, hook)
            except ChaosRecError:
                if first:
                    raise
                self._log(f"hook {hook.name} of {child.spec.name} failed after a restart")

    def _run_hook(self, child: Child, hook: Hook) -> None:
        if hook.links:
            if self.plan.toxiproxy_url:
                ensure_links(self.plan.toxiproxy_url, self.plan.links)
            return
        log_path = self.state_dir / "logs" / f"setup-{hook.name}.log"
        with log_path.open("ab") as log:
            try:
                rc = subprocess.run(
                    hook.cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    timeout=self.config.ready_timeout_s,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired as exc:
                raise StartupError(f"setup step {hook.name} timed out; log: {log_path}") from exc
        if rc != 0:
            raise StartupError(
                f"setup step {hook.name} failed (exit {rc}): {last_line(log_path)} (log: {log_path})"
            )

    # ---- control API --------------------------------------------------
    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one control request (runs on the API thread)."""
        if method == "GET" and path == "/state":
            return 200, self.snapshot
        if method == "POST" and path == "/shutdown":
            self.stop_event.set()
            return 202, {"ok": True}
        if method == "POST" and path in ("/signal", "/restart"):
            if self.phase != "ready":
                return 409, {"error": f"stack is {self.phase}"}
            cmd = Command(path[1:], body)
            self.commands.put(cmd)
            if not cmd.done.wait(self.config.ready_timeout_s + 15):
                return 504, {"error": f"{path[1:]} did not finish in time"}
            return cmd.reply
        return 404, {"error": f"no such endpoint {method} {path}"}

    def _drain(self) -> None:
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                return
            try:
                cmd.reply = self._execute(cmd)
            except ChaosRecError as exc:
                cmd.reply = (409, {"error": str(exc)})
            finally:
                self.write()
                cmd.done.set()

    def _execute(self, cmd: Command) -> tuple[int, dict[str, Any]]:
        name = str(cmd.args.get("name"))
        child = self.children.get(name)
        if child is None:
            return 404, {"error": f"no component {name!r} (known: {', '.join(self.children)})"}
        if cmd.op == "restart":
            if not isinstance(wipe := cmd.args.get("wipe", False), bool):
                return 400, {"error": f"wipe must be true or false, got {wipe!r}"}
            return self._restart(child, wipe=wipe)
        action = cmd.args.get("action")
        if action not in ("kill", "stop", "cont"):
            return 400, {"error": f"action must be kill, stop or cont, got {action!r}"}
        if child.proc is None or child.proc.poll() is not None:
            return 409, {"error": f"{name} is not running (status {child.status})"}
        pid = child.proc.pid
        if action == "kill":
            os.killpg(pid, signal.SIGKILL)
            rc = child.proc.wait(timeout=10)
            self._died(child, f"killed on request (code {rc})")
        else:
            os.killpg(pid, signal.SIGSTOP if action == "stop" else signal.SIGCONT)
            want = action == "stop"
            deadline = time.monotonic() + 5
            while procs.is_paused(pid) != want and time.monotonic() < deadline:
                time.sleep(0.01)
            child.paused = want
            if want:
                child.status = "paused"
            else:
                child.status = "ready" if child.ready_since is not None else "starting"
        return 200, {"ok": True, "status": child.status}

    def _restart(self, child: Child, *, wipe: bool) -> tuple[int, dict[str, Any]]:
        self._stop(child)
        if wipe and child.spec.data_dir is not None and child.spec.data_dir.exists():
            shutil.rmtree(child.spec.data_dir)
        self._spawn(child)
        child.restarts += 1
        self._await_ready(child, time.monotonic() + self.config.ready_timeout_s)
        self._run_hooks(child, first=False, wiped=wipe)
        self._became_ready(child)
        return 200, {"ok": True, "status": child.status, "restarts": child.restarts}

    # ---- state --------------------------------------------------------
    def write(self) -> None:
        """Write the state file (atomically) from the current records."""
        comps = {name: c.record() for name, c in self.children.items()}
        holdout = self.plan.holdout
        state = {
            "version": STATE_VERSION,
            "stack_id": self.stack_id,
            "phase": self.phase,
            "started_at": self.started_at,
            "state_dir": str(self.state_dir),
            "supervisor": {
                "pid": os.getpid(),
                "proc_start": procs.proc_start_time(os.getpid()),
                "control_url": self.control.url,
            },
            "config": self.config.to_dict(),
            "components": comps,
            "links": self.plan.links,
            "toxiproxy_url": self.plan.toxiproxy_url,
            "gateway_url": self.plan.gateway_url,
            "prometheus_url": self.plan.prometheus_url,
            "notes": list(self.plan.notes),
            "bundle": str(self.config.bundle),
            "holdout": str(holdout) if holdout and holdout.exists() else None,
        }
        self.snapshot = state
        write_state(self.state_dir, state)

    def _remove_state(self) -> None:
        path = self.state_dir / STATE_FILE
        try:
            if json.loads(path.read_text()).get("stack_id") == self.stack_id:
                path.unlink()
        except (OSError, ValueError):
            pass

    def _log(self, msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} supervisor: {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m chaos_rec.stack.supervisor``."""
    parser = argparse.ArgumentParser(prog="chaos_rec.stack.supervisor")
    parser.add_argument("--state-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir
    try:
        data = json.loads((state_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        plan = build_plan(StackConfig.from_dict(data))
    except (OSError, ValueError, ChaosRecError) as exc:
        line = f"supervisor cannot start: {exc}"
        (state_dir / ERROR_FILE).write_text(line + "\n", encoding="utf-8")
        print(line, file=sys.stderr)
        return 1
    return Supervisor(plan).run()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
