"""Helpers for the serving integration tests: real replica/gateway processes on free ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.offline import offline_env
from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def bundle_path() -> Path:
    """The reference bundle (CHAOS_REC_BUNDLE overrides); skip when it has not been built."""
    path = Path(os.environ.get("CHAOS_REC_BUNDLE", ROOT / "bundles" / "reference"))
    if not (path / "manifest.json").exists():
        pytest.skip(f"no model bundle at {path}: run `python -m training build` first")
    return path


def _env() -> dict[str, str]:
    env = offline_env(PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT)
    return env


@dataclass
class Proc:
    """A started process and its endpoints."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    http: str = ""
    grpc: str = ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; always reaped."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def output(self) -> str:
        """What the process wrote so far."""
        return self.log.read_text(errors="replace")


def start_replica(
    tmp: Path,
    redis_url: str,
    *,
    name: str = "replica-0",
    bundle: Path | None = None,
    extra: Sequence[str] = (),
    wait: bool = True,
    ports: tuple[int, int] | None = None,
) -> Proc:
    """Start `python -m serving.model_server` and wait until it is ready."""
    http, grpc_port = ports or (free_port(), free_port())
    log = tmp / f"{name}.log"
    cmd = [
        PY, "-m", "serving.model_server",
        "--bundle", str(bundle or bundle_path()),
        "--http-port", str(http), "--grpc-port", str(grpc_port),
        "--redis-url", redis_url, "--name", name, "--admin-token", "tok",
        "--threads", "1", *extra,
    ]  # fmt: skip
    fh = log.open("wb")
    proc = subprocess.Popen(
        cmd, stdout=fh, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT, start_new_session=True
    )
    p = Proc(name, proc, log, f"http://127.0.0.1:{http}", f"127.0.0.1:{grpc_port}")
    if wait:
        wait_ready(p, f"{p.http}/v2/health/ready")
    return p


def start_gateway(tmp: Path, replicas: dict[str, str], extra: Sequence[str] = ()) -> Proc:
    """Start `python -m serving.gateway` and wait until it is ready."""
    port = free_port()
    log = tmp / "gateway.log"
    spec = ",".join(f"{n}={a}" for n, a in replicas.items())
    cmd = [
        PY,
        "-m",
        "serving.gateway",
        "--port",
        str(port),
        "--replicas",
        spec,
        "--admin-token",
        "tok",
        *extra,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    p = Proc("gateway", proc, log, f"http://127.0.0.1:{port}")
    wait_ready(p, f"{p.http}/readyz")
    return p


def wait_ready(p: Proc, url: str, timeout: float = 180.0) -> None:
    """Poll a readiness URL; fail with the process log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.proc.poll() is not None:
            raise AssertionError(f"{p.name} exited {p.proc.returncode}:\n{p.output()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    p.stop()
    raise AssertionError(f"{p.name} not ready within {timeout}s:\n{p.output()[-3000:]}")


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[None]:
    """Stop the given processes at the end, whatever happens."""
    try:
        yield
    finally:
        for p in procs:
            p.stop()


def infer_json(
    http: str,
    user_ids: list[int],
    k: int = 5,
    query: list[str] | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    """A plain OIP v2 JSON infer call."""
    inputs: list[dict[str, object]] = [
        {"name": "user_id", "datatype": "INT64", "shape": [len(user_ids)], "data": user_ids},
        {"name": "k", "datatype": "INT64", "shape": [1], "data": [k]},
    ]
    if query is not None:
        inputs.append({"name": "query", "datatype": "BYTES", "shape": [len(query)], "data": query})
    return httpx.post(
        f"{http}/v2/models/recommender/infer", json={"inputs": inputs}, timeout=timeout
    )


def outputs(resp: httpx.Response) -> dict[str, list[object]]:
    """Output name → data ([B, k] tensors as rows; OIP JSON data is flat, row-major)."""
    assert resp.status_code == 200, resp.text
    out: dict[str, list[object]] = {}
    for o in resp.json()["outputs"]:
        data, shape = o["data"], o["shape"]
        if len(shape) == 2:
            data = [data[i * shape[1] : (i + 1) * shape[1]] for i in range(shape[0])]
        out[o["name"]] = data
    return out


def assert_same_answers(got: dict[str, list[object]], want: dict[str, list[object]]) -> None:
    """Same ids, order and tiers; scores equal up to float32 summation order (a forward pass
    in another process, or on other buffers, may sum a matmul in another order)."""
    import numpy as np

    assert got["item_ids"] == want["item_ids"]
    assert got["fallback"] == want["fallback"]
    assert np.allclose(
        np.asarray(got["scores"]), np.asarray(want["scores"]), rtol=1e-5, atol=1e-7
    ), (got["scores"], want["scores"])


def put_user(redis_url: str, user_id: int, history: list[int], category: int = 0) -> None:
    """Write one user's features with training.featurestore (the contract's encoder)."""
    import redis

    from training.featurestore import UserFeatures, encode_user, user_key

    value = encode_user(
        UserFeatures(user_id=user_id, history=history, top_category=category, n=len(history))
    )
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.set(user_key(user_id), value)
    finally:
        client.close()


def metric(http: str, name: str, labels: str = "") -> float:
    """Value of one Prometheus sample (0.0 when absent)."""
    text = httpx.get(f"{http}/metrics", timeout=5).text
    want = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


def copy_bundle(dst: Path) -> Path:
    """A private copy of the reference bundle (to tamper with)."""
    out = dst / "bundle"
    shutil.copytree(bundle_path(), out)
    return out
