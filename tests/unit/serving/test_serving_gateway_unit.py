"""Gateway router and pool with fake replica stubs: retry, hedging, deadline, ejection."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
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
    from oip_proto import grpc_predict_v2_pb2 as pb
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
    stubs: list[FakeStub],
    disabled: tuple[str, ...] = (),
    hedge_ms: float = 20,
    routing: str = "round-robin",  # a known order for the retry/hedge tests
) -> tuple[Router, ReplicaPool]:
    settings = GatewaySettings(
        port=1,
        replicas={s.name: "x" for s in stubs},
        hedge_after_ms=hedge_ms,
        disabled=disabled,
        routing=routing,
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
    assert parse_recommend({"user_id": 3, "query": "café"}, 100) == (3, 10, "café")
    with pytest.raises(BadRequest, match="not valid Unicode"):  # found by fuzzing: was a 500
        parse_recommend({"user_id": 3, "query": "x\ud800"}, 100)


# ---- affinity routing (rendezvous hashing with bounded loads) ----------------------------


def _pool(names: str, **kw: Any) -> ReplicaPool:
    _, pool = _router([FakeStub(n) for n in names], routing="affinity", **kw)
    return pool


def _home(pool: ReplicaPool, user: int) -> str:
    return pool.candidates(user)[0].name


def test_affinity_keeps_a_user_on_one_replica_and_spreads_users() -> None:
    pool = _pool("abc")
    assert {_home(pool, 42) for _ in range(20)} == {_home(pool, 42)}  # no round-robin drift
    homes = Counter(_home(pool, u) for u in range(3000))
    assert set(homes) == {"a", "b", "c"}
    assert all(850 <= n <= 1150 for n in homes.values()), homes  # ~1000 each
    assert Counter(_home(pool, -u) for u in range(1, 301)).keys() == {"a", "b", "c"}


def test_affinity_moves_only_the_users_of_an_ejected_replica_to_their_second_choice() -> None:
    pool = _pool("abc")
    before = {u: [r.name for r in pool.candidates(u)] for u in range(600)}
    pool.replicas[1].ejected = True  # "b"
    for u, order in before.items():
        after = [r.name for r in pool.candidates(u)]
        assert after == [n for n in order if n != "b"]  # the rest keep their order
    pool.replicas[1].ejected = False
    assert {u: [r.name for r in pool.candidates(u)] for u in range(600)} == before


def test_affinity_passes_over_a_replica_with_too_many_calls_in_flight() -> None:
    pool = _pool("ab")
    user = 7
    home, second = [r for r in pool.candidates(user)]
    home.inflight, second.inflight = 2, 1  # cap = ceil(1.25 * 4 / 2) = 3: home still takes it
    assert _home(pool, user) == home.name
    home.inflight = 3  # cap = ceil(1.25 * 5 / 2) = 4: still under
    assert _home(pool, user) == home.name
    home.inflight, second.inflight = 4, 0  # cap = ceil(1.25 * 5 / 2) = 4: home is full
    assert [r.name for r in pool.candidates(user)] == [second.name, home.name]
    assert pool.metrics.spills._value.get() == 1
    pool.settings = dataclasses.replace(pool.settings, routing="round-robin")
    assert {_home(pool, user) for _ in range(4)} == {"a", "b"}  # the old policy on request


def test_router_counts_calls_in_flight_and_sends_a_user_home() -> None:
    a, b = FakeStub("a", delay=0.05), FakeStub("b", delay=0.05)
    router, pool = _router([a, b], routing="affinity", hedge_ms=500)
    user = next(u for u in range(100) if _home(pool, u) == "b")

    async def go() -> list[int]:
        seen: list[int] = []
        task = asyncio.create_task(router.recommend(user, 2, None, 1.0))
        await asyncio.sleep(0.01)
        seen.append(pool.replicas[1].inflight)
        await task
        seen.append(pool.replicas[1].inflight)
        return seen

    assert asyncio.run(go()) == [1, 0]
    assert (a.calls, b.calls) == (0, 1)
    assert asyncio.run(router.recommend(user, 2, None, 1.0)).replica == "b"


def test_router_releases_calls_in_flight_on_failure_and_on_a_cancelled_hedge() -> None:
    a, b = FakeStub("a", delay=5.0), FakeStub("b", code=grpc.StatusCode.UNAVAILABLE)
    router, pool = _router([a, b], hedge_ms=20)  # round-robin: a (slow), hedge to b (fails)
    with pytest.raises(DeadlineExceeded):
        asyncio.run(router.recommend(1, 2, None, 0.2))
    assert [r.inflight for r in pool.replicas] == [0, 0]
    c, d = FakeStub("c", delay=5.0), FakeStub("d")
    router, pool = _router([c, d], hedge_ms=20)  # c is hedged to d; c's call is cancelled
    assert asyncio.run(router.recommend(1, 2, None, 2.0)).replica == "d"
    assert [r.inflight for r in pool.replicas] == [0, 0]


def test_gateway_routing_options_are_validated() -> None:
    s = GatewaySettings.from_argv(["--port", "1", "--replicas", "a=h:1"])
    assert (s.routing, s.balance_factor) == ("affinity", 1.25)
    s = GatewaySettings.from_argv(
        ["--port", "1", "--replicas", "a=h:1", "--routing", "round-robin", "--balance-factor", "2"]
    )
    assert (s.routing, s.balance_factor) == ("round-robin", 2.0)
    for bad in (["--routing", "random"], ["--balance-factor", "0.5"]):
        with pytest.raises(SystemExit) as info:
            GatewaySettings.from_argv(["--port", "1", "--replicas", "a=h:1", *bad])
        assert info.value.code == 2
