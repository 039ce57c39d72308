"""The stack runtime with real processes: a detached supervisor and a real redis-server."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from chaos_rec.errors import StackError, StackNotRunning
from chaos_rec.stack import (
    StackConfig,
    down,
    load_state,
    restart_component,
    signal_component,
    up,
    wait_component_ready,
)
from chaos_rec.stack.procs import is_alive, is_paused, port_in_use
from tests.support.offline import offline_env
from tests.support.procs import (
    default_sigint,
    ignore_sigint,
    pids_mentioning,
    redis_server_binary,
    wait_gone,
)
from tests.support.stacks import cli, free_base_port, minimal, ping

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[StackConfig]:
    cfg = minimal(tmp_path)
    up(cfg)
    try:
        yield cfg
    finally:
        down(cfg.state_dir)


def test_up_waits_for_readiness_and_down_leaves_nothing(tmp_path: Path) -> None:
    cfg = minimal(tmp_path)
    state = up(cfg)
    comp = state.component("redis")
    assert state["phase"] == "ready" and comp["status"] == "ready"
    assert comp["ports"] == {"redis": cfg.base_port}
    assert ping(comp["endpoints"]["redis"])  # ready means it answers now, no retry
    sup = state.supervisor_pid
    assert sup and is_alive(sup) and comp["pid"] and is_alive(comp["pid"])
    assert up(cfg)["stack_id"] == state["stack_id"]  # idempotent
    down(cfg.state_dir)
    assert not is_alive(sup) and not is_alive(comp["pid"])
    assert not port_in_use(cfg.base_port)
    assert not (cfg.state_dir / "stack.json").exists()
    with pytest.raises(StackNotRunning):
        load_state(cfg.state_dir)


def test_admin_token_is_random_private_and_required_by_the_control_api(tmp_path: Path) -> None:
    cfg = minimal(tmp_path)
    state = up(cfg)
    try:
        token_file = cfg.state_dir / "admin_token"
        token = token_file.read_text()
        assert len(token) >= 32 and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        for name in ("stack.json", "supervisor.config.json"):
            assert token not in (cfg.state_dir / name).read_text()
        pids = [state.supervisor_pid or -1, state.component("redis")["pid"] or -1]
        assert pids_mentioning(token) == []  # on no command line
        url = str(state.control_url) + "/state"
        assert httpx.get(url, timeout=5).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.get(url, headers=wrong, timeout=5).status_code == 401
        right = {"Authorization": f"Bearer {token}"}
        assert httpx.get(url, headers=right, timeout=5).status_code == 200
        signal_component("redis", "cont", cfg.state_dir)  # the API's own calls carry it
    finally:
        down(cfg.state_dir)
    assert not token_file.exists() and not any(is_alive(p) for p in pids)
    second = up(cfg)
    try:
        assert (cfg.state_dir / "admin_token").read_text() != token  # a new stack, a new token
    finally:
        down(cfg.state_dir)
    assert second["stack_id"] != state["stack_id"]


def test_cli_up_status_json_down(tmp_path: Path) -> None:
    sdir, base = str(tmp_path / "s"), str(free_base_port())
    res = cli("stack", "up", "--state-dir", sdir, "--base-port", base, "--replicas", "0",
              "--no-gateway", "--no-toxiproxy")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert re.search(r"^stack up: redis ready after \d+\.\d s$", res.stderr, re.M), res.stderr
    res = cli("stack", "status", "--state-dir", sdir, "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    pids = [data["supervisor"]["pid"], data["components"]["redis"]["pid"]]
    assert data["components"]["redis"]["endpoints"]["redis"] == f"redis://127.0.0.1:{base}/0"
    res = cli("stack", "down", "--state-dir", sdir)
    assert res.returncode == 0, res.stderr
    assert not any(is_alive(p) for p in pids) and not port_in_use(int(base))
    assert cli("stack", "status", "--state-dir", sdir).returncode == 3


def test_sigkilled_replica_is_restarted_and_counted(stack: StackConfig) -> None:
    before = load_state(stack.state_dir).component("redis")
    signal_component("redis", "kill", state_dir=stack.state_dir)
    after_kill = load_state(stack.state_dir).component("redis")
    assert after_kill["status"] in ("restarting", "starting")
    waited = wait_component_ready("redis", 20, state_dir=stack.state_dir)
    assert waited >= 0
    comp = load_state(stack.state_dir).component("redis")
    assert comp["restarts"] == 1 and comp["pid"] != before["pid"]
    assert not is_alive(before["pid"] or -1)
    assert ping(comp["endpoints"]["redis"])
    # a crash not asked for (plain SIGKILL from outside) is noticed too
    os.kill(comp["pid"] or -1, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while load_state(stack.state_dir).component("redis")["restarts"] < 2:
        assert time.monotonic() < deadline, "supervisor did not restart redis"
        time.sleep(0.05)
    wait_component_ready("redis", 20, state_dir=stack.state_dir)


def test_sigstop_is_paused_not_dead_then_sigcont(stack: StackConfig) -> None:
    comp = load_state(stack.state_dir).component("redis")
    pid, url = comp["pid"] or -1, comp["endpoints"]["redis"]
    signal_component("redis", "stop", state_dir=stack.state_dir)
    comp = load_state(stack.state_dir).component("redis")
    assert comp["status"] == "paused" and comp["paused"] and is_paused(pid)
    assert not ping(url, timeout=0.3)  # hung, not gone
    time.sleep(0.5)  # the supervisor must not restart a stopped process
    comp = load_state(stack.state_dir).component("redis")
    assert comp["pid"] == pid and comp["restarts"] == 0 and comp["status"] == "paused"
    with pytest.raises(StackError, match="not ready"):
        wait_component_ready("redis", 0.3, state_dir=stack.state_dir)
    signal_component("redis", "cont", state_dir=stack.state_dir)
    assert wait_component_ready("redis", 5, state_dir=stack.state_dir) < 5
    assert not is_paused(pid) and ping(url)
    # a stop sent from outside the API is seen as paused too
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while load_state(stack.state_dir).component("redis")["status"] != "paused":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(pid, signal.SIGCONT)


def test_restart_with_wipe_loses_data(stack: StackConfig) -> None:
    url = load_state(stack.state_dir).component("redis")["endpoints"]["redis"]
    client = redis.Redis.from_url(url, socket_timeout=2)
    client.set("k", "v")
    client.close()
    restart_component("redis", wipe=True, state_dir=stack.state_dir)
    comp = load_state(stack.state_dir).component("redis")
    assert comp["status"] == "ready" and comp["restarts"] == 1
    client = redis.Redis.from_url(url, socket_timeout=2)
    assert client.get("k") is None
    client.close()


def test_down_cleans_up_after_supervisor_was_sigkilled(tmp_path: Path) -> None:
    cfg = minimal(tmp_path)
    state = up(cfg)
    sup, pid = state.supervisor_pid or -1, state.component("redis")["pid"] or -1
    os.kill(sup, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while is_alive(sup) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert is_alive(pid)  # the orphan keeps running until cleaned
    with pytest.raises(StackNotRunning, match="gone"):
        load_state(cfg.state_dir)
    assert cli("stack", "status", "--state-dir", str(cfg.state_dir)).returncode == 3
    # the next `up` would also clean; here `down` does it from the state file
    down(cfg.state_dir)
    assert not is_alive(pid) and not port_in_use(cfg.base_port)


def _slow_redis(tmp_path: Path, delay: float) -> str:
    script = tmp_path / "slow-redis-server"
    script.write_text(f'#!/bin/sh\nsleep {delay}\nexec {redis_server_binary()} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def _stack_pids(state_dir: Path) -> list[int]:
    """Pids of processes whose command line names this state dir (supervisor) or its redis."""
    return pids_mentioning(str(state_dir))


def _start_up(cfg: StackConfig, preexec: Callable[[], None]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chaos_rec", "stack", "up", "--state-dir", str(cfg.state_dir),
         "--base-port", str(cfg.base_port), "--replicas", "0", "--no-gateway", "--no-toxiproxy"],
        env=offline_env(CHAOS_REC_REDIS_BINARY=cfg.redis_binary or ""),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec,
    )  # fmt: skip


# Moments of `stack up` to interrupt: seconds after the launcher started (importing, parsing,
# preflight) and after its state file appeared (supervisor starting, Redis not ready yet).
UP_MOMENTS = [("start", d) for d in (0.3, 0.6)] + [("state", d) for d in (0, 0.3, 0.8, 1.5, 2.5)]


@pytest.mark.parametrize(("after", "delay"), UP_MOMENTS, ids=[f"{a}+{d}s" for a, d in UP_MOMENTS])
def test_ctrl_c_during_up_leaves_nothing_running(
    tmp_path: Path, after: str, delay: float, record_property: Callable[[str, object], None]
) -> None:
    cfg = minimal(tmp_path, redis_binary=_slow_redis(tmp_path, 4))
    proc = _start_up(cfg, default_sigint)
    try:
        deadline = time.monotonic() + 20
        while after == "state" and not (cfg.state_dir / "stack.json").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        left = wait_gone(lambda: _stack_pids(cfg.state_dir), 5.0)
        record_property("signal_sweep", {"moment": f"{after}+{delay}s", "rc": proc.returncode,
                                         "leftovers": len(left)})  # fmt: skip
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "interrupted" in err
        assert left == []
        assert not port_in_use(cfg.base_port) and not (cfg.state_dir / "stack.json").exists()
    finally:
        proc.kill()
        proc.wait(timeout=10)
        down(cfg.state_dir)


def test_up_started_with_sigint_ignored_keeps_ignoring_it(tmp_path: Path) -> None:
    """An inherited SIG_IGN (nohup, `cmd &` in a script) is respected: Ctrl-C does not stop up."""
    cfg = minimal(tmp_path, redis_binary=_slow_redis(tmp_path, 1))
    proc = _start_up(cfg, ignore_sigint)
    try:
        deadline = time.monotonic() + 20
        while not (cfg.state_dir / "stack.json").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert load_state(cfg.state_dir)["phase"] == "ready"
    finally:
        proc.kill()
        proc.wait(timeout=10)
        down(cfg.state_dir)
    assert _stack_pids(cfg.state_dir) == [] and not port_in_use(cfg.base_port)


def test_launcher_sigkilled_then_down_cleans(tmp_path: Path) -> None:
    cfg = minimal(tmp_path, redis_binary=_slow_redis(tmp_path, 2))
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaos_rec", "stack", "up", "--state-dir", str(cfg.state_dir),
         "--base-port", str(cfg.base_port), "--replicas", "0", "--no-gateway", "--no-toxiproxy"],
        env=offline_env(CHAOS_REC_REDIS_BINARY=cfg.redis_binary or ""),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not (cfg.state_dir / "stack.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=10)
    state = load_state(cfg.state_dir, require_live=False)
    sup = state.supervisor_pid or -1
    os.kill(sup, signal.SIGKILL)  # and the supervisor too, mid-start: only the state file is left
    time.sleep(0.2)
    assert _stack_pids(cfg.state_dir) != [] or is_alive(state.component("redis")["pid"] or -1)
    res = cli("stack", "down", "--state-dir", str(cfg.state_dir))
    assert res.returncode == 0, res.stderr
    assert _stack_pids(cfg.state_dir) == [] and not port_in_use(cfg.base_port)


@pytest.mark.parametrize(
    ("args", "config_text", "needle"),
    [
        (["--bogus"], None, "unrecognized arguments: --bogus"),
        (["--config", "{cfg}"], "replicas = [oops", "bad config file"),
        (["--config", "{cfg}"], "colour = 'red'\n", "unknown stack config key(s): colour"),
        (["--replicas", "-1"], None, "replicas must be in 0..10"),
        (
            ["--replicas", "1", "--no-toxiproxy", "--bundle", "/nonexistent/bundle"],
            None,
            "model bundle /nonexistent/bundle does not exist",
        ),
    ],
)
def test_bad_input_gives_one_clear_line(
    tmp_path: Path, args: list[str], config_text: str | None, needle: str
) -> None:
    cfg_file = tmp_path / "stack.toml"
    if config_text is not None:
        cfg_file.write_text(config_text)
    argv = [a.replace("{cfg}", str(cfg_file)) for a in args]
    res = cli("stack", "up", "--state-dir", str(tmp_path / "s"), *argv)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert needle in res.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "s" / "stack.json").exists()


def test_port_in_use_and_missing_redis_are_clear_errors(tmp_path: Path) -> None:
    cfg = minimal(tmp_path)
    with subprocess.Popen([redis_server_binary(), "--port", str(cfg.base_port), "--save", "",
                           "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL) as squatter:  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while not port_in_use(cfg.base_port):
                assert time.monotonic() < deadline
                time.sleep(0.02)
            res = cli("stack", "up", "--state-dir", str(cfg.state_dir), "--base-port",
                      str(cfg.base_port), "--replicas", "0", "--no-gateway", "--no-toxiproxy")  # fmt: skip
            assert res.returncode == 1 and "Traceback" not in res.stderr
            assert res.stderr.strip().splitlines() == [
                f"chaos-rec: error: port(s) in use: {cfg.base_port} (redis) "
                "(choose another base_port)"
            ]
        finally:
            squatter.kill()
    res = subprocess.run(
        [sys.executable, "-m", "chaos_rec", "stack", "up", "--state-dir", str(cfg.state_dir),
         "--replicas", "0", "--no-gateway", "--no-toxiproxy", "--base-port", str(cfg.base_port)],
        env=offline_env(CHAOS_REC_REDIS_BINARY="/nonexistent/redis-server"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "chaos-rec: error: redis binary '/nonexistent/redis-server' not found or not executable"
    ]
    assert _stack_pids(cfg.state_dir) == []


def test_component_that_dies_before_ready_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "broken-redis"
    script.write_text("#!/bin/sh\necho 'FATAL: cannot open the data dir' >&2\nexit 3\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    cfg = minimal(tmp_path, redis_binary=str(script))
    with pytest.raises(StackError) as info:
        up(cfg)
    msg = str(info.value)
    assert "redis exited with code 3 before it was ready: FATAL: cannot open the data dir" in msg
    assert "\n" not in msg
    assert _stack_pids(cfg.state_dir) == [] and not (cfg.state_dir / "stack.json").exists()


def test_up_returns_only_once_a_slow_component_is_ready(tmp_path: Path) -> None:
    cfg = minimal(tmp_path, redis_binary=_slow_redis(tmp_path, 1.5))
    try:
        state = up(cfg)
        comp = state.component("redis")
        assert comp["status"] == "ready"
        assert ping(comp["endpoints"]["redis"], timeout=0.5)  # at once, no retry
        log = (cfg.state_dir / "logs" / "redis.log").read_text()
        assert "Ready to accept connections" in log or "Server initialized" in log
    finally:
        down(cfg.state_dir)


def test_next_up_cleans_leftovers_of_a_killed_supervisor(tmp_path: Path) -> None:
    cfg = minimal(tmp_path)
    first = up(cfg)
    old_sup, old_redis = first.supervisor_pid or -1, first.component("redis")["pid"] or -1
    os.kill(old_sup, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while is_alive(old_sup) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        second = up(cfg)  # finds the orphaned redis (holding the port) and cleans it first
        assert second["stack_id"] != first["stack_id"]
        assert not is_alive(old_redis) and not is_alive(old_sup)
        new_redis = second.component("redis")["pid"]
        assert (
            new_redis
            and new_redis != old_redis
            and ping(second.component("redis")["endpoints"]["redis"])
        )
    finally:
        down(cfg.state_dir)
    assert not port_in_use(cfg.base_port)
