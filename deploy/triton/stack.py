"""``python deploy/triton/stack.py up|down|status``: a deployment of stock parts under supervisord.

Redis, the project's fault proxy, two NVIDIA Triton Inference Server replicas (PyTriton, CPU)
and HAProxy, each a supervisord program. ``up`` waits until HAProxy answers an OIP v2 infer
through every replica, then prints the path of the deployment file chaos-rec drills read.
``ready``, ``push`` and ``version`` are the commands that file names for the process and
rollout seams. Any problem: one line on stderr and exit 2. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from control import (
    STACK_FILE,
    StackFailure,
    alive,
    ctl,
    deployment,
    infer,
    load_layout,
    port_open,
    replica_index,
    supervisord_pid,
    sweep,
    wait,
)
from layout import (
    DEFAULT_STATE,
    HOST,
    MODEL_READY,
    REPO,
    SERVER_READY,
    Layout,
    triton_libdir,
    venv_tool,
    write_configs,
)

UP_TIMEOUT_S = 240.0


def _check_parts() -> None:
    if shutil.which("haproxy") is None:
        raise StackFailure("haproxy is not on PATH: `make sysdeps` (Debian package haproxy)")
    for tool in ("python", "supervisord", "supervisorctl"):
        if not Path(venv_tool(tool)).exists():
            raise StackFailure(
                f"{venv_tool(tool)} is missing: build the Triton venv, `make venv-triton`"
            )


def _run_setup(lay: Layout, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [venv_tool("python"), "-m", "training", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise StackFailure(
            f"training {args[0]} failed: {(out.stderr or out.stdout).strip()[-300:]}"
        )


def up(state_dir: Path, base_port: int, bundle: Path, health_uri: str = SERVER_READY) -> Path:
    """Start everything, wait for answers through every replica; the deployment file's path."""
    _check_parts()
    from chaos_rec.core.target import validate_deployment
    from chaos_rec.errors import ConfigError
    from chaos_rec.stack.components import find_redis_binary

    lay = Layout(state_dir.resolve(), base_port, 2, bundle.resolve(), health_uri)
    if lay.supervisor_sock.exists() and ctl(lay, "pid").returncode == 0:
        raise StackFailure(f"a Triton deployment already runs in {lay.state_dir}: `down` first")
    busy = [p for p in lay.ports() if port_open(p)]
    if busy:
        raise StackFailure(f"ports already in use: {busy} (another stack? pick --base-port)")
    try:
        redis_binary = find_redis_binary(None)
    except ConfigError as exc:
        raise StackFailure(str(exc)) from exc
    libdir = triton_libdir()
    lay.state_dir.mkdir(parents=True, exist_ok=True)
    write_configs(lay, sys.executable, redis_binary, libdir)
    (lay.state_dir / STACK_FILE).write_text(
        json.dumps(
            {
                "state_dir": str(lay.state_dir),
                "base_port": base_port,
                "replicas": lay.replicas,
                "bundle": str(lay.bundle),
                "health_uri": health_uri,
            }
        )
        + "\n"
    )
    with open(lay.logs / "supervisord.out", "ab") as log:
        subprocess.Popen(
            [venv_tool("supervisord"), "-c", str(lay.supervisor_conf), "-n"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPO,
        )
    try:
        wait("Redis", lambda: port_open(lay.redis_port), 30, lay)
        _run_setup(
            lay,
            "materialize",
            "--redis",
            f"redis://{HOST}:{lay.redis_port}/0",
            "--bundle",
            str(lay.bundle),
        )
        _run_setup(lay, "holdout", "--bundle", str(lay.bundle), "--out", str(lay.holdout))
        wait("fault proxy", lambda: port_open(lay.redis_link_port), 30, lay)
        started = ctl(lay, "start", *lay.names(), timeout=60)
        if started.returncode != 0:
            raise StackFailure(f"supervisorctl start failed: {started.stdout.strip()}")
        seen: set[str] = set()

        def both_answer() -> bool:
            outputs, served = infer(f"http://{HOST}:{lay.gateway_port}")
            if len(outputs["items"]) == 10:
                seen.add(served)
            return seen >= set(lay.names())

        wait("infer through HAProxy on every replica", both_answer, UP_TIMEOUT_S, lay)
        data = deployment(lay, redis_binary, Path(__file__).resolve(), sys.executable)
        validate_deployment(data, lay.deployment_file)
    except BaseException:
        down(lay.state_dir, quiet=True)
        raise
    lay.deployment_file.write_text(json.dumps(data, indent=2) + "\n")
    return lay.deployment_file


def down(state_dir: Path, quiet: bool = False) -> list[int]:
    """Stop every program and supervisord; the ports still listening afterwards (none is good)."""
    lay = load_layout(state_dir.resolve())
    pid = supervisord_pid(lay)
    if pid is not None and alive(pid):
        with contextlib.suppress(subprocess.TimeoutExpired):
            ctl(lay, "shutdown", timeout=60)
        deadline = time.monotonic() + 30
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)  # supervisord leads its own session (start_new_session)
    strays = sweep(lay)
    deadline = time.monotonic() + 10
    while any(port_open(p) for p in lay.ports()) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in lay.ports() if port_open(p)]
    shutil.rmtree(lay.prometheus_dir, ignore_errors=True)  # its samples go with the stack
    if not quiet:
        print(
            f"stopped the Triton deployment in {lay.state_dir}; ports still listening: "
            f"{left or 'none'}; stray processes ended: {strays or 'none'}"
        )
    return left


