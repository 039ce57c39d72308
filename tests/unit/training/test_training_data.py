"""Cleaning on crafted bad rows, the leave-last-out split, and bad-input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data import _build, clean, load_dataset, load_table
from training.errors import DataError
from training.split import leave_last_out, user_features

ROWS = [
    ("1", "10", "100"),
    ("1", "11", "90"),  # out of order for user 1 (kept, sorted)
    ("1", "10", "120"),  # duplicate (user, item) → dropped
    ("1", "", "130"),  # missing item
    ("1", "12", "abc"),  # invalid timestamp
    ("1", "13", "-5"),  # negative timestamp
    ("1", "14", "200"),
    ("1", "15", "200"),  # tie at the last timestamp: item 15 > 14 → 15 is last
    ("2", "10", "1"),
    ("2", "11", "2"),  # user 2 has 2 events < min_user=3 → dropped
]


def test_clean_counts_every_reason() -> None:
    kept, rep = clean(ROWS, min_user=3, min_item=1)
    assert rep.rows_in == 10
    assert rep.missing_or_invalid == 3
    assert rep.duplicates == 1
    assert rep.out_of_order == 1
    assert rep.sparse_users_dropped == 1
    assert rep.rows_dropped_sparse == 2
    assert rep.rows_out == len(kept) == 4
    assert kept == [(1, 11, 90), (1, 10, 100), (1, 14, 200), (1, 15, 200)]


def test_clean_min_counts_are_iterated() -> None:
    pairs = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 9), (4, 3), (4, 9)]
    rows = [(str(u), str(i), str(t)) for t, (u, i) in enumerate(pairs)]
    kept, rep = clean(rows, min_user=2, min_item=2)
    # item 3 is sparse → user 4 drops below 2 → item 9 drops below 2 → user 3 drops
    assert rep.sparse_items_dropped == 2
    assert rep.sparse_users_dropped == 2
    assert {(u, i) for u, i, _ in kept} == {(1, 1), (1, 2), (2, 1), (2, 2)}


def test_clean_empty_result_is_an_error() -> None:
    with pytest.raises(DataError, match="no interactions"):
        clean([("1", "1", "1")], min_user=5)


def _tiny():
    kept, rep = clean(ROWS[:8], min_user=3)
    return _build("tiny", kept, rep, {10: "Ten. Genres: A"}, {10: ["A"], 11: ["B"]}, {1: (30, "F")})


def test_split_has_no_leakage_and_follows_tie_break() -> None:
    ds = _tiny()
    split = leave_last_out(ds)
    ext = ds.item_ids
    assert ext[split.test[0]] == 15  # tie at ts 200 broken by ascending item id
    assert ext[split.valid[0]] == 14
    assert split.test[0] not in split.hist[0]
    assert list(ext[split.hist[0]]) == [11, 10, 14]
    assert list(ext[split.train[0]]) == [11, 10]
    assert split.popularity()[split.test[0]] == 0  # test item never counted


def test_user_features_hold_out_the_test_item() -> None:
    ds = _tiny()
    split = leave_last_out(ds)
    (f,) = user_features(ds, split, max_history=2)
    assert f.history == [10, 14]  # last 2 of the training history, oldest first
    assert f.n == 3 and f.ts == 200 and f.age == 30 and f.gender == "F"
    assert 15 not in f.history
    assert ds.categories[f.top_category] in {"A", "B"}


def test_own_csv_and_wrong_schema(tmp_path: Path) -> None:
    good = tmp_path / "mine.csv"
    lines = ["user_id,item_id,timestamp,title,categories"]
    lines += [f"{u},{i},{u * 10 + i},Item {i},X|Y" for u in (1, 2) for i in range(6)]
    good.write_text("\n".join(lines) + "\n")
    ds = load_dataset(f"csv:{good}")
    assert ds.n_items == 6 and ds.categories == ["X", "Y"]
    assert np.all(np.diff(ds.ts[ds.users == 1]) > 0)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="wrong schema"):
        load_table(bad)
    with pytest.raises(DataError, match="missing"):
        load_dataset(f"csv:{tmp_path / 'nope.csv'}")
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("imdb")
