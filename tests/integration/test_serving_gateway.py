"""Gateway over two real replicas: routing, a SIGKILLed replica, a hung one, re-admission,
user affinity through a feature-store wipe."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_serving_helpers import (
    Proc,
    infer_json,
    outputs,
    put_user,
    start_gateway,
    start_replica,
)
from tests.support.procs import redis_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Proc, list[Proc], str, Path]]:
    """Redis, two replicas and a gateway, shared by this module's tests (in order)."""
    tmp_path = tmp_path_factory.mktemp("gw")
    with redis_server() as url:
        reps = [start_replica(tmp_path, url, name=f"replica-{i}") for i in range(2)]
        gw = None
        try:
            popular = [
                int(i) for i in outputs(infer_json(reps[0].http, [999_999], k=10))["item_ids"][0]
            ]
            for u in range(1, 6):
                put_user(url, u, popular[u : u + 4], category=0)
            gw = start_gateway(tmp_path, {r.name: r.grpc for r in reps}, ["--deadline-ms", "1500"])
            yield gw, reps, url, tmp_path
        finally:
            if gw is not None:
                gw.stop()
            for r in reps:
                r.stop()


def _rec(gw: Proc, user: int, **kw: object) -> httpx.Response:
    return httpx.post(f"{gw.http}/v1/recommend", json={"user_id": user, "k": 5, **kw}, timeout=10)


class Load:
    """Closed-loop load from a few threads; records every status code and replica."""

    def __init__(self, gw: Proc, threads: int = 4) -> None:
        self.gw = gw
        self.codes: Counter[int] = Counter()
        self.replicas: Counter[str] = Counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def _run(self, i: int) -> None:
        with httpx.Client(timeout=10) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                try:
                    r = client.post(
                        f"{self.gw.http}/v1/recommend", json={"user_id": 1 + (n + i) % 40, "k": 5}
                    )
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                self.codes[r.status_code] += 1
                if r.status_code == 200:
                    self.replicas[r.json()["replica"]] += 1
                else:
                    self.errors.append(r.text)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)


def test_contract_response_and_bad_input(gateway_stack: tuple[Proc, list[Proc], str, Path]) -> None:
    gw, reps, _, _ = gateway_stack
    body = _rec(gw, 1).json()
    assert set(body) == {"user_id", "items", "fallback", "model_version", "replica", "latency_ms"}
    assert body["fallback"] == "none" and len(body["items"]) == 5
    assert body["replica"] in {r.name for r in reps}
    assert len({_rec(gw, 2).json()["replica"] for _ in range(6)}) == 1  # a user stays put
    assert {_rec(gw, u).json()["replica"] for u in range(1, 41)} == {"replica-0", "replica-1"}
    for bad, msg in (
        ({"user_id": "1"}, "user_id"),
        ({"user_id": 1, "k": 0}, "'k'"),
        ({"user_id": 1, "x": 1}, "unknown field"),
    ):
        r = httpx.post(f"{gw.http}/v1/recommend", json=bad, timeout=5)
        assert r.status_code == 400 and msg in r.json()["error"]
    r = httpx.post(f"{gw.http}/v1/recommend", content=b"\xff{", timeout=5)
    assert r.status_code == 400
    assert httpx.get(f"{gw.http}/healthz", timeout=5).status_code == 200
    auth = {"Authorization": "Bearer tok"}
    assert httpx.get(f"{gw.http}/admin/resilience", timeout=5).status_code == 401
    off = httpx.post(
        f"{gw.http}/admin/resilience", json={"hedging": False}, headers=auth, timeout=5
    )
    assert off.json() == {
        "retries": True,
        "hedging": False,
        "ejection": True,
        "deadlines": True,
        "shedding": True,
    }
    httpx.post(f"{gw.http}/admin/resilience", json={"hedging": True}, headers=auth, timeout=5)
    assert "cr_gateway_latency_seconds_bucket" in httpx.get(f"{gw.http}/metrics", timeout=5).text


def test_sigkilled_replica_costs_no_failed_request_and_is_readmitted(
    gateway_stack: tuple[Proc, list[Proc], str, Path],
) -> None:
    gw, reps, url, tmp = gateway_stack
    victim = reps[0]
    ports = (int(victim.http.rsplit(":", 1)[1]), int(victim.grpc.rsplit(":", 1)[1]))
    with Load(gw) as load:
        time.sleep(1.5)
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(timeout=10)
        time.sleep(2.5)
        ready = httpx.get(f"{gw.http}/readyz", timeout=5).json()
        assert ready["replicas"]["replica-0"]["in_rotation"] is False
        before = load.replicas["replica-0"]
        reps[0] = start_replica(tmp, url, name="replica-0", ports=ports)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and load.replicas["replica-0"] == before:
            time.sleep(0.2)
    assert load.errors == []
    assert set(load.codes) == {200}
    assert load.replicas["replica-0"] > before  # re-admitted once its health returned


def test_hung_replica_is_hedged_around_and_ejected(
    gateway_stack: tuple[Proc, list[Proc], str, Path],
) -> None:
    gw, reps, _, _ = gateway_stack
    hung = reps[1]
    with Load(gw, threads=2) as load:
        time.sleep(1.0)
        os.killpg(hung.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(3.0)
            ready = httpx.get(f"{gw.http}/readyz", timeout=5).json()
        finally:
            os.killpg(hung.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            back = httpx.get(f"{gw.http}/readyz", timeout=5).json()["replicas"]["replica-1"]
            if back["in_rotation"]:
                break
            time.sleep(0.2)
    assert ready["replicas"]["replica-1"]["in_rotation"] is False  # health checks timed out
    assert back["in_rotation"] is True  # and it came back after SIGCONT
    assert set(load.codes) == {200}, load.errors[:3]
    metrics = httpx.get(f"{gw.http}/metrics", timeout=5).text
    hedges = [ln for ln in metrics.splitlines() if ln.startswith("cr_gateway_hedges_total ")]
    assert hedges and float(hedges[0].split()[-1]) > 0  # calls stuck on it were hedged


def test_affinity_serves_a_wiped_users_features_from_the_replica_that_cached_them(
    gateway_stack: tuple[Proc, list[Proc], str, Path],
) -> None:
    """Each replica caches the last-known features of the users it served; with the gateway
    keeping a user on one replica, a feature-store wipe degrades none of them (round-robin
    would send about half of them to a replica that never saw them: cold start)."""
    import redis

    gw, _, url, _ = gateway_stack
    auth = {"Authorization": "Bearer tok"}
    users = range(101, 121)  # never asked for before: no replica has them cached yet
    for u in users:
        put_user(url, u, [u % 50 + 1, u % 50 + 2, u % 50 + 3], category=0)
    # no hedging here: a hedge answered by the other replica would warm both caches
    httpx.post(f"{gw.http}/admin/resilience", json={"hedging": False}, headers=auth, timeout=5)
    try:
        first = {u: _rec(gw, u).json() for u in users}
        assert {b["fallback"] for b in first.values()} == {"none"}
        assert {b["replica"] for b in first.values()} == {"replica-0", "replica-1"}
        redis.Redis.from_url(url).flushall()  # the feature store loses every key
        again = {u: _rec(gw, u).json() for u in reversed(users)}  # round-robin: other replica
    finally:
        httpx.post(f"{gw.http}/admin/resilience", json={"hedging": True}, headers=auth, timeout=5)
    assert {u: b["fallback"] for u, b in again.items()} == dict.fromkeys(users, "cached_features")
    assert {u: b["replica"] for u, b in again.items()} == {
        u: b["replica"] for u, b in first.items()
    }
