"""Fuzzing a real replica and gateway: schemathesis from their /openapi.json, hostile JSON
bodies and gRPC ModelInfer requests from hypothesis, and regressions for the hostile requests
that were mishandled (a 500, or accepted when they must be refused)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from aiohttp import web

from oip_proto import grpc_predict_v2_pb2 as pb
from oip_proto import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.integration.test_serving_helpers import (
    Proc,
    infer_json,
    outputs,
    start_gateway,
    start_replica,
)
from tests.support import fuzz, fuzz_grpc
from tests.support.procs import free_port, redis_server

pytestmark = pytest.mark.integration

# bounded for CI (benchmarks/fuzz_serving.py runs longer); fixed seeds: the same cases each run
OPENAPI_EXAMPLES = 12  # per operation and generation mode (positive, negative)
GRPC_EXAMPLES = 150
BODY_EXAMPLES = 60  # hostile JSON bodies per route
# fuzzing is about input handling, not overload: budgets that a busy CI machine never misses
SERVER_ARGS = ["--request-timeout-ms", "20000", "--feature-timeout-ms", "1000"]
GATEWAY_ARGS = ["--deadline-ms", "20000", "--max-loop-lag-ms", "5000"]
AUTH = {"Authorization": "Bearer tok"}  # the admin token start_replica/start_gateway give


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, Proc]]:
    """One replica on a real Redis and a gateway in front of it."""
    tmp = tmp_path_factory.mktemp("fuzz")
    with redis_server() as url:
        rep = start_replica(tmp, url, extra=SERVER_ARGS)
        try:
            gw = start_gateway(tmp, {"replica-0": rep.grpc}, extra=GATEWAY_ARGS)
            try:
                yield rep, gw
            finally:
                gw.stop()
        finally:
            rep.stop()


def _alive(p: Proc) -> bool:
    return p.proc.poll() is None


def _assert_clean(tally: fuzz.Tally) -> None:
    print(tally.as_dict())  # the figures, for -s / a failure report
    assert tally.findings == [], "\n".join(tally.findings)
    assert (tally.server_errors, tally.check_failures, tally.crashes) == (0, 0, 0)


def test_schemathesis_model_server(stack: tuple[Proc, Proc]) -> None:
    rep, _ = stack
    tally = fuzz.fuzz_openapi(
        "model-server", rep.http, token="tok", examples=OPENAPI_EXAMPLES, alive=lambda: _alive(rep)
    )
    _assert_clean(tally)
    assert tally.cases >= 120
    assert {"200", "400", "401", "404"} <= set(tally.answers)  # accepted, refused, auth, model
    switches = httpx.get(f"{rep.http}/admin/resilience", headers=AUTH, timeout=30).json()
    assert all(switches.values()), switches  # the fuzzer flipped them; it turns them back on
    assert len(outputs(infer_json(rep.http, [1], k=4))["item_ids"][0]) == 4  # still serving


def test_schemathesis_gateway(stack: tuple[Proc, Proc]) -> None:
    _, gw = stack
    tally = fuzz.fuzz_openapi(
        "gateway", gw.http, token="tok", examples=OPENAPI_EXAMPLES, alive=lambda: _alive(gw)
    )
    _assert_clean(tally)
    assert tally.cases >= 50
    assert {"200", "400", "401"} <= set(tally.answers)
    resp = httpx.post(f"{gw.http}/v1/recommend", json={"user_id": 1, "k": 3}, timeout=30)
    assert resp.status_code == 200 and len(resp.json()["items"]) == 3


def test_hypothesis_model_infer_over_grpc(stack: tuple[Proc, Proc]) -> None:
    rep, _ = stack
    tally = fuzz_grpc.fuzz_grpc("grpc", rep.grpc, examples=GRPC_EXAMPLES, alive=lambda: _alive(rep))
    _assert_clean(tally)
    assert tally.cases == GRPC_EXAMPLES
    # the strategy reaches valid requests and every kind of refusal
    assert {"OK", "INVALID_ARGUMENT", "NOT_FOUND"} <= set(tally.answers)


BODY_TARGETS = [
    pytest.param(0, "/v2/models/recommender/infer", fuzz.infer_bodies(), None, id="infer"),
    pytest.param(0, "/admin/reload", fuzz.json_bodies(), "tok", id="reload"),
    pytest.param(1, "/v1/recommend", fuzz.recommend_bodies(), None, id="recommend"),
]


@pytest.mark.parametrize(("which", "path", "bodies", "token"), BODY_TARGETS)
def test_hostile_json_bodies(
    stack: tuple[Proc, Proc], which: int, path: str, bodies: Any, token: str | None
) -> None:
    server = stack[which]
    tally = fuzz.fuzz_bodies(
        server.name, server.http + path, bodies, examples=BODY_EXAMPLES, token=token,
        alive=lambda: _alive(server),
    )  # fmt: skip
    _assert_clean(tally)
    assert tally.cases == BODY_EXAMPLES and "400" in tally.answers


def test_the_drivers_count_what_a_broken_server_does() -> None:
    """The fuzz drivers are the test: against a server that 500s and breaks its own document,
    they must say so (else a clean tally above would prove nothing)."""
    doc = {
        "openapi": "3.0.3",
        "info": {"title": "broken", "version": "1"},
        "paths": {
            "/echo": {
                "post": {
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "required": ["n"],
                                   "properties": {"n": {"type": "integer"}}}}}},
                    "responses": {"200": {"description": "ok", "content": {"application/json": {
                        "schema": {"type": "object", "required": ["n"]}}}}},
                }
            }
        },
    }  # fmt: skip

    async def spec(request: web.Request) -> web.Response:
        return web.json_response(doc)

    async def echo(request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("n"), int):
            return web.json_response({"oops": True})  # 200 for bad input, without `n`
        return web.json_response({"n": body["n"]}, status=500 if body["n"] % 2 else 200)

    port = free_port()
    ready = threading.Event()
    stop: list[object] = []

    def serve() -> None:
        import asyncio

        async def main() -> None:
            app = web.Application()
            app.add_routes([web.get("/openapi.json", spec), web.post("/echo", echo)])
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            done = asyncio.Event()
            stop.append((asyncio.get_running_loop(), done))
            ready.set()
            await done.wait()
            await runner.cleanup()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        tally = fuzz.fuzz_openapi(
            "broken", f"http://127.0.0.1:{port}", token="t", examples=30, alive=lambda: True
        )
    finally:
        loop, done = stop[0]  # type: ignore[misc]
        loop.call_soon_threadsafe(done.set)
        thread.join(10)
    assert tally.server_errors > 0 and tally.check_failures >= tally.server_errors
    assert any("ST101 Server error" in f for f in tally.findings), tally.findings
    assert any("ST201 Schema-violating request accepted" in f for f in tally.findings), (
        tally.findings
    )


# ---- regressions: each of these was a 500, or accepted, before its fix ---------------------


def _infer_body(inputs: list[dict[str, object]]) -> bytes:
    return json.dumps({"inputs": inputs}).encode()


USER = {"name": "user_id", "datatype": "INT64", "shape": [1], "data": [1]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            _infer_body([USER, {"name": "query", "datatype": "BYTES", "shape": [1], "data": ["\ud800"]}]),
            "not valid Unicode",
            id="lone-surrogate-query",
        ),
        pytest.param(
            _infer_body([{**USER, "data": [2**64]}]), "does not fit INT64", id="user-id-past-int64"
        ),
    ],
)  # fmt: skip
def test_model_server_refuses_what_fuzzing_found(
    stack: tuple[Proc, Proc], body: bytes, message: str
) -> None:
    rep, _ = stack
    resp = httpx.post(f"{rep.http}/v2/models/recommender/infer", content=body, timeout=30)
    assert resp.status_code == 400 and message in resp.json()["error"], resp.text


def test_gateway_refuses_a_lone_surrogate_query(stack: tuple[Proc, Proc]) -> None:
    _, gw = stack
    body = b'{"user_id": 1, "query": "\\ud800"}'
    resp = httpx.post(f"{gw.http}/v1/recommend", content=body, timeout=30)
    assert resp.status_code == 400 and "not valid Unicode" in resp.json()["error"], resp.text


DEEP = b"[" * 3000 + b"]" * 3000  # past json.loads' nesting limit: was a RecursionError, a 500


@pytest.mark.parametrize(
    ("which", "path"),
    [(0, "/v2/models/recommender/infer"), (0, "/admin/reload"), (0, "/admin/resilience"),
     (1, "/v1/recommend"), (1, "/admin/resilience")],
)  # fmt: skip
def test_json_nested_too_deeply_is_a_bad_request(
    stack: tuple[Proc, Proc], which: int, path: str
) -> None:
    server = stack[which]
    resp = httpx.post(server.http + path, content=DEEP, headers=AUTH, timeout=30)
    assert resp.status_code == 400 and "nested too deeply" in resp.json()["error"], resp.text


def test_tensor_data_nested_as_deep_as_json_allows_is_read(stack: tuple[Proc, Proc]) -> None:
    rep, _ = stack
    data = "[" * 900 + "7" + "]" * 900
    body = '{"inputs": [{"name": "user_id", "datatype": "INT64", "shape": [1], "data": %s}]}'
    resp = httpx.post(f"{rep.http}/v2/models/recommender/infer", content=body % data, timeout=30)
    assert resp.status_code == 200, resp.text


def test_more_rows_than_the_queue_holds_is_a_bad_request(stack: tuple[Proc, Proc]) -> None:
    rep, _ = stack  # 257 rows can never be admitted at once: was a 503 "server full" each time
    resp = infer_json(rep.http, list(range(257)), k=1, timeout=30)
    assert resp.status_code == 400 and "at most 256" in resp.json()["error"], resp.text
    assert infer_json(rep.http, list(range(256)), k=1, timeout=60).status_code == 200


def test_reload_of_a_path_too_long_for_the_os_is_refused(stack: tuple[Proc, Proc]) -> None:
    rep, _ = stack
    resp = httpx.post(
        f"{rep.http}/admin/reload",
        json={"bundle": "b" * 5000},
        headers=AUTH,
        timeout=30,
    )
    assert resp.status_code == 409 and "File name too long" in resp.json()["error"], resp.text
    assert len(outputs(infer_json(rep.http, [1], k=2))["item_ids"][0]) == 2  # old model serves


def test_grpc_typed_bytes_with_a_negative_shape_is_refused(stack: tuple[Proc, Proc]) -> None:
    rep, _ = stack
    T = pb.ModelInferRequest.InferInputTensor
    query = T(name="query", datatype="BYTES", shape=[-1, -1])
    query.contents.bytes_contents.append(b"x")
    user = T(name="user_id", datatype="INT64", shape=[1])
    user.contents.int64_contents.append(1)
    request = pb.ModelInferRequest(model_name="recommender", inputs=[user, query])
    with grpc.insecure_channel(rep.grpc) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as err:
            stub.ModelInfer(request, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "non-negative" in (err.value.details() or "")
        with pytest.raises(grpc.RpcError) as err:
            stub.ModelInfer(pb.ModelInferRequest(model_name="nope"), timeout=30)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert fuzz_grpc.answers_k_items(stub)
