"""A tiny bundle round-trips through write/load/recommend; tampering is rejected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from training.bundle import load_bundle, verify
from training.data import _build, clean
from training.errors import BundleError
from training.model import RankHead, SeqRec
from training.pipeline import bundle_tensors, item_tables, write_bundle
from training.scoring import Scorer
from training.split import leave_last_out
from training.train import DEFAULT_CONFIG

METRICS = {
    "ours": {
        k: 0.1
        for k in [
            "hr@10",
            "ndcg@10",
            "mrr",
            "retrieval_hr@10",
            "retrieval_ndcg@10",
            "retrieval_mrr",
        ]
    },
    "popularity": {"hr@10": 0.05, "ndcg@10": 0.02, "mrr": 0.02},
    "ease": {"hr@10": 0.08, "ndcg@10": 0.04, "mrr": 0.04},
}


def _write_tiny(out: Path) -> None:
    torch.manual_seed(0)
    rows = [(str(u), str(100 + (u * 7 + t) % 12), str(t)) for u in range(1, 9) for t in range(6)]
    kept, rep = clean(rows, min_user=3)
    genres = {100 + i: ["Drama"] if i % 2 else ["Comedy", "Drama"] for i in range(12)}
    ds = _build("movielens-100k", kept, rep, {}, genres, {})
    split = leave_last_out(ds)
    cfg = {**DEFAULT_CONFIG, "n_items": ds.n_items, "max_history": 4, "dim": 8}
    model = SeqRec(cfg, torch.randn(ds.n_items, 384))
    model.eval()
    tables = item_tables(ds, split)
    scorer = Scorer(
        model=model,
        head=RankHead(8, int(cfg["head_hidden"])),
        item_vecs=model.item_table().detach(),
        logpop=tables["item.logpop"],
        item_cat=tables["item.category"].long(),
        genre_mh=tables["item.genres"],
        max_history=4,
        rerank=5,
    )
    write_bundle(
        out,
        ds,
        split,
        cfg,
        bundle_tensors(scorer, {}, tables),
        {"metrics": METRICS},
        {"total_s": 1.0},
    )


@pytest.fixture
def tiny_bundle(tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    _write_tiny(out)
    return out


def test_round_trip_recommend(tiny_bundle: Path) -> None:
    files = verify(tiny_bundle)
    assert set(files) == {"metadata.json", "finetuned.safetensors", "model_card.md"}
    b = load_bundle(tiny_bundle)
    meta = json.loads((tiny_bundle / "metadata.json").read_text())
    assert b.model_version == meta["model_version"] and b.model_version.startswith(
        "movielens-100k-"
    )
    assert b.n_items == len(b.item_ids) == 12 and b.item_ids.dtype == np.int64
    assert b.categories == ["Comedy", "Drama"]
    assert sorted(b.popular.tolist()) == list(range(12))
    assert all(b.item_category[i] == c for c, idx in b.popular_by_category.items() for i in idx)
    ids, scores = b.recommend([[100, 101, 102], [], [999]], [None, None, None], k=4)
    assert ids.shape == (3, 4) and scores.shape == (3, 4)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    assert not set(ids[0].tolist()) & {100, 101, 102}  # seen items excluded
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # sorted by probability
    assert np.all((scores >= 0) & (scores <= 1))
    assert set(ids.flatten().tolist()) <= set(b.item_ids.tolist())
    again, _ = b.recommend([[100, 101, 102]], [None], k=4)
    assert np.array_equal(again[0], ids[0])  # deterministic
    with_seen, _ = b.recommend([[100, 101, 102]], [None], k=12, exclude_seen=False)
    assert {100, 101, 102} <= set(with_seen[0].tolist())
    assert "NDCG@10" in (tiny_bundle / "model_card.md").read_text()


def test_tampered_bundle_is_rejected(tiny_bundle: Path) -> None:
    weights = tiny_bundle / "finetuned.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"checksum mismatch for finetuned\.safetensors"):
        load_bundle(tiny_bundle)


def test_extra_and_missing_files_are_rejected(tiny_bundle: Path) -> None:
    (tiny_bundle / "evil.bin").write_bytes(b"x")
    with pytest.raises(BundleError, match=r"not in manifest evil\.bin"):
        verify(tiny_bundle)
    (tiny_bundle / "evil.bin").unlink()
    (tiny_bundle / "model_card.md").unlink()
    with pytest.raises(BundleError, match="missing file"):
        verify(tiny_bundle)
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tiny_bundle / "nope")


def test_bad_arguments(tiny_bundle: Path) -> None:
    b = load_bundle(tiny_bundle)
    with pytest.raises(ValueError, match="same length"):
        b.recommend([[100]], [], k=3)
    with pytest.raises(ValueError, match="k must be"):
        b.recommend([[100]], [None], k=0)


def test_a_failed_write_leaves_the_previous_bundle_whole(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.pipeline as pipeline

    before = {p.name: p.read_bytes() for p in tiny_bundle.iterdir()}

    def broken_card(_meta: object) -> str:
        raise KeyError("ndcg@10")

    monkeypatch.setattr(pipeline, "render_card", broken_card)
    with pytest.raises(KeyError, match="ndcg@10"):
        _write_tiny(tiny_bundle)
    assert {p.name: p.read_bytes() for p in tiny_bundle.iterdir()} == before
    assert verify(tiny_bundle)
    assert [p.name for p in tiny_bundle.parent.iterdir()] == ["bundle"]  # no partial dir left


def test_a_rewrite_replaces_the_bundle(tiny_bundle: Path) -> None:
    (tiny_bundle / "metadata.json").write_text("{}")
    _write_tiny(tiny_bundle)
    assert verify(tiny_bundle) and load_bundle(tiny_bundle).model_version.startswith("movielens")
    assert [p.name for p in tiny_bundle.parent.iterdir()] == ["bundle"]