def status(state_dir: Path) -> int:
    """Print supervisord's view of every program; 0 when all run, 3 otherwise."""
    lay = load_layout(state_dir.resolve())
    pid = supervisord_pid(lay)
    if pid is None or not alive(pid):
        print(f"supervisord is not running (state dir {lay.state_dir})")
        return 3
    out = ctl(lay, "status")
    print(out.stdout.rstrip())
    print(f"deployment file: {lay.deployment_file}")
    return 0 if out.returncode == 0 else 3


def ready(state_dir: Path, replica: str, quiet: bool = False) -> int:
    """Exit 0 when the replica answers an infer itself (model loaded, Python backend alive).

    Triton's ``/v2/health/ready`` is not enough: it says ready while the binding process is
    stopped (SIGSTOP) or before the model is bound.
    """
    lay = load_layout(state_dir.resolve())
    i = replica_index(lay, replica)
    try:
        outputs, _ = infer(f"http://{HOST}:{lay.replica_port(i)}", timeout=2.0)
    except (OSError, ValueError, KeyError) as exc:
        if not quiet:
            print(f"{replica} not ready: {exc}")
        return 1
    if not quiet:
        print(f"{replica} ready: {len(outputs['items'])} items, {outputs['model_version'][0]}")
    return 0


def version(state_dir: Path, replica: str) -> int:
    """Print the model version the replica serves (from its ``model_version`` output)."""
    lay = load_layout(state_dir.resolve())
    i = replica_index(lay, replica)
    try:
        outputs, _ = infer(f"http://{HOST}:{lay.replica_port(i)}", timeout=5.0)
    except (OSError, ValueError, KeyError) as exc:
        raise StackFailure(f"{replica} did not answer: {exc}") from exc
    print(outputs["model_version"][0])
    return 0


def push(state_dir: Path, replica: str, bundle: Path) -> int:
    """Roll ``bundle`` out to one replica: verify it, swap its bundle link, restart, wait ready.

    Triton's own repository API cannot do this here: PyTriton's models are Python-backend stubs
    that call back into the binding process, so a new bundle needs a new binding process.
    Prints a JSON answer; exit 0 accepted, 2 refused (the replica keeps its old bundle).
    """
    lay = load_layout(state_dir.resolve())
    i = replica_index(lay, replica)
    link = lay.served_bundle(replica)
    before = link.resolve()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    check = subprocess.run(
        [venv_tool("python"), "-m", "training", "evaluate", "--bundle", str(bundle)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    if check.returncode != 0:
        reason = (check.stderr or check.stdout).strip().splitlines()[-1:] or ["refused"]
        print(json.dumps({"accepted": False, "replica": replica, "reason": reason[0]}))
        return 2

    def swap_to(target: Path) -> None:
        tmp = link.with_name(link.name + ".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target, target_is_directory=True)
        tmp.replace(link)
        ctl(lay, "restart", replica, timeout=60)

    swap_to(bundle.resolve())
    try:
        wait(
            f"{replica} on {bundle}",
            lambda: ready(lay.state_dir, replica, quiet=True) == 0,
            120,
            lay,
        )
    except StackFailure as exc:
        swap_to(before)
        print(json.dumps({"accepted": False, "replica": replica, "reason": str(exc)}))
        return 2
    outputs, _ = infer(f"http://{HOST}:{lay.replica_port(i)}", timeout=5.0)
    print(
        json.dumps(
            {"accepted": True, "replica": replica, "model_version": outputs["model_version"][0]}
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="start the deployment, print the deployment file's path")
    u.add_argument("--base-port", type=int, default=19000)
    u.add_argument("--bundle", type=Path, default=REPO / "bundles" / "reference")
    u.add_argument(
        "--health-check",
        choices=("server", "model"),
        default="server",
        help=f"HAProxy's httpchk: server = {SERVER_READY} (stock, says ready before the model is "
        f"bound), model = {MODEL_READY}",
    )
    sub.add_parser("down", help="stop everything; exit 1 if a port still listens")
    sub.add_parser("status", help="what runs")
    r = sub.add_parser("ready", help="exit 0 when a replica answers an infer")
    r.add_argument("replica")
    v = sub.add_parser("version", help="print the model version a replica serves")
    v.add_argument("replica")
    pu = sub.add_parser("push", help="roll a bundle out to one replica (exit 2: refused)")
    pu.add_argument("replica")
    pu.add_argument("bundle", type=Path)
    args = p.parse_args(argv)
    try:
        if args.cmd == "up":
            uri = MODEL_READY if args.health_check == "model" else SERVER_READY
            print(up(args.state_dir, args.base_port, args.bundle, uri))
            return 0
        if args.cmd == "down":
            return 1 if down(args.state_dir) else 0
        if args.cmd == "status":
            return status(args.state_dir)
        if args.cmd == "version":
            return version(args.state_dir, args.replica)
        if args.cmd == "push":
            return push(args.state_dir, args.replica, args.bundle)
        return ready(args.state_dir, args.replica)
    except StackFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the chaos_rec errors (ConfigError etc.)
        if type(exc).__module__.startswith("chaos_rec"):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
