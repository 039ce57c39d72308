"""The quality replay sends a held-out row's query as a search request and keeps the kinds apart."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from chaos_rec.core.quality import replay
from chaos_rec.core.seams import Answer, LoadHandle


class _Recorder:
    """A Traffic fake: answers each user with a fixed list and records what it was asked."""

    def __init__(self, answers: dict[tuple[int, str | None], tuple[int, ...] | None]) -> None:
        self.answers = answers
        self.asked: list[tuple[int, str | None]] = []

    def start_load(self, run_dir: Path, **_: object) -> LoadHandle:  # pragma: no cover
        raise AssertionError("the replay starts no load")

    def recommend(self, user_id: int, k: int, query: str | None = None) -> Answer | None:
        self.asked.append((user_id, query))
        items = self.answers.get((user_id, query))
        return None if items is None else Answer(items[:k], "none" if query is None else "search")

    def close(self) -> None:
        pass


def _holdout(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "holdout.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def test_a_row_with_a_query_is_replayed_as_search_and_counted_apart(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"user_id": 1, "target_item": 10, "query": None},
        {"user_id": 2, "target_item": 20, "query": "Comedy"},
        {"user_id": 3, "target_item": 30, "query": "Toy Story"},
        {"user_id": 4, "target_item": 40},  # an older holdout file: no query key
    ]
    traffic = _Recorder(
        {
            (1, None): (10, 11, 12),  # hit at rank 1
            (2, "Comedy"): (21, 20, 22),  # hit at rank 2
            (3, "Toy Story"): (31, 32, 33),  # answered, missed
            (4, None): None,  # not answered
        }
    )
    out = replay(traffic, _holdout(tmp_path, rows), sample=10, k=3, seed=0)
    assert sorted(traffic.asked) == [(1, None), (2, "Comedy"), (3, "Toy Story"), (4, None)]
    search, rec = out["by_kind"]["search"], out["by_kind"]["recommend"]
    assert (search["n"], search["answered"], search["hits"]) == (2, 2, 1)
    assert (rec["n"], rec["answered"], rec["hits"]) == (2, 1, 1)
    assert search["ndcg@3"] == pytest.approx(round(1 / math.log2(3) / 2, 4))
    assert rec["ndcg@3"] == pytest.approx(0.5)
    assert (out["n"], out["answered"], out["hits"]) == (4, 3, 2)  # the totals cover both kinds
    assert out["ndcg@3"] == pytest.approx((1.0 + 1 / math.log2(3)) / 4)
    assert out["tiers"] == {"none": 1, "search": 2}


def test_a_holdout_without_queries_has_no_search_share(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [{"user_id": u, "target_item": u} for u in range(1, 6)]
    traffic = _Recorder({(u, None): (u,) for u in range(1, 6)})
    out = replay(traffic, _holdout(tmp_path, rows), sample=5, k=10, seed=0)
    assert list(out["by_kind"]) == ["recommend"] and out["hits"] == 5
    assert all(q is None for _, q in traffic.asked)


class _Ctx:
    """A RunContext fake holding quality.json in memory."""

    def __init__(self, data: dict[str, object] | None = None) -> None:
        self.data = data

    def quality(self) -> dict[str, object] | None:
        return self.data

    def write_quality(self, data: dict[str, object]) -> None:
        self.data = json.loads(json.dumps(data))

    def current_phase(self) -> str:
        return "fault"


def _rows(n_rec: int, n_search: int) -> list[dict[str, object]]:
    rec = [{"user_id": u, "target_item": u, "query": None} for u in range(n_rec)]
    search = [
        {"user_id": 1000 + u, "target_item": 1000 + u, "query": "Drama"} for u in range(n_search)
    ]
    return rec + search


def test_the_ratio_weighs_each_kind_by_its_share_against_its_own_baseline(tmp_path: Path) -> None:
    from chaos_rec.core.quality import measure_baseline, measure_ratio

    rows = _rows(14, 6)  # 70 % recommendations, 30 % search, every target hit at rank 1
    holdout = _holdout(tmp_path, rows)
    healthy = {(int(r["user_id"]), r["query"]): (int(r["target_item"]),) for r in rows}
    ctx = _Ctx()
    measure_baseline(ctx, _Recorder(healthy), holdout, sample=20, k=10, seed=0)
    # Search answers lose every target; recommendations keep theirs: 0.7 * 1 + 0.3 * 0.
    broken_search = {key: (items if key[1] is None else (9999,)) for key, items in healthy.items()}
    ratio = measure_ratio(ctx, _Recorder(broken_search), holdout, seed=0)
    assert ratio == pytest.approx(0.7)
    parts = ctx.data["measurements"][-1]["ratio_by_kind"]
    assert parts["search"]["ratio"] == 0.0 and parts["recommend"]["ratio"] == 1.0
    assert parts["search"]["basis"] == "agreement"  # 6 baseline hits < MIN_BASELINE_HITS
    assert measure_ratio(ctx, _Recorder(healthy), holdout, seed=0) == pytest.approx(1.0)


def test_a_baseline_from_before_the_search_share_still_judges(tmp_path: Path) -> None:
    from chaos_rec.core.quality import measure_ratio

    rows = _rows(20, 0)
    holdout = _holdout(tmp_path, rows)
    answers = {(int(r["user_id"]), None): (int(r["target_item"]),) for r in rows}
    old = replay(_Recorder(answers), holdout, sample=20, k=10, seed=0)
    old.pop("by_kind")  # the shape quality.json had before
    ctx = _Ctx({"baseline": old, "sample": 20, "k": 10, "measurements": []})
    half = {key: (items if key[0] % 2 else (9999,)) for key, items in answers.items()}
    assert measure_ratio(ctx, _Recorder(half), holdout, seed=0) == pytest.approx(0.5)
