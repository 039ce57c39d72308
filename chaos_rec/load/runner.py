"""LoadRunner: Locust as a subprocess against a deployment, per-second timeline.

Requests go through the deployment's traffic adapter (``traffic``: a
:class:`~chaos_rec.traffic.TrafficSpec` as a dict; default the chaos-rec gateway contract), for
users from the hold-out file or, without one, from ``user_ids`` (with ``queries`` for searches):
never from built-in ids.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from chaos_rec.core.rundir import RunContext, TimelineRow, stop_stale_load
from chaos_rec.errors import ConfigError, LoadError
from chaos_rec.settings import SETTINGS, default
from chaos_rec.traffic import TrafficSpec

__all__ = ["DEFAULT_MIX", "LoadRunner", "locust_binary"]

DEFAULT_MIX: Final[dict[str, float]] = {"personalised": 0.6, "search": 0.25, "unknown": 0.15}
LOCUSTFILE: Final = Path(__file__).with_name("locustfile.py")
SECRETS_ENV: Final = "CHAOS_REC_LOAD_SECRETS"  # the traffic headers' secrets, as a JSON object


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the master's, for its workers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def locust_binary() -> str:
    """The ``locust`` executable next to this Python, else on PATH."""
    beside = Path(sys.executable).parent / "locust"
    if beside.exists():
        return str(beside)
    found = shutil.which("locust")
    if not found:
        raise LoadError("locust is not installed: pip install locust (it runs as a subprocess)")
    return found


def _check(rps: float, users: int, mix: Mapping[str, float], timeout_s: float) -> None:
    SETTINGS["load_rps"].parse(rps, "load rps")  # ranges: chaos_rec.settings
    SETTINGS["load_users"].parse(users, "load users")
    SETTINGS["timeout_s"].parse(timeout_s, "load timeout_s")
    unknown = set(mix) - set(DEFAULT_MIX)
    if unknown or not mix or any(float(w) < 0 for w in mix.values()) or sum(mix.values()) <= 0:
        raise ConfigError(
            f"load mix must weigh {', '.join(DEFAULT_MIX)} with non-negative numbers, got {dict(mix)!r}"
        )


class LoadRunner:
    """Runs Locust headless as a subprocess; its rows land in ``<run_dir>/timeline.jsonl``."""

    def __init__(
        self,
        gateway_url: str,
        run_dir: Path | str,
        *,
        rps: float = default("load_rps"),
        users: int = default("load_users"),
        seed: int = default("seed"),
        holdout: Path | str | None = None,
        user_ids: Sequence[int] = (),
        queries: Sequence[str] = (),
        traffic: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        workers: int = default("load_workers"),
        mix: Mapping[str, float] | None = None,
        k: int = 10,
        timeout_s: float = default("timeout_s"),
        name: str = "load",
        start_timeout_s: float = 30.0,
    ) -> None:
        mix = dict(mix or DEFAULT_MIX)
        _check(rps, users, mix, timeout_s)
        if not gateway_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"gateway URL must start with http:// or https://, got {gateway_url!r}"
            )
        if holdout is not None and not Path(holdout).is_file():
            raise ConfigError(f"holdout file not found: {holdout}")
        if holdout is None and not user_ids:
            raise ConfigError(
                "load needs user ids: a hold-out file (holdout) or a users list in the "
                "deployment file"
            )
        spec = TrafficSpec.from_dict(traffic or {"kind": "chaos-rec"}, "load traffic")
        self.gateway_url = gateway_url.rstrip("/")
        self.ctx = RunContext(run_dir)
        self.rps = float(rps)
        self.users = int(users)
        self.seed = int(seed)
        self.holdout = Path(holdout).resolve() if holdout is not None else None
        self.user_ids = [int(u) for u in user_ids]
        self.queries = [str(q) for q in queries]
        self.traffic = spec.to_dict()  # headers keep their ${secret:NAME} references
        self._secrets = dict(secrets or {})  # to Locust by environment, never in a file
        self.workers = int(SETTINGS["load_workers"].parse(workers, "load workers"))
        self._workers: list[subprocess.Popen[bytes]] = []
        self.mix = mix
        self.k = int(k)
        self.timeout_s = float(timeout_s)
        self.name = name
        self.start_timeout_s = start_timeout_s
        self.timeline_name = "timeline.jsonl" if name == "load" else f"timeline-{name}.jsonl"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def run_dir(self) -> Path:
        """The run dir this runner writes into."""
        return self.ctx.run_dir

    @property
    def timeline_path(self) -> Path:
        """The JSON-lines file of per-second rows."""
        return self.run_dir / self.timeline_name

    @property
    def pid(self) -> int | None:
        """Process id of the Locust subprocess while it runs."""
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        """True while the Locust subprocess is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> Path:
        cfg = {
            "run_dir": str(self.run_dir),
            "rps": self.rps,
            "users": self.users,
            "seed": self.seed,
            "k": self.k,
            "timeout_s": self.timeout_s,
            "mix": self.mix,
            "holdout": str(self.holdout) if self.holdout else None,
            "user_ids": self.user_ids,
            "queries": self.queries,
            "traffic": self.traffic,
            "workers": self.workers,
            "timeline": self.timeline_name,
            "level_file": f"{self.name}_level.json",
        }
        return self.ctx.write_json(f"{self.name}_config.json", cfg)

    def start(self) -> LoadRunner:
        """Start Locust and wait for its first timeline row; LoadError if it dies."""
        if self.running():
            return self
        stop_stale_load(self.run_dir, self.name)  # a Locust left behind by a crashed run
        config_path = self._write_config()
        self.set_level(1.0)
        rows_before = len(self._rows())
        cmd = [
            locust_binary(), "-f", str(LOCUSTFILE), "--headless", "--host", self.gateway_url,
            "-u", str(self.users), "-r", str(self.users), "--only-summary",
            "--loglevel", "WARNING", "--exit-code-on-error", "0", "--stop-timeout", "2",
        ]  # fmt: skip
        port = free_port() if self.workers else 0
        if self.workers:  # Locust's own master/worker mode: the master runs no users
            cmd += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
                    str(port), "--expect-workers", str(self.workers)]  # fmt: skip
        env = dict(os.environ, CHAOS_REC_LOAD_CONFIG=str(config_path), PYTHONUNBUFFERED="1")
        if self._secrets:
            env[SECRETS_ENV] = json.dumps(self._secrets)
        log_path = self.run_dir / f"{self.name}_locust.log"
        self._log = log_path.open("ab")
        self._proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        worker_cmd = [locust_binary(), "-f", str(LOCUSTFILE), "--worker", "--master-host",
                      "127.0.0.1", "--master-port", str(port), "--loglevel", "WARNING"]  # fmt: skip
        self._workers = [
            subprocess.Popen(worker_cmd, stdout=self._log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            for _ in range(self.workers)
        ]  # fmt: skip
        for i, worker in enumerate(self._workers):  # found by the next run if this one crashes
            (self.run_dir / f"{self.name}-worker-{i}.pid").write_text(str(worker.pid))
        (self.run_dir / f"{self.name}.pid").write_text(str(self._proc.pid))
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self._log_tail()
                for worker in self._workers:
                    worker.kill()
                self._cleanup()
                raise LoadError(f"locust exited with {self._proc.returncode} at start: {tail}")
            if len(self._rows()) > rows_before:
                return self
            time.sleep(0.1)
        self.stop()
        raise LoadError(
            f"locust wrote no timeline row within {self.start_timeout_s:g}s; see {log_path}"
        )

    def _rows(self) -> list[TimelineRow]:
        return self.ctx.timeline(self.timeline_name)

    def _log_tail(self) -> str:
        path = self.run_dir / f"{self.name}_locust.log"
        try:
            lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "(no log)"
        return lines[-1][:300] if lines else "(empty log)"

    def set_level(self, multiplier: float) -> None:
        """Scale the request rate (1.0 = configured rps); picked up within a second."""
        if isinstance(multiplier, bool) or not 0 < float(multiplier) <= 100:
            raise ConfigError(f"load multiplier must be within (0, 100], got {multiplier!r}")
        self.ctx.write_json(f"{self.name}_level.json", {"multiplier": float(multiplier)})

    def level(self) -> float:
        """The current rate multiplier."""
        data = self.ctx.read_json(f"{self.name}_level.json")
        return float(data["multiplier"]) if data else 1.0

    def stop(self, timeout: float = 15.0) -> None:
        """Stop Locust (SIGTERM, then SIGKILL after ``timeout``); flushes the last rows."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for worker in self._workers:  # they quit with their master; any left is killed
            try:
                worker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=5)
        self._cleanup()

    def _cleanup(self) -> None:
        for pid_file in [self.run_dir / f"{self.name}.pid",
                         *self.run_dir.glob(f"{self.name}-worker-*.pid")]:  # fmt: skip
            pid_file.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    def timeline(self) -> list[TimelineRow]:
        """The rows written so far."""
        return self._rows()

    def __enter__(self) -> LoadRunner:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
