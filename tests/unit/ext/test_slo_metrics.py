"""Load metrics: per-second rows, histogram percentiles merged over windows."""

from __future__ import annotations

import random

import pytest

from chaos_rec.slo.metrics import (
    SecondStats,
    availability,
    bucket_of,
    fallback_ratio,
    hist_percentile,
    latency_percentile,
    summarize,
)


def test_row_has_contract_fields_and_exact_per_second_percentiles() -> None:
    s = SecondStats(100)
    for ms in range(1, 101):
        s.add(float(ms), 200, "none", failed=False, known=True)
    s.add(5.0, 503, None, failed=True, known=True)
    s.add(7.0, 200, "cold_start", failed=False, known=False)
    row = s.row("fault")
    assert row["t"] == 100 and row["phase"] == "fault"
    assert row["requests"] == 102 and row["failures"] == 1
    assert row["status"] == {"200": 101, "503": 1}
    assert row["tiers"] == {"none": 100} and row["unknown_users"] == 1
    assert row["p50_ms"] == 49.0 and row["max_ms"] == 100.0  # nearest rank of 102 samples
    assert sum(row["lat_hist"].values()) == 102


def test_window_percentiles_from_merged_histograms_are_within_4_percent() -> None:
    rng = random.Random(1)
    rows = []
    every: list[float] = []
    for t in range(10):
        s = SecondStats(t)
        for _ in range(50):
            ms = rng.lognormvariate(3.5, 0.6)
            every.append(ms)
            s.add(ms, 200, "none", failed=False, known=True)
        rows.append(s.row("steady"))
    every.sort()
    for q in (50, 95, 99):
        exact = every[int(q / 100 * len(every)) - 1]
        assert latency_percentile(rows, q) == pytest.approx(exact, rel=0.045)


def test_histogram_buckets_and_edges() -> None:
    assert bucket_of(0.3) == 0 and bucket_of(1.0) == 0
    assert bucket_of(1.04) == 1 and bucket_of(1.05) == 2
    assert hist_percentile({}, 50) is None


def test_availability_counts_5xx_and_transport_failures_not_4xx() -> None:
    rows = [{"requests": 10, "status": {"200": 6, "400": 1, "503": 2, "0": 1}}]
    assert availability(rows) == pytest.approx(0.7)
    assert availability([{"requests": 0, "status": {}}]) is None
    assert fallback_ratio([{"tiers": {"none": 3, "global_popular": 1}}]) == 0.25
    assert fallback_ratio([{"tiers": {}}]) is None


def test_summary_of_rows_without_histograms_is_request_weighted() -> None:
    rows = [
        {
            "t": 1,
            "requests": 30,
            "p50_ms": 10.0,
            "p99_ms": 20.0,
            "max_ms": 25.0,
            "status": {"200": 30},
        },
        {
            "t": 2,
            "requests": 10,
            "p50_ms": 50.0,
            "p99_ms": 90.0,
            "max_ms": 99.0,
            "status": {"200": 10},
        },
    ]
    out = summarize(rows)
    assert out["p50_ms"] == pytest.approx(20.0) and out["max_ms"] == 99.0
    assert out["rps"] == 20.0 and out["availability"] == 1.0


def test_send_ratio_counts_slots_the_deployment_held_up_and_skips_unrecorded_rows() -> None:
    from chaos_rec.slo.metrics import send_ratio

    rows = [
        {"sent": 80, "busy_skipped": 10, "target_rps": 100.0},
        {"sent": 50, "busy_skipped": 0, "target_rps": 100.0},
        {"requests": 5},  # an older row without generator figures
        {"sent": 7, "target_rps": 0.0},  # a capacity-probe second: no schedule
    ]
    assert send_ratio(rows) == (80 + 10 + 50) / 200
    assert send_ratio([{"requests": 3}]) is None


def test_generator_lag_is_the_median_of_each_seconds_worst_delay() -> None:
    from chaos_rec.slo.metrics import generator_lag_ms

    assert generator_lag_ms([{"gen_lag_ms": v} for v in (5.0, 300.0, 7.0)]) == 7.0
    assert generator_lag_ms([{"gen_lag_ms": v} for v in (4.0, 8.0)]) == 6.0
    assert generator_lag_ms([{"requests": 1}]) is None
