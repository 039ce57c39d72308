"""Gateway router and pool with fake replica stubs: retry, hedging, deadline, ejection."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from serving.errors import BadRequest, DeadlineExceeded, NoReplicaAvailable
from serving.gateway.pool import Replica, ReplicaPool
from serving.gateway.router import Router, build_request, parse_response
from serving.gateway.server import parse_recommend
from serving.metrics import GatewayMetrics
from serving.settings import GATEWAY_MECHANISMS, GatewaySettings, Switches


def _ok_response(replica: str) -> Any:
    from serving._proto import grpc_predict_v2_pb2 as pb
    from serving.codec import OutTensor

    outs = [
        OutTensor("item_ids", "INT64", [1, 2], [7, 8]),
        OutTensor("scores", "FP32", [1, 2], [0.5, 0.25]),
        OutTensor("fallback", "BYTES", [1], ["none"]),
    ]
    return pb.ModelInferResponse(
        model_name="recommender",
        parameters={
            "model_version": pb.InferParameter(string_param="v1"),
            "replica": pb.InferParameter(string_param=replica),
        },
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(name=o.name, datatype=o.datatype, shape=o.shape)
            for o in outs
        ],
        raw_output_contents=[o.raw() for o in outs],
    )


class FakeStub:
    def __init__(
        self, name: str, *, delay: float = 0.0, code: grpc.StatusCode | None = None
    ) -> None:
        self.name = name
        self.delay = delay
        self.code = code
        self.calls = 0

    async def ModelInfer(self, req: Any, timeout: float) -> Any:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(min(self.delay, timeout))
            if self.delay >= timeout:
                raise grpc.aio.AioRpcError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.aio.Metadata(),
                    grpc.aio.Metadata(),
                    "deadline",
                )
        if self.code is not None:
            raise grpc.aio.AioRpcError(self.code, grpc.aio.Metadata(), grpc.aio.Metadata(), "boom")
        return _ok_response(self.name)


def _router(
    stubs: list[FakeStub], disabled: tuple[str, ...] = (), hedge_ms: float = 20
) -> tuple[Router, ReplicaPool]:
    settings = GatewaySettings(
        port=1, replicas={s.name: "x" for s in stubs}, hedge_after_ms=hedge_ms, disabled=disabled
    )
    switches = Switches(GATEWAY_MECHANISMS, disabled)
    metrics = GatewayMetrics()
    pool = ReplicaPool(settings, switches, metrics)
    pool.replicas = [Replica(s.name, "x", None, s, None) for s in stubs]  # type: ignore[arg-type]
    return Router(pool, switches, metrics), pool


def test_failure_is_retried_on_another_replica() -> None:
    a, b = FakeStub("a", code=grpc.StatusCode.UNAVAILABLE), FakeStub("b")
    router, _ = _router([a, b], hedge_ms=500)
    ans = asyncio.run(router.recommend(1, 2, None, 1.0))
    assert ans.replica == "b" and ans.item_ids == [7, 8] and ans.fallback == "none"
    assert a.calls >= 1 and b.calls == 1


def test_retries_off_fails_the_request() -> None:
    a, b = FakeStub("a", code=grpc.StatusCode.UNAVAILABLE), FakeStub("b")
    router, _ = _router([a, b], disabled=("retries", "hedging"))
    with pytest.raises(NoReplicaAvailable):
        asyncio.run(router.recommend(1, 2, None, 1.0))
    assert b.calls == 0


def test_slow_replica_is_hedged() -> None:
    a, b = FakeStub("a", delay=5.0), FakeStub("b")
    router, _ = _router([a, b], hedge_ms=20)

    async def go() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        ans = await router.recommend(1, 2, None, 2.0)
        return ans.replica, loop.time() - t0

    replica, took = asyncio.run(go())
    assert replica == "b" and took < 1.0


def test_all_slow_is_a_deadline_error_and_a_stall_ejects() -> None:
    a, b = FakeStub("a", delay=5.0), FakeStub("b", delay=5.0)
    router, pool = _router([a, b], disabled=("hedging",))
    with pytest.raises(DeadlineExceeded):
        asyncio.run(router.recommend(1, 2, None, 0.1))
    assert pool.replicas[0].ejected


def test_invalid_argument_is_not_retried() -> None:
    a, b = FakeStub("a", code=grpc.StatusCode.INVALID_ARGUMENT), FakeStub("b")
    router, _ = _router([a, b])
    with pytest.raises(BadRequest):
        asyncio.run(router.recommend(1, 2, None, 1.0))
    assert b.calls == 0


def test_ejection_after_failures_and_rotation() -> None:
    a, b = FakeStub("a", code=grpc.StatusCode.UNAVAILABLE), FakeStub("b")
    router, pool = _router([a, b], hedge_ms=500)
    for _ in range(6):  # round-robin: every other call starts on `a`
        assert asyncio.run(router.recommend(1, 2, None, 1.0)).replica == "b"
    assert pool.replicas[0].ejected
    assert [r.name for r in pool.candidates()] == ["b"]
    pool.switches.update({"ejection": False})
    assert {r.name for r in pool.candidates()} == {"a", "b"}


def test_request_round_trip_and_recommend_validation() -> None:
    req = build_request(5, 3, "café")
    assert [i.name for i in req.inputs] == ["user_id", "k", "query"]
    assert parse_response(_ok_response("r"), "r").scores == [0.5, 0.25]
    assert parse_recommend({"user_id": 3}, 100) == (3, 10, None)
    for bad in ({"user_id": True}, {"user_id": 1, "k": 101}, {"user_id": 1, "query": 3}):
        with pytest.raises(BadRequest):
            parse_recommend(bad, 100)
