"""Controls of a Triton deployment: its saved layout, supervisorctl, OIP v2 calls, and the
deployment file that names those controls for chaos-rec's seams."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from layout import HOST, MODEL, REPO, SERVER_READY, Layout, venv_tool

STACK_FILE = "stack.json"


class StackFailure(Exception):
    """One line for the user; exit 2."""


def load_layout(state_dir: Path) -> Layout:
    """The layout ``up`` saved in ``state_dir`` (StackFailure when there is none)."""
    try:
        saved = json.loads((state_dir / STACK_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise StackFailure(f"no Triton deployment in {state_dir} (run `up` first)") from exc
    return Layout(
        Path(saved["state_dir"]),
        int(saved["base_port"]),
        int(saved["replicas"]),
        Path(saved["bundle"]),
        str(saved.get("health_uri") or SERVER_READY),
    )


def ctl(lay: Layout, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``supervisorctl -c <conf> ARGS`` (never raises on its exit code)."""
    cmd = [venv_tool("supervisorctl"), "-c", str(lay.supervisor_conf), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def infer(
    url: str, user_id: int = 1, k: int = 10, timeout: float = 3.0
) -> tuple[dict[str, Any], str]:
    """One OIP v2 infer; (outputs by name, the X-Served-By header); raises on any failure."""
    tensors = [
        {"name": n, "shape": [1, 1], "datatype": "INT64", "data": [v]}
        for n, v in (("user_id", user_id), ("k", k))
    ]
    req = urllib.request.Request(
        f"{url}/v2/models/{MODEL}/infer",
        data=json.dumps({"inputs": tensors}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = json.loads(resp.read())
        served = resp.headers.get("X-Served-By", "")
    return {o["name"]: o["data"] for o in body["outputs"]}, served


def wait(what: str, check: Any, timeout_s: float, lay: Layout) -> None:
    """Poll ``check()`` until true; StackFailure naming ``what`` and the logs past the timeout."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError, KeyError) as exc:
            last = f": {exc}"
        time.sleep(0.3)
    raise StackFailure(f"{what} not within {timeout_s:g}s{last} (logs in {lay.logs})")


def port_open(port: int) -> bool:
    """True when something listens on HOST:port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def supervisord_pid(lay: Layout) -> int | None:
    """supervisord's pid from its pid file, if any."""
    try:
        return int(lay.supervisor_pid.read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    """True for a live process (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return Path(f"/proc/{pid}").exists() and "zombie" not in proc_state(pid)


def proc_state(pid: int) -> str:
    """The State line of /proc/PID/status, lower-cased ("" when gone)."""
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return ""


def ours(lay: Layout) -> list[int]:
    """Live processes started from this state dir (its config files or Triton workspace)."""
    mark = str(lay.state_dir) + "/"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if mark in cmdline and alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def sweep(lay: Layout) -> list[int]:
    """End what outlived supervisord: a Python-backend stub survives its tritonserver's exit."""
    strays = ours(lay)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in ours(lay):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3
        while ours(lay) and time.monotonic() < deadline:
            time.sleep(0.1)
    return strays


def replica_index(lay: Layout, replica: str) -> int:
    """The index of a replica name (StackFailure naming the known ones)."""
    if replica not in lay.names():
        raise StackFailure(f"no replica {replica!r} (replicas: {', '.join(lay.names())})")
    return lay.names().index(replica)


def _redis_cli(lay: Layout, redis_binary: str) -> str:
    beside = Path(redis_binary).with_name("redis-cli")
    return str(beside) if beside.exists() else shutil.which("redis-cli") or "redis-cli"


def _prometheus(lay: Layout) -> dict[str, Any]:
    """The deployment's Prometheus (when installed): its URL and the metric families it holds."""
    if shutil.which("prometheus") is None:
        return {}
    return {
        "prometheus_url": f"http://{HOST}:{lay.prometheus_port}",
        "metrics": ["triton", "haproxy"],
    }


def deployment(lay: Layout, redis_binary: str, stack_py: Path, main_python: str) -> dict[str, Any]:
    """The deployment file's contents (chaos_rec/schemas/deployment.schema.json)."""
    me = f"{main_python} {stack_py} --state-dir {lay.state_dir}"
    ctl = f"{venv_tool('supervisorctl')} -c {lay.supervisor_conf}"
    cli = f"{_redis_cli(lay, redis_binary)} -h {HOST} -p {lay.redis_port}"
    materialize = (
        f"{venv_tool('python')} -m training materialize "
        f"--redis redis://{HOST}:{lay.redis_port}/0 --bundle {lay.bundle}"
    )
    return {
        "gateway_url": f"http://{HOST}:{lay.gateway_port}",
        "toxiproxy_url": f"http://{HOST}:{lay.toxiproxy_port}",
        "redis_url": f"redis://{HOST}:{lay.redis_link_port}/0",
        "replicas": [
            {"name": n, "index": i, "http_url": f"http://{HOST}:{lay.replica_port(i)}", "link": n}
            for i, n in enumerate(lay.names())
        ],
        "links": lay.links(),
        "holdout": str(lay.holdout),
        "bundle": str(lay.bundle),
        "allow_hosts": [HOST],
        **_prometheus(lay),
        "traffic": {
            "kind": "oip-v2",
            "model": MODEL,
            "user_input": "user_id",
            "user_datatype": "INT64",
            "shape": [1, 1],
            "k_input": "k",
            "k_datatype": "INT64",
            "items_output": "items",
        },
        "processes": {
            "kind": "command",
            "pid": f"{ctl} pid {{replica}}",
            "kill": f"{ctl} signal KILL {{replica}}",
            "hang": f"{ctl} signal STOP {{replica}}",
            "resume": f"{ctl} signal CONT {{replica}}",
            "ready": f"{me} ready {{replica}}",
            "timeout_s": 15,
            "wait_restored_timeout_s": 90,
        },
        "data": {
            "kind": "command",
            "wipe": f"{cli} FLUSHALL",
            "restore": materialize,
            "verify": f"{materialize} --verify-only",
            "size": f"{cli} DBSIZE",
            "env": {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"},
            "timeout_s": 120,
        },
        "rollout": {
            "kind": "command",
            "push": f"{me} push {{replica}} {{bundle}}",
            "version": f"{me} version {{replica}}",
            "reference_bundle": str(lay.bundle),
            "refused_exit": 2,
            "timeout_s": 180,
        },
    }
