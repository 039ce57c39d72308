"""Test-set evaluation of ours and every baseline, per user subset, plus search quality.

Subsets (``Split.unambiguous``): ``unambiguous`` users, whose held-out last event has a
timestamp of its own, so no tie rule decides which item is held out; ``tied`` users, whose
last timestamp is shared by several events, so the split's tie rule (ascending item id)
picks the held-out item and a model trained on id-ordered sequences can learn that rule;
``all`` = both. The headline is the unambiguous subset.

Every model ranks the full catalogue with the user's history excluded; ours, SASRec and the
sequence-free baselines see the same history (all but the test event).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from training import metrics as M
from training.data import Dataset
from training.sasrec import sasrec_scores, tune_sasrec
from training.scoring import Scorer
from training.search import BM25, Ranker, search_figures
from training.split import Split

__all__ = [
    "HEADLINE",
    "SUBSETS",
    "baseline_ranks",
    "measure",
    "ours_search_ranker",
    "scorer_ranks",
    "search_report",
    "subset_masks",
    "subset_metrics",
]

Log = Callable[[str], None]
SUBSETS = ("unambiguous", "tied", "all")
HEADLINE = "unambiguous"


def subset_masks(split: Split) -> dict[str, np.ndarray]:
    """Boolean user mask per subset name (see the module docstring)."""
    return {
        "unambiguous": split.unambiguous.copy(),
        "tied": ~split.unambiguous,
        "all": np.ones(len(split.user_ids), dtype=bool),
    }


def _gains(ranks: np.ndarray, k: int = 10) -> np.ndarray:
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def subset_metrics(ranks: dict[str, np.ndarray], split: Split) -> dict[str, dict[str, Any]]:
    """``{subset: {"users": n, model: {hr@10, ndcg@10, mrr, ...}}}`` from per-user test ranks.

    Each model also gets ``ndcg@10_se`` (standard error of its mean over the subset's users)
    and, against ``ours`` when present, ``ours_minus_ndcg@10`` with its paired standard error
    ``ours_minus_ndcg@10_se`` (per-user differences: the noise the comparison carries).
    """
    out: dict[str, dict[str, Any]] = {}
    for name, mask in subset_masks(split).items():
        n = int(mask.sum())
        row: dict[str, Any] = {"users": n}
        ours = _gains(ranks["ours"][mask]) if "ours" in ranks and n else None
        for model, r in ranks.items():
            if not n:
                row[model] = {}
                continue
            m = M.rank_metrics(r[mask])
            g = _gains(r[mask])
            m["ndcg@10_se"] = float(g.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
            if ours is not None and model != "ours":
                d = ours - g
                m["ours_minus_ndcg@10"] = float(d.mean())
                m["ours_minus_ndcg@10_se"] = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
            row[model] = m
        out[name] = row
    return out


def scorer_ranks(split: Split, scorer: Scorer) -> dict[str, np.ndarray]:
    """Per-user test ranks of ours: ``retrieval`` (user·item) and ``full`` (with the head).

    Also ``head_probs``/``head_labels`` (flattened over the top ``rerank`` candidates).
    """
    hists = [list(map(int, h)) for h in split.hist]
    c = scorer.rerank
    ret, full, probs, labels = [], [], [], []
    with torch.inference_mode():
        for i in range(0, len(hists), 128):
            hb = hists[i : i + 128]
            tb = torch.from_numpy(split.test[i : i + 128]).to(scorer.item_vecs.device)
            u, scores = scorer.retrieval(hb, None, exclude_seen=True)
            rr = M.ranks_from_scores(
                scores.cpu().numpy(), tb.cpu().numpy(), split.hist[i : i + 128]
            )
            ret.append(rr)
            cs, cand = scores.topk(c, dim=1)
            p = torch.sigmoid(scorer.head_logits(hb, u, cand, cs))
            order = p.argsort(dim=1, descending=True, stable=True)
            hit = torch.gather(cand, 1, order) == tb.unsqueeze(1)
            pos = hit.float().argmax(1)
            rr_t = torch.from_numpy(rr).to(pos.device)
            full.append(torch.where(hit.any(1), pos, rr_t).cpu().numpy())
            probs.append(p.flatten().cpu().numpy())
            labels.append((cand == tb.unsqueeze(1)).flatten().cpu().numpy())
    return {
        "retrieval": np.concatenate(ret),
        "full": np.concatenate(full),
        "head_probs": np.concatenate(probs),
        "head_labels": np.concatenate(labels),
    }


def baseline_ranks(
    split: Split, log: Log, seed: int, sasrec: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
    """Per-user test ranks and the validation-chosen settings of every baseline.

    Popularity, ItemKNN and EASE fit on the training sequences (all but the last two) for
    tuning and on all-but-last for the test; SASRec trains on the training sequences and
    keeps the epoch and grid point with the best validation NDCG@10.
    """
    inner, n = split.train, split.n_items
    x_in, x = M.user_item_matrix(inner, n), M.user_item_matrix(split.hist, n)
    ranks: dict[str, np.ndarray] = {}
    chosen: dict[str, dict[str, float]] = {}
    pop = split.popularity()
    ranks["popularity"] = M.ranks_from_scores(np.tile(pop, (len(x), 1)), split.test, split.hist)
    k, _ = M.tune(lambda g: M.itemknn_scores(x_in, int(g)), [20, 50, 100, 200], split.valid, inner)
    ranks["itemknn"] = M.ranks_from_scores(M.itemknn_scores(x, int(k)), split.test, split.hist)
    chosen["itemknn"] = {"k": k}
    grid = [50.0, 100.0, 250.0, 500.0, 1000.0]
    lam, _ = M.tune(lambda g: M.ease_scores(x_in, g), grid, split.valid, inner)
    ranks["ease"] = M.ranks_from_scores(M.ease_scores(x, lam), split.test, split.hist)
    chosen["ease"] = {"lambda": lam}
    if sasrec:
        fit = tune_sasrec(inner, split.valid, n, seed, log)
        ranks["sasrec"] = M.ranks_from_scores(
            sasrec_scores(fit.model, split.hist), split.test, split.hist
        )
        chosen["sasrec"] = {
            "max_len": fit.cfg["max_len"],
            "dropout": fit.cfg["dropout"],
            "epochs": fit.epochs,
            "val_ndcg@10": fit.val_ndcg,
        }
    return ranks, chosen


def ours_search_ranker(
    scorer: Scorer, encode: Callable[[list[str]], torch.Tensor], batch: int = 256
) -> Ranker:
    """The served ``query`` path as a search ranker: query vector alone or blended with history.

    Query vectors are encoded once per batch of texts and reused for the second setting.
    """
    cache: dict[tuple[str, ...], torch.Tensor] = {}

    def rank(texts: list[str], hists: list[np.ndarray] | None) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch):
                chunk = texts[i : i + batch]
                key = tuple(chunk)
                if key not in cache:
                    cache[key] = encode(chunk)
                qv = cache[key]
                rows = (
                    [[] for _ in chunk]
                    if hists is None
                    else [list(map(int, h)) for h in hists[i : i + batch]]
                )
                _, s = scorer.retrieval(rows, qv, exclude_seen=False)
                out.append(s.cpu().numpy())
        return np.concatenate(out)

    return rank


def search_report(
    ds: Dataset, split: Split, ours: Ranker, seed: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Search figures of ours and of BM25 over the item text, on queries for held-out items."""
    bm25 = BM25(ds.item_text)
    return search_figures(
        ds,
        split.test,
        split.hist,
        {"ours": ours, "bm25": lambda texts, _hists: bm25.scores(texts)},
        seed,
    )


def measure(
    ds: Dataset,
    split: Split,
    scorer: Scorer,
    encode: Callable[[list[str]], torch.Tensor],
    seed: int,
    log: Log,
    sasrec: bool = True,
) -> dict[str, Any]:
    """Every test figure of one run: ours and the baselines per subset, and search quality.

    Returns ``metrics`` (all users; ours also with retrieval-only and head figures, baselines
    with their chosen settings), ``subsets`` (see :func:`subset_metrics`), ``search`` (see
    :func:`training.search.search_figures`) and ``timings_s``.
    """
    timings: dict[str, float] = {}
    ours = scorer_ranks(split, scorer)
    t = time.perf_counter()
    log("baselines (tuned on validation; SASRec early-stopped on validation):")
    base, chosen = baseline_ranks(split, log, seed, sasrec)
    timings["baselines_s"] = time.perf_counter() - t
    o = M.rank_metrics(ours["full"])
    o.update({f"retrieval_{k}": v for k, v in M.rank_metrics(ours["retrieval"]).items()})
    o.update(
        {f"head_{k}": v for k, v in M.prob_metrics(ours["head_probs"], ours["head_labels"]).items()}
    )
    o["head_candidates_with_target"] = float(np.mean(ours["retrieval"] < scorer.rerank))
    metrics: dict[str, dict[str, float]] = {"ours": o}
    for name, r in base.items():
        metrics[name] = {**M.rank_metrics(r), **chosen.get(name, {})}
    ranks = {"ours": ours["full"], "ours (retrieval only)": ours["retrieval"], **base}
    subsets = subset_metrics(ranks, split)
    for name in SUBSETS:
        row = subsets[name]
        log(
            f"  {name} ({row['users']} users) ndcg@10: "
            + " ".join(f"{m}={row[m]['ndcg@10']:.4f}" for m in ranks if row[m])
        )
    t = time.perf_counter()
    search = search_report(ds, split, ours_search_ranker(scorer, encode), seed)
    timings["search_s"] = time.perf_counter() - t
    for setting, kinds in search.items():
        log(
            f"  search {setting}: "
            + "; ".join(
                f"{kind} " + " ".join(f"{k}={v:.3f}" for k, v in f.items() if k != "queries")
                for kind, f in kinds.items()
            )
        )
    return {"metrics": metrics, "subsets": subsets, "search": search, "timings_s": timings}
