"""Ranking and probability metrics (pure numpy) and the baselines: popularity, ItemKNN, EASE.

Ranks are 0-based over the full catalogue with the user's history items excluded; ties
count half (rank = #items scored higher + floor(#other items with an equal score / 2)).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "ease_scores",
    "itemknn_scores",
    "prob_metrics",
    "rank_metrics",
    "ranks_from_scores",
    "user_item_matrix",
]


def ranks_from_scores(
    scores: np.ndarray, targets: np.ndarray, hist: list[np.ndarray]
) -> np.ndarray:
    """0-based rank of each target among all non-history items (scores [U, N])."""
    s = scores.astype(np.float64, copy=True)
    for u, h in enumerate(hist):
        s[u, h] = -np.inf
    t = s[np.arange(len(targets)), targets][:, None]
    higher = (s > t).sum(1)
    ties = (s == t).sum(1) - 1
    ranks: np.ndarray = (higher + ties // 2).astype(np.int64)
    return ranks


def rank_metrics(ranks: np.ndarray, k: int = 10) -> dict[str, float]:
    """HR@k, NDCG@k and MRR from 0-based ranks."""
    r = np.asarray(ranks, dtype=np.float64)
    hit = r < k
    return {
        f"hr@{k}": float(hit.mean()),
        f"ndcg@{k}": float(np.where(hit, 1.0 / np.log2(r + 2.0), 0.0).mean()),
        "mrr": float((1.0 / (r + 1.0)).mean()),
    }


def prob_metrics(p: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """AUC (Mann-Whitney, ties half), logloss, precision/recall/F1 at ``threshold``."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=bool)
    pos, neg = p[y], p[~y]
    if len(pos) and len(neg):
        order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
        allv = np.concatenate([pos, neg])[order]
        ranks = np.empty(len(allv))
        # average ranks for ties
        _, inv, counts = np.unique(allv, return_inverse=True, return_counts=True)
        cum = np.cumsum(counts)
        avg = cum - (counts - 1) / 2.0
        ranks[order] = avg[inv]
        auc = (ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
    else:
        auc = float("nan")
    eps = 1e-7
    pc = np.clip(p, eps, 1 - eps)
    logloss = float(-(y * np.log(pc) + (~y) * np.log(1 - pc)).mean())
    pred = p >= threshold
    tp = float((pred & y).sum())
    precision = tp / max(1.0, float(pred.sum()))
    recall = tp / max(1.0, float(y.sum()))
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {
        "auc": float(auc),
        "logloss": logloss,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def user_item_matrix(hist: list[np.ndarray], n_items: int) -> np.ndarray:
    """Binary user×item matrix (float64) of the given histories."""
    x = np.zeros((len(hist), n_items))
    for u, h in enumerate(hist):
        x[u, h] = 1.0
    return x


def ease_scores(x: np.ndarray, lam: float) -> np.ndarray:
    """EASE (Steck 2019): closed-form item-item weights, scores = X·B."""
    g = x.T @ x
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    scores: np.ndarray = x @ b
    return scores


def itemknn_scores(x: np.ndarray, k: int) -> np.ndarray:
    """Item-based kNN: cosine similarity, top-k neighbours per item, scores = X·S."""
    norms = np.sqrt(x.sum(0)) + 1e-9
    s = (x.T @ x) / norms[:, None] / norms[None, :]
    np.fill_diagonal(s, 0.0)
    if k < s.shape[0]:
        cut = -np.partition(-s, k - 1, axis=1)[:, k - 1 : k]
        s = np.where(s >= cut, s, 0.0)
    scores: np.ndarray = x @ s.T
    return scores


def tune(
    fit: Callable[[float], np.ndarray],
    grid: list[float],
    targets: np.ndarray,
    hist: list[np.ndarray],
) -> tuple[float, dict[float, float]]:
    """Pick the grid value with the best validation NDCG@10."""
    got = {g: rank_metrics(ranks_from_scores(fit(g), targets, hist))["ndcg@10"] for g in grid}
    return max(got, key=lambda g: (got[g], -grid.index(g))), got
