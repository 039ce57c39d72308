"""The ``command`` backends: a team's own shell commands for processes, data and rollout.

A deployment file's section names one command per step, so systemd, supervisord, docker or ssh
all work::

    "processes": {"kind": "command",
                  "pid": "supervisorctl -c /etc/sv.conf pid {replica}",
                  "kill": "supervisorctl -c /etc/sv.conf signal KILL {replica}",
                  "hang": "supervisorctl -c /etc/sv.conf signal STOP {replica}",
                  "resume": "supervisorctl -c /etc/sv.conf signal CONT {replica}",
                  "ready": "curl -fsS http://127.0.0.1:800{index}/v2/health/ready"}

Each spec is parsed once by ``from_dict(section, where)`` (one ConfigError line naming the bad
key) and handed to its backend with the :class:`Deployment` (for ``{index}``). Commands run
through :class:`chaos_rec.backends.shell.Shell`: placeholders quoted, every call timed out,
``secret_env`` values masked in every line shown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from chaos_rec.backends.net import proc_state
from chaos_rec.backends.shell import Shell, placeholders, substitute
from chaos_rec.backends.spec import Reader, base_dict
from chaos_rec.core.target import Deployment
from chaos_rec.errors import FaultError

__all__ = [
    "CommandFeatureData",
    "CommandProcesses",
    "CommandRollout",
    "DataCommands",
    "ProcessCommands",
    "RolloutCommands",
]

BACKEND: Final = "command"
_REPLICA: Final = ("replica", "index")


@dataclass(frozen=True)
class ProcessCommands:
    """``processes`` section: pid (optional), kill, hang, resume and ready (exit 0 = ready)."""

    kill: str
    hang: str
    resume: str
    ready: str
    pid: str | None = None
    wait_restored_timeout_s: float | None = None
    poll_interval_s: float = 0.5
    timeout_s: float = 30.0
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    secret_env: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ProcessCommands:
        """The spec from a deployment file's ``processes`` object (one ConfigError line)."""
        r = Reader(data, f"{where}: processes", {"kill", "hang", "resume", "ready", "pid",
                                                  "wait_restored_timeout_s", "poll_interval_s"})  # fmt: skip
        pid = r.command("pid", _REPLICA, required=False)
        signals = (*_REPLICA, "pid") if pid else _REPLICA
        return cls(
            kill=str(r.command("kill", signals)), hang=str(r.command("hang", signals)),
            resume=str(r.command("resume", signals)), ready=str(r.command("ready", signals)),
            pid=pid, wait_restored_timeout_s=r.seconds("wait_restored_timeout_s", None),
            poll_interval_s=float(r.seconds("poll_interval_s", 0.5) or 0.5),
            timeout_s=r.timeout(30.0), env=r.env(), secret_env=r.secret_env(),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The section as a deployment file holds it."""
        out = base_dict(BACKEND, self.timeout_s, self.env, self.secret_env)
        out.update(kill=self.kill, hang=self.hang, resume=self.resume, ready=self.ready,
                   poll_interval_s=self.poll_interval_s)  # fmt: skip
        if self.pid:
            out["pid"] = self.pid
        if self.wait_restored_timeout_s is not None:
            out["wait_restored_timeout_s"] = self.wait_restored_timeout_s
        return out


@dataclass(frozen=True)
class DataCommands:
    """``data`` section: wipe, restore, verify (0 same, 1 different) and size (optional)."""

    wipe: str
    restore: str
    verify: str
    size: str | None = None
    timeout_s: float = 60.0
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    secret_env: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, where: str) -> DataCommands:
        """The spec from a deployment file's ``data`` object (one ConfigError line)."""
        r = Reader(data, f"{where}: data", {"wipe", "restore", "verify", "size"})
        return cls(
            wipe=str(r.command("wipe", ())), restore=str(r.command("restore", ())),
            verify=str(r.command("verify", ())), size=r.command("size", (), required=False),
            timeout_s=r.timeout(60.0), env=r.env(), secret_env=r.secret_env(),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The section as a deployment file holds it."""
        out = base_dict(BACKEND, self.timeout_s, self.env, self.secret_env)
        out.update(wipe=self.wipe, restore=self.restore, verify=self.verify)
        if self.size:
            out["size"] = self.size
        return out


@dataclass(frozen=True)
class RolloutCommands:
    """``rollout`` section: push (exit 0 accepted, ``refused_exit`` refused), version, bundle."""

    push: str
    version: str | None = None
    reference_bundle: Path | None = None
    refused_exit: int = 2
    timeout_s: float = 120.0
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    secret_env: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, where: str) -> RolloutCommands:
        """The spec from a deployment file's ``rollout`` object (one ConfigError line)."""
        r = Reader(data, f"{where}: rollout",
                   {"push", "version", "reference_bundle", "refused_exit"})  # fmt: skip
        bundle = r.string("reference_bundle")
        return cls(
            push=str(r.command("push", (*_REPLICA, "bundle"))),
            version=r.command("version", _REPLICA, required=False),
            reference_bundle=Path(bundle).expanduser() if bundle else None,
            refused_exit=r.exit_code("refused_exit", 2),
            timeout_s=r.timeout(120.0), env=r.env(), secret_env=r.secret_env(),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The section as a deployment file holds it."""
        out = base_dict(BACKEND, self.timeout_s, self.env, self.secret_env)
        out.update(push=self.push, refused_exit=self.refused_exit)
        if self.version:
            out["version"] = self.version
        if self.reference_bundle is not None:
            out["reference_bundle"] = str(self.reference_bundle)
        return out


def _replica_values(dep: Deployment, replica: str) -> dict[str, str]:
    rep = dep.replica(replica)
    return {"replica": rep.name, "index": str(rep.index)}


class CommandProcesses:
    """Replica processes signalled by the team's commands (supervisorctl, systemctl, docker …)."""

    def __init__(self, spec: ProcessCommands, dep: Deployment) -> None:
        self.spec = spec
        self.dep = dep
        self.shell = Shell(spec.env, spec.secret_env, spec.timeout_s)

    def pid(self, replica: str) -> int:
        """The pid the ``pid`` command prints (FaultError when none is configured or printed)."""
        if not self.spec.pid:
            raise FaultError(
                f"processes.pid is not configured for {replica}: add a pid command to the "
                "deployment file's processes section"
            )
        command = substitute(self.spec.pid, _replica_values(self.dep, replica))
        out = self.shell.check("processes.pid", command)
        words = out.stdout.split()
        if not words or not words[-1].isdigit() or int(words[-1]) <= 0:
            raise FaultError(
                f"processes.pid printed no pid for {replica} (`{self.shell.shown(command)}`: "
                f"{out.last or 'nothing'}); is it running?"
            )
        return int(words[-1])

    def _signal(self, step: str, template: str, replica: str) -> None:
        values = _replica_values(self.dep, replica)
        if "pid" in placeholders(template):
            values["pid"] = str(self.pid(replica))
        self.shell.check(f"processes.{step}", substitute(template, values))

    def kill(self, replica: str) -> None:
        """Run ``kill`` (SIGKILL; the team's supervisor is expected to restart it)."""
        self._signal("kill", self.spec.kill, replica)

    def hang(self, replica: str) -> None:
        """Run ``hang`` (SIGSTOP)."""
        self._signal("hang", self.spec.hang, replica)

    def resume(self, replica: str) -> None:
        """Run ``resume`` (SIGCONT)."""
        self._signal("resume", self.spec.resume, replica)

    def state(self, replica: str, pid: int) -> str:
        """The /proc state letter of ``pid`` on this host (``X`` once it is gone)."""
        return proc_state(pid)

    def wait_restored(self, replica: str, timeout_s: float) -> float:
        """Poll ``ready`` until it exits 0; the seconds waited (FaultError past the timeout)."""
        limit = self.spec.wait_restored_timeout_s or timeout_s
        values = _replica_values(self.dep, replica)
        needs_pid = "pid" in placeholders(self.spec.ready)
        start = time.monotonic()
        last = "no check finished"
        while True:
            left = limit - (time.monotonic() - start)
            try:
                if needs_pid:
                    values["pid"] = str(self.pid(replica))
                command = substitute(self.spec.ready, values)
                out = self.shell.run(
                    "processes.ready", command, max(0.1, min(left, self.spec.timeout_s))
                )
            except FaultError as exc:  # no pid yet, or one check timed out: not ready yet
                last = str(exc)
            else:
                if out.code == 0:
                    return time.monotonic() - start
                last = f"exit {out.code}" + (f": {out.last}" if out.last else "")
            waited = time.monotonic() - start
            if waited >= limit:
                raise FaultError(
                    f"processes.ready: {replica} not ready within {limit:g}s (last check: {last})"
                )
            time.sleep(min(self.spec.poll_interval_s, limit - waited))


class CommandFeatureData:
    """The feature store driven by the team's wipe, restore, verify and size commands."""

    def __init__(self, spec: DataCommands) -> None:
        self.spec = spec
        self.shell = Shell(spec.env, spec.secret_env, spec.timeout_s)

    def size(self) -> int:
        """The integer the ``size`` command prints (FaultError when none is configured)."""
        if not self.spec.size:
            raise FaultError("data.size is not configured: add a size command to the data section")
        out = self.shell.check("data.size", self.spec.size)
        text = out.stdout.strip().split()[-1] if out.stdout.strip() else ""
        try:
            return int(text)
        except ValueError:
            raise FaultError(
                f"data.size printed {text or 'nothing'!r}, not a number of keys "
                f"(`{self.shell.shown(self.spec.size)}`)"
            ) from None

    def wipe(self) -> None:
        """Run ``wipe``."""
        self.shell.check("data.wipe", self.spec.wipe)

    def restore(self, timeout_s: float) -> str:
        """Run ``restore``; its last output line."""
        return self.shell.check("data.restore", self.spec.restore, timeout_s).last

    def verify(self, timeout_s: float) -> bool:
        """Run ``verify``: exit 0 consistent, 1 different, any other could not check."""
        out = self.shell.run("data.verify", self.spec.verify, timeout_s)
        if out.code not in (0, 1):
            raise self.shell.failed("data.verify", self.spec.verify, out, " (could not check)")
        return out.code == 0


class CommandRollout:
    """Model bundles pushed by the team's command (Triton's repository API, a CI job, ssh …)."""

    def __init__(self, spec: RolloutCommands, dep: Deployment) -> None:
        self.spec = spec
        self.dep = dep
        self.shell = Shell(spec.env, spec.secret_env, spec.timeout_s)

    def version(self, replica: str) -> str | None:
        """The last line ``version`` prints (None when none is configured or it prints nothing)."""
        if not self.spec.version:
            return None
        command = substitute(self.spec.version, _replica_values(self.dep, replica))
        out = self.shell.check("rollout.version", command)
        lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
        return lines[-1] if lines else None

    def push(self, replica: str, bundle: Path) -> tuple[bool, Mapping[str, Any] | str]:
        """Run ``push``: (True, answer) on 0, (False, answer) on ``refused_exit``, else FaultError."""
        values = {**_replica_values(self.dep, replica), "bundle": str(bundle)}
        command = substitute(self.spec.push, values)
        out = self.shell.run("rollout.push", command)
        if out.code not in (0, self.spec.refused_exit):
            raise self.shell.failed("rollout.push", command, out)
        return out.code == 0, _answer(out.stdout, out.last)

    def reference_bundle(self) -> Path | None:
        """The bundle named by ``reference_bundle`` (absolute), if any."""
        return self.spec.reference_bundle.absolute() if self.spec.reference_bundle else None


def _answer(stdout: str, last: str) -> Mapping[str, Any] | str:
    """The push command's answer: its stdout as a JSON object when it is one, else its last line."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return last
    return data if isinstance(data, dict) else last


if TYPE_CHECKING:  # the backends implement the seams exactly (checked by mypy)
    from chaos_rec.core.seams import FeatureData, Processes, Rollout

    def _seams(dep: Deployment) -> tuple[Processes, FeatureData, Rollout]:
        return (
            CommandProcesses(ProcessCommands("k", "h", "r", "ok"), dep),
            CommandFeatureData(DataCommands("w", "r", "v")),
            CommandRollout(RolloutCommands("p"), dep),
        )
