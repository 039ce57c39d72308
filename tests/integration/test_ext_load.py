"""LoadRunner: real Locust subprocess against a real HTTP server on loopback.

The server here answers like the gateway with a settable delay, so the
figures the timeline reports can be checked against a known condition.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.core.rundir import RunContext
from chaos_rec.load import LoadRunner
from chaos_rec.slo.metrics import summarize
from tests.support.procs import free_port

pytestmark = pytest.mark.integration


class _Gateway(ThreadingHTTPServer):
    daemon_threads = True
    delay_s = 0.0
    status = 200
    seen: list[dict[str, Any]]
    paths: list[str]
    auth: list[str | None]


class _Handler(BaseHTTPRequestHandler):
    server: _Gateway

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.paths.append(self.path)
        self.server.auth.append(self.headers.get("authorization"))
        if self.path.startswith("/v2/models/"):
            return self._infer(body)
        self.server.seen.append(body)
        time.sleep(self.server.delay_s)
        known = body["user_id"] < 900_000_000
        tier = (
            "none"
            if known and body["user_id"] % 2
            else ("cached_features" if known else "cold_start")
        )
        payload = json.dumps({"user_id": body["user_id"], "items": [], "fallback": tier}).encode()
        self._answer(payload)

    def _answer(self, payload: bytes) -> None:
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _infer(self, body: dict[str, Any]) -> None:
        """An OIP v2 model: item ids from the user id, a `tier` output ("cache" for even users)."""
        (uid,) = (t["data"][0] for t in body["inputs"] if t["name"] == "uid")
        self.server.seen.append({"user_id": uid, "shape": body["inputs"][0]["shape"]})
        outputs = [
            {"name": "item_ids", "datatype": "INT64", "shape": [1, 3], "data": [uid, 2, 3]},
            {"name": "tier", "datatype": "BYTES", "shape": [1, 1],
             "data": ["cache" if uid % 2 == 0 else "model"]},
        ]  # fmt: skip
        self._answer(json.dumps({"model_name": "rec", "outputs": outputs}).encode())


@pytest.fixture
def gateway() -> Iterator[_Gateway]:
    srv = _Gateway(("127.0.0.1", free_port()), _Handler)
    srv.seen = []
    srv.paths = []
    srv.auth = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _wait_rows(ctx: RunContext, after: int, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [r for r in ctx.timeline() if r["t"] >= after and r["requests"] > 0]
        if len(rows) >= n:
            return [dict(r) for r in rows[:n]]
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} loaded rows after {after}")


def test_timeline_reflects_injected_latency_status_tiers_and_phases(
    gateway: _Gateway, tmp_path: Path
) -> None:
    holdout = tmp_path / "holdout.json"
    holdout.write_text(
        json.dumps([{"user_id": u, "target_item": 1, "query": "drama"} for u in range(1, 50)])
    )
    url = f"http://127.0.0.1:{gateway.server_address[1]}"
    ctx = RunContext(tmp_path / "run")
    with LoadRunner(url, ctx.run_dir, rps=20, users=5, seed=7, holdout=holdout) as load:
        assert load.running()
        base = _wait_rows(ctx, int(time.time()) + 1, 3)
        gateway.delay_s = 0.2
        ctx.mark("fault", "test")
        slow = _wait_rows(ctx, int(time.time()) + 2, 3)
        gateway.delay_s = 0.0
        gateway.status = 503
        ctx.mark("recovery", "test")
        broken = _wait_rows(ctx, int(time.time()) + 2, 2)
        load.set_level(2.0)
        gateway.status = 200
        spiked = _wait_rows(ctx, int(time.time()) + 2, 2)
    assert not load.running()
    b, s, x = summarize(base), summarize(slow), summarize(broken)
    print("baseline", b["p50_ms"], "slow", s["p50_ms"], "rps", b["rps"])
    assert s["p50_ms"] - b["p50_ms"] == pytest.approx(200, abs=60)
    assert {r["phase"] for r in base} == {"steady"}
    assert {r["phase"] for r in slow} == {"fault"}
    assert {r["phase"] for r in broken} == {"recovery"}
    assert b["availability"] == 1.0 and x["availability"] == 0.0
    assert set(x["status"]) == {"503"}
    assert 0.2 < b["fallback_ratio"] < 0.8  # even users get cached_features
    assert "cold_start" not in b["tiers"]
    assert all(r["level"] == 2.0 for r in spiked)
    # the seeded mix: unknown users, searches with the holdout's query, personalised
    kinds = {(p["user_id"] >= 900_000_000, p["query"]) for p in gateway.seen}
    assert {(True, None), (False, "drama"), (False, None)} <= kinds


OIP_TRAFFIC = {
    "kind": "oip-v2", "model": "rec", "user_input": "uid", "shape": [1, 1],
    "items_output": "item_ids", "fallback_output": "tier", "fallback_ok": "model",
    "headers": {"authorization": "Bearer ${secret:TOKEN}"},
}  # fmt: skip


def test_load_through_the_oip_adapter_for_the_deployment_files_users(
    gateway: _Gateway, tmp_path: Path
) -> None:
    """Locust sends OIP v2 infer requests for the listed users and reads the tier tensor; the
    header's secret reaches the server but no file of the run."""
    url = f"http://127.0.0.1:{gateway.server_address[1]}"
    ctx = RunContext(tmp_path / "run")
    with LoadRunner(
        url, ctx.run_dir, rps=20, users=5, seed=3, user_ids=[11, 12, 13], traffic=OIP_TRAFFIC,
        secrets={"TOKEN": "s3cr3t-value"},
    ):  # fmt: skip
        rows = _wait_rows(ctx, int(time.time()) + 1, 3)
    assert set(gateway.auth) == {"Bearer s3cr3t-value"}
    for path in ctx.run_dir.rglob("*"):
        assert not path.is_file() or b"s3cr3t-value" not in path.read_bytes(), path
    stats = summarize(rows)
    assert set(gateway.paths) == {"/v2/models/rec/infer"}
    known = {p["user_id"] for p in gateway.seen if p["user_id"] < 900_000_000}
    assert known == {11, 12, 13}  # only the deployment file's users, never built-in ids
    assert all(p["shape"] == [1, 1] for p in gateway.seen)
    assert stats["availability"] == 1.0
    assert set(stats["tiers"]) <= {"none", "cache"} and "cache" in stats["tiers"]
    assert 0.0 < stats["fallback_ratio"] < 1.0  # user 12 answered from the cache tier


