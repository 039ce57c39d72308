"""Per-subset evaluation, the baselines' ranks and the card's subset and target lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.card import render_card, subset_table, verdict
from training.data import _build, clean
from training.evaluation import baseline_ranks, subset_masks, subset_metrics
from training.split import leave_last_out
from training.train import DEFAULT_CONFIG


def _split():
    # users 1-3 end on a shared second, users 4-9 on a second of their own
    rows = []
    for u in range(1, 10):
        items = [(u + k) % 7 + 1 for k in range(5)]
        ts = [1, 2, 3, 4, 4] if u <= 3 else [1, 2, 3, 4, 5]
        rows += [(str(u), str(i), str(t)) for i, t in zip(items, ts, strict=True)]
    kept, rep = clean(rows, min_user=3)
    return leave_last_out(_build("e", kept, rep, {}, {}, {}))


def test_masks_partition_the_users() -> None:
    split = _split()
    m = subset_masks(split)
    assert m["tied"].tolist() == [True] * 3 + [False] * 6
    assert np.array_equal(m["unambiguous"], ~m["tied"]) and m["all"].all()


def test_subset_metrics_use_only_their_users() -> None:
    split = _split()
    ranks = {"a": np.array([0, 0, 0, 50, 50, 50, 50, 50, 50])}
    got = subset_metrics(ranks, split)
    assert got["tied"]["users"] == 3 and got["tied"]["a"]["hr@10"] == 1.0
    assert got["unambiguous"]["users"] == 6 and got["unambiguous"]["a"]["hr@10"] == 0.0
    assert got["all"]["a"]["hr@10"] == pytest.approx(1 / 3)


def test_baselines_rank_every_user_without_sasrec() -> None:
    split = _split()
    ranks, chosen = baseline_ranks(split, lambda _m: None, seed=0, sasrec=False)
    assert set(ranks) == {"popularity", "itemknn", "ease"} and set(chosen) == {"itemknn", "ease"}
    for r in ranks.values():
        assert r.shape == (9,) and (r >= 0).all() and (r < split.n_items).all()


def _row(ours: float, ease: float, sasrec: float) -> dict[str, object]:
    return {
        "users": 5,
        "ours": {"hr@10": 0.2, "ndcg@10": ours, "mrr": 0.1},
        "ours (retrieval only)": {"hr@10": 0.2, "ndcg@10": ours, "mrr": 0.1},
        "popularity": {"hr@10": 0.1, "ndcg@10": 0.02, "mrr": 0.02},
        "ease": {"hr@10": 0.1, "ndcg@10": ease, "mrr": 0.05},
        "sasrec": {"hr@10": 0.1, "ndcg@10": sasrec, "mrr": 0.05},
    }


def test_verdict_needs_both_targets() -> None:
    assert verdict(_row(0.08, 0.05, 0.08))[1] is True
    assert verdict(_row(0.08, 0.05, 0.09))[1] is False  # below SASRec
    line, ok = verdict(_row(0.05, 0.05, 0.04))
    assert not ok and "ours / EASE = 1.00 (target ≥ 1.15)" in line


def test_card_headlines_the_unambiguous_users_and_says_when_targets_fail() -> None:
    subsets = {"unambiguous": _row(0.08, 0.05, 0.09), "tied": _row(0.1, 0.03, 0.1)}
    subsets["all"] = _row(0.09, 0.04, 0.095)
    table = subset_table(subsets)
    assert table.splitlines()[0].startswith("| NDCG@10 (HR@10) | unambiguous (5 users)")
    assert "| sasrec | 0.0900 (0.1000) |" in table
    ours = {
        **subsets["all"]["ours"],
        **{f"retrieval_{k}": v for k, v in subsets["all"]["ours"].items()},
    }
    meta = {
        "model_version": "m-1",
        "dataset": "d",
        "n_users": 5,
        "n_items": 9,
        "cleaning": {},
        "split": "s",
        "base_model": "b",
        "timings_s": {},
        "created_by": "t",
        "config": {
            "lora_rank": 8,
            "lora_layers": [4],
            "dim": 8,
            "layers": 1,
            "max_history": 5,
            "loss": "ce",
            "lr": 0.1,
            "patience": 1,
            "rerank": 3,
            "head_epochs": 2,
            "query_weight": 1.0,
            "seed": 1,
        },
        "metrics": {
            "ours": ours,
            "ease": {"hr@10": 0.1, "ndcg@10": 0.04, "mrr": 0.04, "lambda": 5},
        },
        "subsets": subsets,
        "search": {"ours, query only": {"title": {"queries": 3.0, "recall@10": 0.5}}},
    }
    card = render_card(meta)
    assert "Headline (5 users): ours / EASE = 1.60" in card and "targets **NOT met**" in card
    assert "ours / SASRec = 0.89" in card and "| ours, query only | R 0.500 |" in card
    assert "{'ease': {'lambda': 5}}" in card


def test_head_epoch_curve_uses_validation_only_and_keeps_the_rng() -> None:
    import torch

    from training.model import RankHead, SeqRec
    from training.pipeline import item_tables
    from training.scoring import Scorer
    from training.train import DEFAULT_CONFIG, head_epoch_curve

    rows = [(str(u), str(100 + (u * 7 + t) % 12), str(t)) for u in range(1, 13) for t in range(6)]
    kept, rep = clean(rows, min_user=3)
    ds = _build("h", kept, rep, {}, {100 + i: ["A"] for i in range(12)}, {})
    split = leave_last_out(ds)
    torch.manual_seed(0)
    cfg = {**DEFAULT_CONFIG, "n_items": ds.n_items, "max_history": 4, "dim": 8, "rerank": 5}
    model = SeqRec(cfg, torch.randn(ds.n_items, 16)).eval()
    tables = item_tables(ds, split)
    head = RankHead(8, int(cfg["head_hidden"]))
    scorer = Scorer(
        model=model,
        head=head,
        item_vecs=model.item_table().detach(),
        logpop=tables["item.logpop"],
        item_cat=tables["item.category"].long(),
        genre_mh=tables["item.genres"],
        max_history=4,
        rerank=5,
    )
    before = {k: v.clone() for k, v in head.state_dict().items()}
    state = torch.get_rng_state()
    curve = head_epoch_curve(split, scorer, cfg, max_epochs=3)
    assert sorted(curve) == [0, 1, 2, 3] and all(0.0 <= v <= 1.0 for v in curve.values())
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is untouched
    assert all(torch.equal(before[k], v) for k, v in head.state_dict().items())
    split.test[:] = 0  # test items play no part
    assert head_epoch_curve(split, scorer, cfg, max_epochs=3) == curve


def test_dataset_facts_count_repeats_lengths_and_text() -> None:
    from training.datafacts import dataset_facts

    rows = [(str(u), str(i), str(t)) for u in (1, 2) for t, i in enumerate((1, 2, 3, 4, 5))]
    rows += [("1", "1", "9"), ("2", "2", "9")]  # repeat purchases: collapsed by cleaning
    kept, rep = clean(rows, min_user=3)
    ds = _build("f", kept, rep, {1: "Fargo (1996). Genres: Crime"}, {1: ["Crime"]}, {})
    got = dataset_facts(ds, leave_last_out(ds))
    assert got["users"] == 2 and got["items"] == 5
    assert got["repeat_rows_collapsed"] == 2 and got["repeat_share_of_rows"] == pytest.approx(
        2 / 12
    )
    assert got["history_length"]["median"] == 4.0
    assert got["items_with_descriptive_text"] == pytest.approx(1 / 5)  # the rest read "item N"
    assert got["items_with_categories"] == pytest.approx(1 / 5)
    assert got["users_with_unambiguous_last_event"] == 2


def test_card_command_on_a_missing_bundle_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.cli import main

    assert main(["card", "--bundle", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: bundle folder not found")


def _tiny_scorer():
    import torch

    from training.model import RankHead, SeqRec
    from training.pipeline import item_tables
    from training.scoring import Scorer
    from training.train import DEFAULT_CONFIG

    rows = [(str(u), str(100 + (u * 7 + t) % 12), str(t)) for u in range(1, 13) for t in range(6)]
    kept, rep = clean(rows, min_user=3)
    texts = {100 + i: f"Film{i} (199{i % 10}). Genres: {'A' if i % 2 else 'B'}" for i in range(12)}
    genres = {100 + i: ["A"] if i % 2 else ["B"] for i in range(12)}
    ds = _build("m", kept, rep, texts, genres, {})
    split = leave_last_out(ds)
    torch.manual_seed(0)
    cfg = {**DEFAULT_CONFIG, "n_items": ds.n_items, "max_history": 4, "dim": 8, "rerank": 5}
    model = SeqRec(cfg, torch.randn(ds.n_items, 16)).eval()
    tables = item_tables(ds, split)
    scorer = Scorer(
        model=model,
        head=RankHead(8, int(cfg["head_hidden"])).eval(),
        item_vecs=model.item_table().detach(),
        logpop=tables["item.logpop"],
        item_cat=tables["item.category"].long(),
        genre_mh=tables["item.genres"],
        max_history=4,
        rerank=5,
    )
    return ds, split, scorer


def test_measure_reports_every_model_subset_and_search_setting() -> None:
    import torch

    from training.evaluation import measure, ours_search_ranker

    ds, split, scorer = _tiny_scorer()
    calls: list[int] = []

    def encode(texts: list[str]) -> torch.Tensor:  # a fake query encoder at the typed seam
        calls.append(len(texts))
        g = torch.Generator().manual_seed(len(texts))
        return torch.randn(len(texts), 8, generator=g)

    got = measure(ds, split, scorer, encode, seed=0, log=lambda _m: None, sasrec=False)
    assert set(got) == {"metrics", "subsets", "search", "timings_s"}
    assert {"ours", "popularity", "itemknn", "ease"} <= set(got["metrics"])
    assert "retrieval_ndcg@10" in got["metrics"]["ours"] and "lambda" in got["metrics"]["ease"]
    assert set(got["subsets"]) == {"unambiguous", "tied", "all"}
    assert got["subsets"]["all"]["users"] == len(split.user_ids)
    assert set(got["search"]) == {
        "ours, query only",
        "ours, query + history",
        "bm25, query only",
        "bm25, query + history",
    }
    # BM25 finds a title query's own film ("Film3" names one item only)
    assert got["search"]["bm25, query only"]["title"]["recall@10"] == 1.0
    assert len(calls) == 1  # the queries are encoded once for both settings
    # query only = the query vector alone against the item table
    rank = ours_search_ranker(scorer, encode)
    qv = encode(["x", "y"])
    assert np.allclose(rank(["x", "y"], None), (qv @ scorer.item_vecs.t()).numpy(), atol=1e-5)


def test_subset_metrics_carry_paired_noise_against_ours() -> None:
    split = _split()
    ours = np.array([0, 0, 0, 0, 0, 0, 50, 50, 50])
    other = np.array([0, 0, 0, 50, 50, 50, 50, 50, 0])
    got = subset_metrics({"ours": ours, "b": other}, split)["unambiguous"]
    gain = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # ours on users 4-9
    d = gain - np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])  # the other model on users 4-9
    assert got["b"]["ours_minus_ndcg@10"] == pytest.approx(d.mean())
    assert got["b"]["ours_minus_ndcg@10_se"] == pytest.approx(d.std(ddof=1) / np.sqrt(6))
    assert got["ours"]["ndcg@10_se"] == pytest.approx(gain.std(ddof=1) / np.sqrt(6))
    assert "ours_minus_ndcg@10" not in got["ours"]
    line, _ = verdict({**got, "ease": got["b"], "popularity": got["b"], "sasrec": got["b"]})
    assert "ours − SASRec = +0.3333 ±" in line


def test_card_renders_a_dataset_without_tied_users() -> None:
    # Instacart's split has no same-second ties: its "tied" row is empty, not a crash
    split = _split()
    ranks = {
        "ours": np.array([0, 3, 50, 50, 2, 50, 1, 50, 50]),
        "ease": np.array([5, 50, 50, 50, 50, 50, 0, 50, 50]),
        "popularity": np.array([50] * 9),
    }
    subsets = subset_metrics(ranks, split)
    subsets["tied"] = {"users": 0, **{m: {} for m in ranks}}
    ours = {
        **subsets["all"]["ours"],
        **{f"retrieval_{k}": 0.1 for k in ("hr@10", "ndcg@10", "mrr")},
    }
    meta = {
        "model_version": "m-1",
        "dataset": "d",
        "n_users": 9,
        "n_items": 7,
        "cleaning": {},
        "split": "s",
        "base_model": "b",
        "timings_s": {},
        "created_by": "t",
        "config": {**DEFAULT_CONFIG, "head_epochs": 2, "query_weight": 1.0},
        "metrics": {"ours": ours, "ease": subsets["all"]["ease"]},
        "subsets": subsets,
    }
    card = render_card(meta)
    assert "Headline (6 users)" in card and "tied (0 users)" in card
    assert "users whose last timestamp is shared" not in card  # no verdict for an empty row
    assert "- every user: ours / EASE" in card
