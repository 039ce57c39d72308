"""Breaker, feature client (budget, hedge, cache) and tiers with fakes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from serving.breaker import CircuitBreaker
from serving.core import InferenceCore, RecRequest
from serving.errors import BadRequest, FeatureStoreError
from serving.features import FeatureClient, LastKnownCache
from serving.metrics import ServerMetrics
from serving.settings import SERVER_MECHANISMS, ServerSettings, Switches
from tests.unit.serving.fakes import FakeModel, FakeSource, decode, key


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=3, reset_s=2.0, clock=clock)
    for _ in range(3):
        assert b.allow()
        b.failure()
    assert b.state == "open" and not b.allow()
    clock.t = 2.5
    assert b.state == "half_open"
    assert b.allow() and not b.allow()  # one probe at a time
    b.failure()
    assert b.state == "open"
    clock.t = 5.0
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow()


def _client(source: FakeSource, switches: Switches, budget: float = 0.05) -> FeatureClient:
    return FeatureClient(
        source,
        key=key,
        decode=decode,
        switches=switches,
        budget_s=budget,
        breaker=CircuitBreaker(3, 60.0),
        cache=LastKnownCache(10),
        metrics=ServerMetrics(),
    )


def test_fresh_then_cached_when_store_fails() -> None:
    src = FakeSource()
    src.put(7, [1, 2, 3])
    fc = _client(src, Switches(SERVER_MECHANISMS))

    async def go() -> tuple[str, str, list[int] | None]:
        first = await fc.lookup(7)
        src.fail = True
        second = await fc.lookup(7)
        return first.source, second.source, second.features and second.features.history

    assert asyncio.run(go()) == ("fresh", "cached", [1, 2, 3])


def test_cache_off_means_failed_not_cached() -> None:
    src = FakeSource()
    src.put(7, [1, 2, 3])
    fc = _client(src, Switches(SERVER_MECHANISMS, ["cache"]))

    async def go() -> str:
        await fc.lookup(7)
        src.fail = True
        return (await fc.lookup(7)).source

    assert asyncio.run(go()) == "failed"


def test_budget_bounds_a_slow_store_and_hedges_once() -> None:
    src = FakeSource()
    src.put(7, [1])
    src.delay = 1.0
    fc = _client(src, Switches(SERVER_MECHANISMS), budget=0.05)

    async def go() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        res = await fc.lookup(7)
        return res.source, loop.time() - t0

    source, took = asyncio.run(go())
    assert source == "failed"
    assert took < 0.5  # bounded by the 50 ms budget, not the 1 s stall
    assert src.calls == 2  # the call and exactly one hedge


def test_timeouts_off_waits_for_the_store() -> None:
    src = FakeSource()
    src.put(7, [1])
    src.delay = 0.2
    fc = _client(src, Switches(SERVER_MECHANISMS, ["timeouts"]), budget=0.02)
    res = asyncio.run(fc.lookup(7))
    assert res.source == "fresh"
    assert src.timeouts_seen[0] is None


def test_breaker_stops_calling_a_failing_store() -> None:
    src = FakeSource()
    src.fail = True
    fc = _client(src, Switches(SERVER_MECHANISMS))

    async def go() -> None:
        for _ in range(10):
            await fc.lookup(7)

    asyncio.run(go())
    assert fc.breaker.state == "open"
    assert src.calls <= 6  # 3 failed lookups (each call + hedge), then no more calls


def test_breaker_off_keeps_calling() -> None:
    src = FakeSource()
    src.fail = True
    fc = _client(src, Switches(SERVER_MECHANISMS, ["breaker"]))

    async def go() -> None:
        for _ in range(10):
            await fc.lookup(7)

    asyncio.run(go())
    assert src.calls == 20


def test_breaker_switched_off_exports_closed_not_a_stale_open() -> None:
    src = FakeSource()
    src.fail = True
    switches = Switches(SERVER_MECHANISMS)
    fc = _client(src, switches)

    async def go(n: int) -> None:
        for _ in range(n):
            await fc.lookup(7)

    asyncio.run(go(5))
    assert fc.metrics is not None and fc.metrics.breaker_state._value.get() == 2  # open
    switches.update({"breaker": False})
    asyncio.run(go(1))
    assert fc.metrics.breaker_state._value.get() == 0  # nothing short-circuits: closed


def _core(src: FakeSource, disabled: tuple[str, ...] = ()) -> tuple[InferenceCore, FakeModel]:
    settings = ServerSettings(
        bundle=Path("/nonexistent"),
        http_port=1,
        grpc_port=2,
        redis_url="redis://x",
        max_queue_delay_ms=5,
    )
    switches = Switches(SERVER_MECHANISMS, disabled)
    metrics = ServerMetrics()
    core = InferenceCore(settings, switches, _client(src, switches), metrics)
    model = FakeModel()
    core.set_model(model)
    return core, model


def _run(core: InferenceCore, reqs: list[RecRequest]) -> list[tuple[str, list[int]]]:
    async def go() -> list[tuple[str, list[int]]]:
        core.batcher.start()
        try:
            loop = asyncio.get_running_loop()
            res = await core.recommend_many(reqs, loop.time() + 2.0)
            return [(r.tier, r.item_ids) for r in res]
        finally:
            await core.batcher.stop()

    return asyncio.run(go())


def test_tiers_down_to_global_popular() -> None:
    src = FakeSource()
    src.put(1, [5, 6])
    src.put(2, [], category=3)
    core, model = _core(src)
    tiers = _run(core, [RecRequest(1, 4), RecRequest(2, 4), RecRequest(3, 4)])
    assert [t for t, _ in tiers] == ["none", "popular_in_category", "cold_start"]
    assert tiers[1][1] == [int(model.item_ids[i]) for i in model.popular_by_category[3][:4]]
    src.fail = True
    tiers = _run(core, [RecRequest(1, 4), RecRequest(9, 4), RecRequest(9, 4, "some HORROR film")])
    assert [t for t, _ in tiers] == ["cached_features", "global_popular", "popular_in_category"]
    assert tiers[1][1] == [int(model.item_ids[i]) for i in model.popular[:4]]


def test_fallback_off_turns_a_store_failure_into_an_error() -> None:
    src = FakeSource()
    src.fail = True
    core, _ = _core(src, ("fallback",))
    with pytest.raises(FeatureStoreError):
        _run(core, [RecRequest(9, 4)])


def test_concurrent_requests_share_one_forward_pass() -> None:
    src = FakeSource()
    for u in range(8):
        src.put(u, [u + 1])
    core, model = _core(src)
    out = _run(core, [RecRequest(u, 3) for u in range(8)])
    assert all(t == "none" for t, _ in out)
    assert model.batches == [8]


def test_bad_k_and_user_are_bad_requests() -> None:
    core, _ = _core(FakeSource())
    with pytest.raises(BadRequest, match="k=0"):
        _run(core, [RecRequest(1, 0)])
    with pytest.raises(BadRequest, match="unknown user_id"):
        _run(core, [RecRequest(-4, 3)])


def test_switches_update_is_all_or_nothing() -> None:
    s = Switches(SERVER_MECHANISMS)
    with pytest.raises(BadRequest, match="unknown mechanism"):
        s.update({"cache": False, "nope": False})
    assert s["cache"] is True
    assert s.update({"cache": False})["cache"] is False
