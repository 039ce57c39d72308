"""Gateway admission control: in-flight bound, event-loop lag, the `shedding` switch."""

from __future__ import annotations

import asyncio
import time

from serving.gateway.admission import LAG_MIN_INFLIGHT, Admission
from serving.metrics import GatewayMetrics
from serving.settings import GATEWAY_MECHANISMS, Switches


def _admission(disabled: tuple[str, ...] = (), max_inflight: int = 2) -> Admission:
    return Admission(max_inflight, 30.0, Switches(GATEWAY_MECHANISMS, disabled), GatewayMetrics())


def _busy(max_inflight: int = 64) -> Admission:
    adm = _admission(max_inflight=max_inflight)
    for _ in range(LAG_MIN_INFLIGHT):
        adm.enter()
    return adm


def test_requests_beyond_max_inflight_are_shed_until_one_leaves() -> None:
    adm = _admission()
    assert adm.reason_to_shed() is None
    adm.enter()
    adm.enter()
    reason = adm.reason_to_shed()
    assert reason is not None and "2 requests in progress" in reason
    adm.leave()
    assert adm.reason_to_shed() is None


def test_loop_lag_over_the_limit_sheds_and_recovers_as_it_decays() -> None:
    adm = _busy()
    for _ in range(10):
        adm.observe_lag(0.080)
    reason = adm.reason_to_shed()
    assert reason is not None and "event-loop lag" in reason and "> 30 ms" in reason
    for _ in range(20):
        adm.observe_lag(0.0)
    assert adm.reason_to_shed() is None


def test_a_laggy_loop_with_little_in_progress_is_a_neighbour_not_overload() -> None:
    adm = _admission(max_inflight=64)
    for _ in range(LAG_MIN_INFLIGHT - 1):
        adm.enter()
    for _ in range(10):
        adm.observe_lag(0.200)
    assert adm.reason_to_shed() is None
    adm.enter()
    assert adm.reason_to_shed() is not None


def test_a_single_slow_tick_does_not_shed() -> None:
    adm = _busy()
    adm.observe_lag(0.060)  # one 60 ms hiccup (a GC pass): smoothed to 18 ms
    assert adm.reason_to_shed() is None


def test_shedding_off_admits_everything() -> None:
    adm = _admission(disabled=("shedding",))
    for _ in range(5):
        adm.enter()
        adm.observe_lag(0.5)
    assert adm.reason_to_shed() is None


def test_the_sampler_sees_a_blocked_loop() -> None:
    adm = _busy()

    async def go() -> float:
        adm.start()
        await asyncio.sleep(0.05)
        for _ in range(5):
            time.sleep(0.1)  # the loop is blocked: the lag timer fires ~100 ms late
            await asyncio.sleep(0.015)
        lag = adm.loop_lag_s
        await adm.stop()
        return lag

    assert asyncio.run(go()) > 0.030
    assert adm.reason_to_shed() is not None
