"""OIP v2 over REST and gRPC against a real replica: tritonclient, metadata, bad requests."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_serving_helpers import (
    Proc,
    assert_same_answers,
    infer_json,
    metric,
    outputs,
    put_user,
    start_replica,
)
from tests.support.procs import redis_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, str, list[int]]]:
    """One replica on a real Redis, with user 1 (history) and user 2 (no history) stored."""
    tmp = tmp_path_factory.mktemp("oip")
    with redis_server() as url:
        rep = start_replica(tmp, url)
        try:
            popular = [
                int(i) for i in outputs(infer_json(rep.http, [999_999], k=10))["item_ids"][0]
            ]
            put_user(url, 1, popular[3:8], category=0)
            put_user(url, 2, [], category=1)
            yield rep, url, popular
        finally:
            rep.stop()


TRITON = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tritonclient.grpc as tg
    import tritonclient.http as th

    http, grpc_addr = sys.argv[1], sys.argv[2]
    out = {}
    c = th.InferenceServerClient(http)
    out["http_ready"] = [c.is_server_live(), c.is_server_ready(), c.is_model_ready("recommender")]
    out["http_inputs"] = [i["name"] for i in c.get_model_metadata("recommender")["inputs"]]
    for binary in (True, False):
        u = th.InferInput("user_id", [2], "INT64")
        u.set_data_from_numpy(np.array([1, 2], dtype=np.int64), binary_data=binary)
        k = th.InferInput("k", [1], "INT64")
        k.set_data_from_numpy(np.array([4], dtype=np.int64), binary_data=binary)
        q = th.InferInput("query", [2], "BYTES")
        q.set_data_from_numpy(np.array([b"", "caf\\u00e9".encode()], dtype=object), binary_data=binary)
        r = c.infer("recommender", [u, k, q])
        out[f"http_{binary}"] = {
            "ids": r.as_numpy("item_ids").tolist(),
            "scores_shape": list(r.as_numpy("scores").shape),
            "tiers": [t.decode() if isinstance(t, bytes) else t for t in r.as_numpy("fallback").tolist()],
        }
    g = tg.InferenceServerClient(grpc_addr)
    out["grpc_ready"] = [g.is_server_live(), g.is_server_ready(), g.is_model_ready("recommender")]
    out["grpc_outputs"] = [o["name"] for o in g.get_model_metadata("recommender", as_json=True)["outputs"]]
    u = tg.InferInput("user_id", [2, 1], "INT64")
    u.set_data_from_numpy(np.array([[1], [2]], dtype=np.int64))
    k = tg.InferInput("k", [1], "INT64")
    k.set_data_from_numpy(np.array([4], dtype=np.int64))
    r = g.infer("recommender", [u, k], client_timeout=10.0)
    out["grpc"] = {
        "ids": r.as_numpy("item_ids").tolist(),
        "tiers": [t.decode() for t in r.as_numpy("fallback").tolist()],
        "replica": r.get_response().parameters["replica"].string_param,
    }
    bad = []
    for dtype, arr in (("INT32", np.array([1], dtype=np.int32)), ("INT64", np.array([-5], dtype=np.int64))):
        u = tg.InferInput("user_id", [1], dtype)
        u.set_data_from_numpy(arr)
        try:
            g.infer("recommender", [u], client_timeout=10.0)
            bad.append("ok")
        except Exception as exc:
            bad.append(str(exc.status()))
    out["grpc_bad"] = bad
    print(json.dumps(out))
    """
)


