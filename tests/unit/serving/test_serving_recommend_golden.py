"""Speed work must not change what the model answers: the reference bundle's recommendations
for fixed inputs equal the ones recorded before any serving optimisation (ids exactly,
probabilities to 1e-5), at batch 1 and batch 32, with and without queries.

Regenerate only when the *model* changes (a new bundle), never to make this pass:
    .venv/bin/python tests/unit/serving/test_serving_recommend_golden.py --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
BUNDLE = ROOT / "bundles" / "reference"
GOLDEN = Path(__file__).with_name("data") / "recommend_golden.json"
QUERIES = ("Star Wars", "Comedy", "a quiet drama about a family")


def cases(item_ids: np.ndarray) -> list[dict[str, Any]]:
    """Deterministic batches: empty/short/over-long histories, unknown ids, some queries."""
    rng = np.random.default_rng(1234)
    out: list[dict[str, Any]] = []
    for b in (1, 1, 1, 32, 32, 7):
        hists: list[list[int]] = []
        queries: list[str | None] = []
        for _ in range(b):
            n = int(rng.choice([0, 1, 3, 12, 30, 49, 50, 51, 80]))
            h = [int(x) for x in rng.choice(item_ids, size=n, replace=False)]
            if n and rng.random() < 0.1:
                h.append(10**9)  # an id the bundle does not know is dropped
            hists.append(h)
            queries.append(str(rng.choice(QUERIES)) if rng.random() < 0.25 else None)
        out.append({"histories": hists, "queries": queries, "k": int(rng.choice([1, 10, 25]))})
    return out


def run(bundle: Any) -> list[dict[str, Any]]:
    """Recommendations for every case."""
    res = []
    for c in cases(bundle.item_ids):
        ids, scores = bundle.recommend(c["histories"], c["queries"], c["k"])
        res.append({"ids": ids.tolist(), "scores": [[float(s) for s in r] for r in scores]})
    return res


@pytest.fixture(scope="module")
def bundle() -> Any:
    from serving.model import size_threads
    from training.bundle import load_bundle

    size_threads(1)
    b = load_bundle(BUNDLE)
    b.warmup()
    return b


def test_recommendations_match_the_recorded_ones(bundle: Any) -> None:
    golden = json.loads(GOLDEN.read_text())
    assert golden["model_version"] == bundle.model_version, "bundle changed: regenerate"
    got = run(bundle)
    assert len(got) == len(golden["cases"])
    for i, (g, w) in enumerate(zip(got, golden["cases"], strict=True)):
        assert g["ids"] == w["ids"], f"case {i}: item ids differ from the recorded ones"
        np.testing.assert_allclose(
            np.asarray(g["scores"]), np.asarray(w["scores"]), rtol=0, atol=1e-5
        )


def test_recommendations_are_repeatable(bundle: Any) -> None:
    assert run(bundle) == run(bundle)


if __name__ == "__main__" and "--write" in sys.argv:
    sys.path.insert(0, str(ROOT))
    from serving.model import size_threads
    from training.bundle import load_bundle

    size_threads(1)
    b = load_bundle(BUNDLE)
    b.warmup()
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps({"model_version": b.model_version, "cases": run(b)}) + "\n")
    print(f"wrote {GOLDEN}")


def test_batch_padding_equals_the_per_item_path(bundle: Any) -> None:
    import torch

    rng = np.random.default_rng(7)
    ids = bundle.item_ids
    batches = [[[]], [[], []], [[-5, 10**12]], [[2**63 - 1, int(ids[0])]], [[10**30, int(ids[1])]]]
    for _ in range(20):
        b = int(rng.integers(1, 40))
        batches.append(
            [
                [int(x) for x in rng.choice(ids, size=int(rng.integers(0, 70)))]
                + [int(x) for x in rng.integers(-3, 5000, size=int(rng.integers(0, 4)))]
                for _ in range(b)
            ]
        )
    for hs in batches:
        want = bundle._scorer.pad([bundle.to_internal(h) for h in hs])
        got = bundle.padded(hs)
        assert got.dtype == torch.long and torch.equal(got, want), hs


def test_the_direct_encoder_path_is_on_and_bit_identical(bundle: Any) -> None:
    import torch

    model = bundle._scorer.model
    assert model._direct  # so the golden comparison above ran through it
    seq = bundle._scorer.seqs(bundle.padded(cases(bundle.item_ids)[3]["histories"]))
    with torch.inference_mode():
        fast = model.encode(seq, bundle._scorer.item_vecs)
        model._direct = False
        try:
            slow = model.encode(seq, bundle._scorer.item_vecs)
        finally:
            model._direct = True
    assert torch.equal(fast, slow)
