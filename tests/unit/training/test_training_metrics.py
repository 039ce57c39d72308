"""Metrics on tiny hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import (
    ease_scores,
    itemknn_scores,
    prob_metrics,
    rank_metrics,
    ranks_from_scores,
)


def test_ranks_exclude_history_and_split_ties() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.6], [0.5, 0.5, 0.5, 0.1]])
    hist = [np.array([0]), np.array([], dtype=np.int64)]
    ranks = ranks_from_scores(scores, np.array([2, 1]), hist)
    # user 0: item 0 excluded, only item 1 above item 2 → rank 1
    # user 1: two other items tie with the target → 0 higher + 2 // 2 = 1
    assert list(ranks) == [1, 1]


def test_rank_metrics_by_hand() -> None:
    m = rank_metrics(np.array([0, 1, 20]), k=10)
    assert m["hr@10"] == pytest.approx(2 / 3)
    assert m["ndcg@10"] == pytest.approx((1.0 + 1 / math.log2(3)) / 3)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 21) / 3)


def test_prob_metrics_by_hand() -> None:
    p = np.array([0.9, 0.4, 0.6, 0.1])
    y = np.array([1, 1, 0, 0])
    m = prob_metrics(p, y)
    # pairs (pos, neg): (.9,.6) (.9,.1) (.4,.6) (.4,.1) → 3 of 4 ordered right
    assert m["auc"] == pytest.approx(0.75)
    assert m["precision"] == pytest.approx(0.5)  # predicted {0.9, 0.6}, one right
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    want = -(math.log(0.9) + math.log(0.4) + math.log(0.4) + math.log(0.9)) / 4
    assert m["logloss"] == pytest.approx(want)


def test_ease_and_itemknn_recommend_co_occurring_item() -> None:
    x = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)
    for scores in (ease_scores(x, 0.5), itemknn_scores(x, 2)):
        # user 3 has item 0; item 1 co-occurs with item 0, item 2 never does
        assert scores[3, 1] > scores[3, 2]