def test_tritonclient_http_binary_json_and_grpc(stack: tuple[Proc, str, list[int]]) -> None:
    rep, _, popular = stack
    http = rep.http.removeprefix("http://")
    # tritonclient's generated protos clash with ours in one process: run it in its own.
    done = subprocess.run(
        [sys.executable, "-c", TRITON, http, rep.grpc], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["http_ready"] == [True, True, True] and out["grpc_ready"] == [True, True, True]
    assert out["http_inputs"] == ["user_id", "k", "query"]
    assert out["grpc_outputs"] == ["item_ids", "scores", "fallback"]
    for binary in ("True", "False"):
        res = out[f"http_{binary}"]
        assert res["scores_shape"] == [2, 4]
        assert res["tiers"] == ["none", "popular_in_category"]
        assert res["ids"][1] != res["ids"][0]
    assert out["grpc"]["tiers"] == ["none", "popular_in_category"]
    assert out["grpc"]["replica"] == "replica-0"
    assert out["http_True"]["ids"] == out["http_False"]["ids"] == out["grpc"]["ids"]
    assert out["grpc_bad"] == ["StatusCode.INVALID_ARGUMENT"] * 2
    assert not set(out["grpc"]["ids"][0]) & set(popular[3:8])  # seen items excluded


def _infer(http: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{http}/v2/models/recommender/infer", content=body, headers=headers, timeout=10
    )


def _req(inputs: list[dict[str, object]]) -> bytes:
    return json.dumps({"inputs": inputs}).encode()


U = {"name": "user_id", "datatype": "INT64", "shape": [1], "data": [1]}

BAD = [
    ("unknown user", _req([{**U, "data": [-3]}]), "unknown user_id"),
    (
        "k too large",
        _req([U, {"name": "k", "datatype": "INT64", "shape": [1], "data": [100000]}]),
        "out of range",
    ),
    (
        "k zero",
        _req([U, {"name": "k", "datatype": "INT64", "shape": [1], "data": [0]}]),
        "out of range",
    ),
    ("wrong dtype", _req([{**U, "datatype": "FP32", "data": [1.0]}]), "must be INT64"),
    ("wrong shape", _req([{**U, "shape": [2]}]), "1 values for shape [2]"),
    ("2-d shape", _req([{**U, "shape": [1, 2], "data": [1, 2]}]), "shape [B] or [B,1]"),
    (
        "missing user",
        _req([{"name": "k", "datatype": "INT64", "shape": [1], "data": [3]}]),
        "missing input",
    ),
    (
        "unknown input",
        _req([U, {"name": "x", "datatype": "INT64", "shape": [1], "data": [3]}]),
        "unknown input",
    ),
    ("not json", b"{nope", "not valid JSON"),
    ("bad utf-8 body", b'{"inputs": "\xff\xfe"}', "UTF-8"),
    ("huge body", b'{"inputs": [' + b" " * (2 << 20) + b"]}", "too large"),
]


@pytest.mark.parametrize(("case", "body", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_requests_are_400_with_a_clear_message(
    stack: tuple[Proc, str, list[int]], case: str, body: bytes, message: str
) -> None:
    rep, _, _ = stack
    resp = _infer(rep.http, body)
    assert resp.status_code == 400, (case, resp.status_code, resp.text)
    assert message in resp.json()["error"]
    assert rep.proc.poll() is None


def test_bad_utf8_query_in_binary_data_is_400(stack: tuple[Proc, str, list[int]]) -> None:
    rep, _, _ = stack
    raw_u = (1).to_bytes(8, "little")
    raw_q = (2).to_bytes(4, "little") + b"\xff\xfe"
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "user_id",
                    "datatype": "INT64",
                    "shape": [1],
                    "parameters": {"binary_data_size": 8},
                },
                {
                    "name": "query",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": 6},
                },
            ]
        }
    ).encode()
    resp = _infer(
        rep.http, header + raw_u + raw_q, {"Inference-Header-Content-Length": str(len(header))}
    )
    assert resp.status_code == 400
    assert "not valid UTF-8" in resp.json()["error"]


