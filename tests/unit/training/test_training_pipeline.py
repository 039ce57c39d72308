"""Small pieces of the pipeline: device choice, training windows, synthetic queries, CLI overrides."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from training.cli import _overrides
from training.data import _build, clean
from training.errors import TrainingError
from training.pipeline import pick_device
from training.train import synth_queries, windows


def test_pick_device() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == want
    with pytest.raises(TrainingError, match="unknown device 'tpu'"):
        pick_device("tpu")


def test_windows_cover_every_next_item_once() -> None:
    seq = np.arange(6)  # internal idx 0..5 → tokens 1..6
    w = windows([seq], length=3)
    assert w.shape[1] == 4
    # each row: inputs w[:, :-1] predict targets w[:, 1:]; every transition appears once
    pairs = {(int(a), int(b)) for row in w for a, b in itertools.pairwise(row) if a and b}
    assert pairs == {(i, i + 1) for i in range(1, 6)}
    assert w.tolist() == [[3, 4, 5, 6], [0, 1, 2, 3]]  # the oldest window is left-padded


def test_synth_queries_name_the_item() -> None:
    kept, rep = clean([("1", "5", "1"), ("1", "6", "2"), ("1", "7", "3")], min_user=1)
    texts = {5: "Star Wars (1977). Genres: Action, Sci-Fi"}
    ds = _build("t", kept, rep, texts, {5: ["Action", "Sci-Fi"]}, {})
    qs = synth_queries(ds, np.zeros(50, dtype=np.int64), random.Random(0))
    words = {"Star", "Wars", "Action", "Sci-Fi"}
    assert all(set(q.split()) <= words for q in qs)
    assert any(q in ("Action", "Sci-Fi") for q in qs) and any("Wars" in q for q in qs)


def test_cli_overrides() -> None:
    assert _overrides(["epochs=3", 'loss="bce"', "lr=0.1", "device=cpu"]) == {
        "epochs": 3,
        "loss": "bce",
        "lr": 0.1,
        "device": "cpu",
    }
    with pytest.raises(TrainingError, match="KEY=VALUE"):
        _overrides(["epochs"])


def test_head_epochs_default_is_the_validation_cross_fits_best_fewest_on_a_tie(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from training import pipeline

    curve = {0: 0.10, 1: 0.12, 2: 0.13, 3: 0.13, 4: 0.11}
    monkeypatch.setattr(pipeline, "head_epoch_curve", lambda *_a, **_k: dict(curve))
    cfg = {"head_epochs": "validation"}
    got = pipeline.choose_head_epochs(None, None, cfg, lambda _m: None)  # type: ignore[arg-type]
    assert cfg["head_epochs"] == 2 and cfg["head_epochs_chosen_by"] == "validation cross-fit"
    assert got == {str(e): v for e, v in curve.items()}  # the curve lands in the card as before
    fixed = {"head_epochs": 4}
    pipeline.choose_head_epochs(None, None, fixed, lambda _m: None)  # type: ignore[arg-type]
    assert fixed == {"head_epochs": 4, "head_epochs_chosen_by": "fixed"}


@pytest.mark.parametrize("bad", ["ten", -1, True, 2.5])
def test_a_bad_head_epochs_is_one_error_before_any_data_is_read(
    bad: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from training import pipeline

    def no_data(*_a: object, **_k: object) -> None:
        raise AssertionError("the dataset was read before the setting was checked")

    monkeypatch.setattr(pipeline, "load_dataset", no_data)
    with pytest.raises(TrainingError, match=r'head_epochs must be "validation" or a whole number'):
        pipeline.build("movielens", tmp_path / "b", {"head_epochs": bad}, lambda _m: None)
    assert not (tmp_path / "b").exists()


def test_the_card_says_how_the_head_epochs_were_set() -> None:
    from training.card import _head_epochs_words

    chosen = _head_epochs_words({"head_epochs": 3, "head_epochs_chosen_by": "validation cross-fit"})
    assert chosen.startswith("3 epochs, chosen by a 2-fold cross-fit over the validation users")
    assert _head_epochs_words({"head_epochs": 10}).startswith("10 epochs, a fixed setting")
