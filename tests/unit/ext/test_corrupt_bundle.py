"""The bad-model push corrupts weights so that only the checksum can refuse the bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chaos_rec.actions.data import corrupt_copy
from training.bundle import load_bundle
from training.errors import BundleError

REFERENCE = Path(__file__).resolve().parents[3] / "bundles" / "reference"


def test_corrupt_copy_is_refused_by_checksum_but_loads_without_it(tmp_path: Path) -> None:
    bad = corrupt_copy(REFERENCE, tmp_path / "bad")
    with pytest.raises(BundleError):
        load_bundle(bad, verify=True)
    # with the checksum switched off the corrupt weights load and warm up ...
    model = load_bundle(bad, verify=False)
    model.warmup()
    good = load_bundle(REFERENCE, verify=True)
    histories = [[1, 50, 100, 181, 258], [7, 9, 11], [300, 301]]
    good_ids, _ = good.recommend(histories, [None] * 3, 10)
    bad_ids, bad_scores = model.recommend(histories, [None] * 3, 10)
    # ... and answer garbage: the top-10 lists share (almost) nothing with the real model's
    overlap = np.mean([len(set(g) & set(b)) / 10 for g, b in zip(good_ids, bad_ids, strict=True)])
    assert overlap < 0.5 or not np.isfinite(bad_scores).all()