def test_locust_that_cannot_start_is_one_clear_error(tmp_path: Path) -> None:
    from chaos_rec.errors import ConfigError

    with pytest.raises(ConfigError, match="holdout file not found"):
        LoadRunner("http://127.0.0.1:1", tmp_path, holdout=tmp_path / "nope.json")
    with pytest.raises(ConfigError, match=r"^load needs user ids: a hold-out file"):
        LoadRunner("http://127.0.0.1:1", tmp_path)
    with pytest.raises(ConfigError, match=r"^load traffic\.model: required"):
        LoadRunner("http://127.0.0.1:1", tmp_path, user_ids=[1], traffic={"kind": "oip-v2"})
    with pytest.raises(ConfigError, match="load rps must be within"):
        LoadRunner("http://127.0.0.1:1", tmp_path, rps=0)


def test_many_users_spread_evenly_and_a_new_level_applies_within_a_second(
    gateway: _Gateway, tmp_path: Path
) -> None:
    """300 paced users: no burst of all users at start, and x10 takes effect at once (no backlog)."""
    url = f"http://127.0.0.1:{gateway.server_address[1]}"
    ctx = RunContext(tmp_path / "run")
    with LoadRunner(url, ctx.run_dir, rps=20, users=300, seed=1, user_ids=[1, 2]) as load:
        start = int(time.time())
        steady = _wait_rows(ctx, start + 1, 3)
        load.set_level(10.0)
        changed = time.time()
        spiked = _wait_rows(ctx, int(changed) + 1, 3)
    per_s = [r["requests"] for r in steady]
    print("steady", per_s, "spiked", [r["requests"] for r in spiked])
    # 300 users at 20 rps in total: ~20 a second, never the 300 a closed-loop start would fire
    assert all(5 <= n <= 40 for n in per_s), per_s
    # x10: ~200 a second from the first full second after the change
    assert all(150 <= r["requests"] <= 260 for r in spiked), [r["requests"] for r in spiked]


def test_master_and_workers_write_one_timeline(gateway: _Gateway, tmp_path: Path) -> None:
    """Locust's master/worker mode: 2 worker processes, one row per second with their sum."""
    url = f"http://127.0.0.1:{gateway.server_address[1]}"
    ctx = RunContext(tmp_path / "run")
    with LoadRunner(url, ctx.run_dir, rps=20, users=6, seed=2, user_ids=[1, 2, 3],
                    workers=2) as load:  # fmt: skip
        assert len(load._workers) == 2
        rows = _wait_rows(ctx, int(time.time()) + 2, 4)
    assert [r["t"] for r in rows] == list(range(rows[0]["t"], rows[0]["t"] + 4))  # one per second
    stats = summarize(rows)
    assert 14 <= stats["rps"] <= 26 and stats["availability"] == 1.0  # the schedule, not 2x it
    assert all(r["sent"] >= r["requests"] - 2 for r in rows)
    assert all(w.poll() is not None for w in load._workers)  # gone with their master


def test_master_keeps_the_schedule_in_step_with_its_workers(
    gateway: _Gateway, tmp_path: Path
) -> None:
    """A level change 0.3 s into a second: the master's schedule (``target_rps``) follows it
    within 0.1 s, as the workers' senders do, so the seconds of a spike's start and end are not
    charged to the generator (it used to re-read the level once a second and asked a whole
    second at the old rate)."""
    url = f"http://127.0.0.1:{gateway.server_address[1]}"
    ctx = RunContext(tmp_path / "run")

    def at_fraction(f: float) -> int:
        time.sleep((f - time.time() % 1.0) % 1.0)
        return int(time.time())

    with LoadRunner(url, ctx.run_dir, rps=20, users=60, seed=4, user_ids=[1, 2],
                    workers=2) as load:  # fmt: skip
        _wait_rows(ctx, int(time.time()) + 1, 2)
        rise = at_fraction(0.3)
        load.set_level(10.0)
        time.sleep(2.0)
        drop = at_fraction(0.3)
        load.set_level(1.0)
        rows = {r["t"]: r for r in _wait_rows(ctx, rise - 1, drop - rise + 3)}
    for t in (rise, drop):
        row = rows[t]
        print(t - rise, "asked", row["target_rps"], "sent", row["sent"])
        assert abs(row["sent"] - row["target_rps"]) <= 0.25 * row["target_rps"] + 10, row