def test_metadata_readiness_and_metrics(stack: tuple[Proc, str, list[int]]) -> None:
    rep, _, _ = stack
    meta = httpx.get(f"{rep.http}/v2/models/recommender", timeout=5).json()
    assert [i["name"] for i in meta["inputs"]] == ["user_id", "k", "query"]
    assert {o["name"]: o["datatype"] for o in meta["outputs"]} == {
        "item_ids": "INT64",
        "scores": "FP32",
        "fallback": "BYTES",
    }
    assert httpx.get(f"{rep.http}/v2/models/nope", timeout=5).status_code == 404
    assert httpx.get(f"{rep.http}/v2/health/live", timeout=5).status_code == 200
    infer_json(rep.http, [1, 2, 3])
    text = httpx.get(f"{rep.http}/metrics", timeout=5).text
    for name in (
        "cr_request_latency_seconds_bucket",
        "cr_batch_size_bucket",
        "cr_queue_depth",
        "cr_fallback_total",
        "cr_breaker_state",
        "cr_feature_latency_seconds_bucket",
        "cr_model_info",
    ):
        assert name in text, name
    assert metric(rep.http, "cr_model_info", f'model_version="{meta["versions"][0]}"') == 1.0


def test_admin_needs_the_token(stack: tuple[Proc, str, list[int]]) -> None:
    rep, _, _ = stack
    assert httpx.get(f"{rep.http}/admin/resilience", timeout=5).status_code == 401
    bad = httpx.post(
        f"{rep.http}/admin/resilience",
        json={"cache": "no"},
        headers={"Authorization": "Bearer tok"},
        timeout=5,
    )
    assert bad.status_code == 400 and "true or false" in bad.json()["error"]
    cur = httpx.get(
        f"{rep.http}/admin/resilience", headers={"Authorization": "Bearer tok"}, timeout=5
    )
    assert cur.json() == dict.fromkeys(
        ("timeouts", "breaker", "cache", "fallback", "shedding", "checksum"), True
    )


def test_refused_bad_bundle_keeps_the_old_model(
    stack: tuple[Proc, str, list[int]], tmp_path: Path
) -> None:
    from tests.integration.test_serving_helpers import copy_bundle

    rep, _, _ = stack
    before = outputs(infer_json(rep.http, [1]))
    version = httpx.get(f"{rep.http}/v2/models/recommender", timeout=5).json()["versions"][0]
    bad = copy_bundle(tmp_path)
    (bad / "model_card.md").write_text("tampered\n")
    auth = {"Authorization": "Bearer tok"}
    resp = httpx.post(
        f"{rep.http}/admin/reload", json={"bundle": str(bad)}, headers=auth, timeout=120
    )
    assert resp.status_code == 409
    assert "checksum mismatch" in resp.json()["error"]
    assert httpx.get(f"{rep.http}/v2/models/recommender", timeout=5).json()["versions"] == [version]
    assert_same_answers(outputs(infer_json(rep.http, [1])), before)
    assert metric(rep.http, "cr_reloads_total", 'result="refused"') == 1.0


def test_reload_loads_a_good_bundle_and_checksum_off_loads_a_tampered_one(
    stack: tuple[Proc, str, list[int]], tmp_path: Path
) -> None:
    from tests.integration.test_serving_helpers import copy_bundle

    rep, _, _ = stack
    auth = {"Authorization": "Bearer tok"}
    good = copy_bundle(tmp_path)
    want = json.loads((good / "metadata.json").read_text())["model_version"]
    resp = httpx.post(
        f"{rep.http}/admin/reload", json={"bundle": str(good)}, headers=auth, timeout=120
    )
    assert resp.status_code == 200 and resp.json()["model_version"] == want
    (good / "model_card.md").write_text("tampered\n")
    off = httpx.post(
        f"{rep.http}/admin/resilience", json={"checksum": False}, headers=auth, timeout=5
    )
    assert off.json()["checksum"] is False
    try:
        resp = httpx.post(
            f"{rep.http}/admin/reload", json={"bundle": str(good)}, headers=auth, timeout=120
        )
        assert resp.status_code == 200  # the protection is really gone: an unverified bundle loads
    finally:
        httpx.post(f"{rep.http}/admin/resilience", json={"checksum": True}, headers=auth, timeout=5)
    assert outputs(infer_json(rep.http, [1]))["fallback"] == ["none"]
