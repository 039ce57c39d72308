"""Small pieces of the pipeline: device choice, training windows, synthetic queries, CLI overrides."""

from __future__ import annotations

import itertools
import random

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
