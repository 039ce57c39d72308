"""The oip-v2 adapter over gRPC against one real model server: the same answers as over REST.

One ``python -m serving.model_server`` replica on a real Redis (the helpers of the serving
integration tests); the adapter sends ModelInfer to its gRPC port and POST /infer to its HTTP
port for the same users and compares the answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.backends.adapters import AdapterTraffic, TrafficSpec
from chaos_rec.core.quality import replay
from chaos_rec.traffic.grpc_client import OipGrpcClient
from tests.integration.test_serving_helpers import (
    ROOT,
    Proc,
    infer_json,
    outputs,
    put_user,
    start_replica,
)
from tests.support.procs import free_port, redis_server

pytestmark = pytest.mark.integration

W = "deployment file d.json: traffic"
OIP: dict[str, Any] = {
    "kind": "oip-v2", "model": "recommender", "k_input": "k", "items_output": "item_ids",
    "fallback_output": "fallback", "fallback_ok": "none",
    "headers": {"X-Team": "recs"},  # sent as metadata "x-team" over gRPC
}  # fmt: skip
UNKNOWN_USER = 999_999  # no features stored: a fallback tier
USERS = (1, 2, UNKNOWN_USER)


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """One replica on a real Redis, with user 1 (a history) and user 2 (none) stored."""
    tmp = tmp_path_factory.mktemp("traffic-grpc")
    with redis_server() as url:
        rep = start_replica(tmp, url)
        try:
            popular = [
                int(i) for i in outputs(infer_json(rep.http, [UNKNOWN_USER], k=10))["item_ids"][0]
            ]
            put_user(url, 1, popular[3:8], category=0)
            put_user(url, 2, [], category=1)
            yield rep
        finally:
            rep.stop()


def _adapters(rep: Proc, timeout_s: float = 10.0) -> tuple[AdapterTraffic, AdapterTraffic]:
    rest = TrafficSpec.from_dict(OIP, W)
    grpc = TrafficSpec.from_dict({**OIP, "protocol": "grpc", "grpc_url": rep.grpc}, W)
    return AdapterTraffic(rep.http, rest, timeout_s), AdapterTraffic(rep.http, grpc, timeout_s)


def test_grpc_answers_equal_rest_answers_for_the_same_users(replica: Proc) -> None:
    rest, grpc = _adapters(replica)
    try:
        for k in (5, 3):
            for user in USERS:
                over_rest = rest.recommend(user, k)
                over_grpc = grpc.recommend(user, k)
                assert over_rest is not None and len(over_rest.items) == k, (user, over_rest)
                assert over_grpc == over_rest, (user, k)
        tiers = {user: getattr(grpc.recommend(user, 5), "tier", None) for user in USERS}
        assert tiers[1] == "none" and tiers[UNKNOWN_USER] != "none", tiers
        channel = grpc._grpc._channel if grpc._grpc else None
        assert channel is not None and grpc.recommend(1, 5) is not None
        assert grpc._grpc is not None and grpc._grpc._channel is channel  # one channel, reused
    finally:
        rest.close()
        grpc.close()
    assert grpc._grpc is None


def test_the_quality_replay_over_grpc_measures_what_it_measures_over_rest(
    replica: Proc, tmp_path: Path
) -> None:
    rest, grpc = _adapters(replica)
    first = rest.recommend(1, 10)
    assert first is not None
    rows = [{"user_id": u, "target_item": first.items[2]} for u in USERS]
    holdout = tmp_path / "holdout.json"
    holdout.write_text(json.dumps(rows))
    over_rest = replay(rest, holdout, sample=len(rows), k=10, seed=3)
    over_grpc = replay(grpc, holdout, sample=len(rows), k=10, seed=3)
    for key in ("t", "duration_s"):
        over_rest.pop(key), over_grpc.pop(key)
    assert over_grpc == over_rest
    assert over_grpc["answered"] == len(rows) and over_grpc["hits"] >= 1


def test_grpc_failures_are_statuses_without_answers(replica: Proc) -> None:
    grpc = TrafficSpec.from_dict({**OIP, "protocol": "grpc", "grpc_url": replica.grpc}, W)
    unknown_model = TrafficSpec.from_dict({**grpc.to_dict(), "model": "nope"}, W)
    reply = OipGrpcClient(unknown_model, 10.0).infer(1, 5)
    assert (reply.code, reply.status, reply.answer) == ("NOT_FOUND", 404, None)
    assert "nope" in reply.detail
    # the timeout is the call's deadline: 0.5 ms is too short for a forward pass
    late = OipGrpcClient(grpc, 0.0005).infer(1, 5)
    assert (late.code, late.status, late.answer) == ("DEADLINE_EXCEEDED", 504, None)
    nobody = TrafficSpec.from_dict({**grpc.to_dict(), "grpc_url": f"127.0.0.1:{free_port()}"}, W)
    down = OipGrpcClient(nobody, 5.0).infer(1, 5)
    assert (down.code, down.status, down.answer) == ("UNAVAILABLE", 503, None)


GEVENT = textwrap.dedent(
    """
    from gevent import monkey

    monkey.patch_all()
    import json, sys
    import gevent
    import grpc.experimental.gevent

    grpc.experimental.gevent.init_gevent()
    from chaos_rec.traffic import TrafficSpec
    from chaos_rec.traffic.grpc_client import OipGrpcClient

    spec = TrafficSpec.from_dict(json.loads(sys.argv[1]), "traffic")
    client = OipGrpcClient(spec, 10.0)
    users = json.loads(sys.argv[2])
    jobs = [gevent.spawn(client.infer, u, 5) for u in users * 4]
    gevent.joinall(jobs, timeout=60, raise_error=True)
    print(json.dumps([[j.value.code, list(j.value.answer.items), j.value.answer.tier]
                      for j in jobs]))
    client.close()
    """
)


def test_the_client_works_in_a_gevent_patched_process(replica: Proc) -> None:
    """What the Locust subprocess does: gevent first, init_gevent, one client, many greenlets."""
    rest, _ = _adapters(replica)
    try:
        want = [rest.recommend(u, 5) for u in USERS]
    finally:
        rest.close()
    spec = {**OIP, "protocol": "grpc", "grpc_url": replica.grpc}
    done = subprocess.run(
        [sys.executable, "-c", GEVENT, json.dumps(spec), json.dumps(list(USERS))],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    assert len(got) == 4 * len(USERS)
    for i, (code, items, tier) in enumerate(got):
        answer = want[i % len(USERS)]
        assert answer is not None
        assert (code, tuple(items), tier) == ("OK", answer.items, answer.tier)


def test_locust_load_over_grpc_records_what_the_replica_answered(
    replica: Proc, tmp_path: Path
) -> None:
    """Real Locust (gevent-patched) sending ModelInfer: every second a row, tiers from the marker."""
    import time

    from chaos_rec.core.rundir import RunContext
    from chaos_rec.load import LoadRunner
    from chaos_rec.slo.metrics import summarize

    ctx = RunContext(tmp_path / "run")
    spec = {**OIP, "protocol": "grpc", "grpc_url": replica.grpc}
    with LoadRunner(replica.http, ctx.run_dir, rps=15, users=4, seed=5, user_ids=[1, 2],
                    traffic=spec, mix={"personalised": 1.0}):  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = [r for r in ctx.timeline() if r["requests"] > 0]
            if len(rows) >= 3:
                break
            time.sleep(0.3)
    stats = summarize(rows[:3])
    assert stats["availability"] == 1.0 and set(stats["status"]) == {"200"}
    assert set(stats["tiers"]) <= {"none", "cached_features", "popular_in_category",
                                   "global_popular", "cold_start"}  # fmt: skip
    assert sum(r["requests"] for r in rows[:3]) >= 20  # ~15/s: the generator kept its schedule
