"""The model worker process: forward passes outside the server's GIL, tied to its replica."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.integration.test_serving_helpers import (
    Proc,
    assert_same_answers,
    copy_bundle,
    infer_json,
    outputs,
    put_user,
    start_replica,
)
from tests.support.procs import redis_server

pytestmark = pytest.mark.integration
AUTH = {"Authorization": "Bearer tok"}


def _children(pid: int) -> list[int]:
    """Direct child processes of `pid`: every process whose parent (in /proc/N/stat) it is.

    Not /proc/PID/task/TID/children: that lists a child under the thread that
    forked it, and a thread can end mid-scan (the server's pool does, around a
    reload), taking its file with it while its children move to another thread.
    """
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended between the listing and the read
        ppid = int(stat.rsplit(") ", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(entry.name))
    return sorted(out)


def _worker(rep: Proc) -> int:
    kids = [k for k in _children(rep.proc.pid) if _is_worker(k)]
    assert len(kids) == 1, f"expected one model worker under {rep.proc.pid}, found {kids}"
    return kids[0]


def _gone(pid: int, within_s: float = 10.0) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"):
            return True  # a zombie: dead, only not yet reaped by its (dead) parent's reaper
        time.sleep(0.1)
    return False


def test_forward_passes_run_in_a_worker_that_dies_with_a_killed_replica(tmp_path: Path) -> None:
    with redis_server() as url:
        put_user(url, 1, [1, 2, 3, 4])
        rep = start_replica(tmp_path, url)
        try:
            worker = _worker(rep)
            assert outputs(infer_json(rep.http, [1]))["fallback"] == ["none"]
            rep.proc.send_signal(signal.SIGKILL)  # a lost node: no shutdown code runs
            rep.proc.wait(timeout=10)
            assert _gone(worker), f"model worker {worker} outlived its SIGKILLed replica"
        finally:
            rep.stop()


def test_a_dead_worker_fails_the_replica_fast_and_sigterm_stops_both(tmp_path: Path) -> None:
    with redis_server() as url:
        rep = start_replica(tmp_path, url, name="replica-a")
        try:
            worker = _worker(rep)
            os.kill(worker, signal.SIGKILL)
            assert rep.proc.wait(timeout=15) == 1
            assert f"model worker (pid {worker}) exited with code -9" in rep.output()
        finally:
            rep.stop()
        rep = start_replica(tmp_path, url, name="replica-b")
        worker = _worker(rep)
        rep.stop()  # SIGTERM: a clean stop takes the worker along
        assert rep.proc.returncode == 0
        assert _gone(worker)


def test_reload_swaps_the_worker_and_a_refused_bundle_keeps_it(tmp_path: Path) -> None:
    with redis_server() as url:
        put_user(url, 1, [1, 2, 3, 4])
        rep = start_replica(tmp_path, url)
        try:
            first = _worker(rep)
            before = outputs(infer_json(rep.http, [1]))
            good = copy_bundle(tmp_path)
            resp = httpx.post(
                f"{rep.http}/admin/reload", json={"bundle": str(good)}, headers=AUTH, timeout=120
            )
            assert resp.status_code == 200, resp.text
            second = _worker_after_swap(rep, first)
            assert _gone(first), "the replaced worker was not stopped"
            assert_same_answers(outputs(infer_json(rep.http, [1])), before)  # same bundle
            (good / "model_card.md").write_text("tampered\n")
            resp = httpx.post(
                f"{rep.http}/admin/reload", json={"bundle": str(good)}, headers=AUTH, timeout=120
            )
            assert resp.status_code == 409
            assert _worker(rep) == second  # nothing half-started is left behind
        finally:
            rep.stop()


def _worker_after_swap(rep: Proc, old: int) -> int:
    end = time.monotonic() + 10
    while time.monotonic() < end:
        kids = [k for k in _children(rep.proc.pid) if k != old and _is_worker(k)]
        if kids and _gone(old, within_s=0.1):
            return kids[0]
        time.sleep(0.1)
    raise AssertionError(f"worker {old} was not replaced: children {_children(rep.proc.pid)}")


def _is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_in_process_mode_has_no_worker_and_answers_the_same(tmp_path: Path) -> None:
    with redis_server() as url:
        put_user(url, 1, [1, 2, 3, 4])
        put_user(url, 2, [5, 6, 7])
        worker_rep = start_replica(tmp_path, url, name="with-worker")
        try:
            want = outputs(infer_json(worker_rep.http, [1, 2, 77], k=10))
        finally:
            worker_rep.stop()
        rep = start_replica(tmp_path, url, name="in-process", extra=("--model-in-process",))
        try:
            assert [k for k in _children(rep.proc.pid) if _is_worker(k)] == []
            assert_same_answers(outputs(infer_json(rep.http, [1, 2, 77], k=10)), want)
        finally:
            rep.stop()


def test_process_model_answers_like_the_bundle_in_process() -> None:
    """The pipe carries every argument: same ids and scores, seen items kept or excluded."""
    from serving.worker import ProcessModel
    from tests.integration.test_serving_helpers import bundle_path
    from training.bundle import load_bundle

    local = load_bundle(bundle_path(), device="cpu")
    hist = [int(i) for i in local.item_ids[local.popular[:6]]]
    remote = ProcessModel.load(bundle_path(), device="cpu", verify=True, threads=1)
    try:
        for exclude_seen in (True, False):
            want = local.recommend([hist, []], [None, None], 10, exclude_seen)
            got = remote.recommend([hist, []], [None, None], 10, exclude_seen)
            assert np.array_equal(got[0], want[0])
            assert np.allclose(got[1], want[1], atol=1e-6)
        kept = remote.recommend([hist], [None], 10, exclude_seen=False)[0][0]
        assert set(hist) & set(kept.tolist())  # the most popular items come back when kept
    finally:
        remote.close()
