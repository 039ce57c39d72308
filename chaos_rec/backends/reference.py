"""The reference stack's backends: its supervisor, Redis + materialise, its admin reload, its gateway.

Each class implements one seam of ``chaos_rec.core.seams`` for a :class:`Deployment`; a user's
deployment file gets the network ones (traffic, links) and, where it names them, data and
rollout.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaos_rec.backends.net import admin_request, proc_state
from chaos_rec.boundary import translating
from chaos_rec.core.target import Deployment
from chaos_rec.errors import ConfigError, FaultError

__all__ = [
    "RedisFeatureData",
    "ReferenceRollout",
    "SupervisorProcesses",
    "materialize_command",
]


class SupervisorProcesses:
    """Replica processes of the reference stack, signalled through its supervisor."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep

    def _state_dir(self, what: str) -> Path:
        return self.dep.require_managed(what)

    def pid(self, replica: str) -> int:
        """The replica's pid from the stack state (FaultError when it has none running)."""
        from chaos_rec.stack import load_state

        pid = load_state(self._state_dir("a replica's pid")).component(replica).get("pid")
        if not pid:
            raise FaultError(
                f"{replica} has no running process (status not ready); wait for it first"
            )
        return int(pid)

    def kill(self, replica: str) -> None:
        """SIGKILL through the supervisor."""
        from chaos_rec.stack import signal_component

        signal_component(replica, "kill", self._state_dir("kill_replica"))

    def hang(self, replica: str) -> None:
        """SIGSTOP through the supervisor."""
        from chaos_rec.stack import signal_component

        signal_component(replica, "stop", self._state_dir("hang_replica"))

    def resume(self, replica: str) -> None:
        """SIGCONT through the supervisor."""
        from chaos_rec.stack import signal_component

        signal_component(replica, "cont", self._state_dir("resume_replica"))

    def state(self, replica: str, pid: int) -> str:
        """The /proc state letter of ``pid`` on this host (``X`` once it is gone)."""
        return proc_state(pid)

    def wait_restored(self, replica: str, timeout_s: float) -> float:
        """Wait for the supervisor's readiness check, then the replica's own /v2/health/ready."""
        from chaos_rec.stack import wait_component_ready

        waited = wait_component_ready(replica, timeout_s, self._state_dir("wait_replica_restored"))
        if self.dep.replica(replica).http_url:
            url = self.dep.replica_url(replica)
            status, _ = admin_request(url, "GET", "/v2/health/ready", token=None, timeout=5.0)
            if status != 200:
                raise FaultError(f"{replica} restarted but /v2/health/ready answers {status}")
        return waited


def materialize_command(dep: Deployment, *, verify_only: bool = False) -> list[str]:
    """``python -m training materialize`` against the deployment's Redis and bundle."""
    if not dep.redis_url or not dep.bundle:
        raise ConfigError("the deployment names no redis_url/bundle to materialise or verify")
    cmd = [sys.executable, "-m", "training", "materialize",
           "--redis", dep.redis_url, "--bundle", str(dep.bundle)]  # fmt: skip
    return [*cmd, "--verify-only"] if verify_only else cmd


class RedisFeatureData:
    """The feature store as Redis: wiped by an empty restart, restored by materialising."""

    def __init__(self, dep: Deployment, timeout_s: float) -> None:
        if not dep.redis_url:
            raise ConfigError("the deployment names no redis URL")
        self.dep = dep
        self.url = dep.allowlist.allow("redis_url", dep.redis_url)
        self.timeout_s = timeout_s

    def size(self) -> int:
        """DBSIZE of the store."""
        import redis

        client = redis.Redis.from_url(
            self.url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s
        )
        try:
            with translating(f"reading the feature store at {self.url}", FaultError):
                return int(client.dbsize())
        finally:
            client.close()

    def wipe(self) -> None:
        """Restart the stack's Redis with its data removed."""
        from chaos_rec.stack import restart_component

        restart_component(
            "redis", wipe=True, state_dir=self.dep.require_managed("restart_redis_empty")
        )

    def _materialize(self, verify_only: bool, timeout_s: float) -> tuple[int, str]:
        cmd = materialize_command(self.dep, verify_only=verify_only)
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise FaultError(
                f"`{' '.join(cmd[1:4])}{' --verify-only' if verify_only else ''}` "
                f"did not finish within {timeout_s:g}s"
            ) from exc
        out = (proc.stdout + proc.stderr).strip().splitlines()
        return proc.returncode, (out[-1] if out else "")

    def restore(self, timeout_s: float) -> str:
        """Materialise the features again; FaultError when the command fails."""
        code, last = self._materialize(False, timeout_s)
        if code != 0:
            raise FaultError(f"`training materialize` exited {code}: {last}")
        return last

    def verify(self, timeout_s: float) -> bool:
        """Compare the store with the offline features (exit 0 equal, 1 different)."""
        code, last = self._materialize(True, timeout_s)
        if code not in (0, 1):
            raise FaultError(f"materialize --verify-only could not check (exit {code}): {last}")
        return code == 0


class ReferenceRollout:
    """Model bundles on the reference model server: ``/admin/reload`` and the model metadata."""

    def __init__(self, dep: Deployment, timeout_s: float, admin_token: str | None) -> None:
        self.dep = dep
        self.timeout_s = timeout_s
        self.token = admin_token or dep.admin_token

    def version(self, replica: str) -> str | None:
        """``parameters.model_version`` (else the first version) of ``/v2/models/recommender``."""
        if not self.dep.replica(replica).http_url:
            return None
        url = self.dep.replica_url(replica)
        status, data = admin_request(
            url, "GET", "/v2/models/recommender", token=None, timeout=self.timeout_s
        )
        if status != 200 or not isinstance(data, dict):
            return None
        params = data.get("parameters") or {}
        version = params.get("model_version") or (data.get("versions") or [None])[0]
        return str(version) if version else None

    def push(self, replica: str, bundle: Path) -> tuple[bool, Mapping[str, Any] | str]:
        """POST ``/admin/reload``: 200 accepted, 409 refused (the old model keeps serving)."""
        url = self.dep.replica_url(replica)
        status, data = admin_request(
            url, "POST", "/admin/reload", token=self.token, body={"bundle": str(bundle)},
            timeout=120.0,
        )  # fmt: skip
        name = self.dep.replica(replica).name
        if status in (401, 403):
            raise FaultError(
                f"{name} rejected the admin token ({status}): set secret chaos_rec_admin_token"
            )
        if status not in (200, 409):
            raise FaultError(f"{name} answered {status} to /admin/reload: {data}")
        return status == 200, data

    def reference_bundle(self) -> Path | None:
        """The deployment's own bundle."""
        return self.dep.bundle.absolute() if self.dep.bundle else None
