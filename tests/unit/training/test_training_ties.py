"""Tie order of same-timestamp events and the unambiguous-user mask of the split."""

from __future__ import annotations

import numpy as np

from training.data import _build, clean
from training.split import leave_last_out, tie_order

# user 1: last second shared by three items; user 2: last event alone; user 3: ties earlier only
ROWS = [
    *[("1", str(i), "10") for i in (1, 2)],
    *[("1", str(i), "20") for i in (3, 4, 5)],
    *[("2", str(i), str(t)) for t, i in enumerate((6, 7, 8, 9))],
    *[("3", str(i), "5") for i in (1, 2, 3)],
    ("3", "9", "6"),
]


def _ds():
    kept, rep = clean(ROWS, min_user=3)
    return _build("ties", kept, rep, {}, {}, {})


def test_default_order_is_item_id_and_the_mask_marks_shared_last_seconds() -> None:
    ds = _ds()
    split = leave_last_out(ds)
    assert np.array_equal(tie_order(ds, None), np.arange(len(ds.users)))
    assert list(split.user_ids) == [1, 2, 3]
    assert list(ds.item_ids[split.test]) == [5, 9, 9]  # highest id of user 1's last second
    assert split.unambiguous.tolist() == [False, True, True]


def test_seeded_order_only_swaps_same_second_events_and_is_reproducible() -> None:
    ds = _ds()
    tests = set()
    for seed in range(40):
        order = tie_order(ds, seed)
        assert np.array_equal(order, tie_order(ds, seed))
        # still sorted by (user, ts): only rows sharing both swap places
        key = list(zip(ds.users[order], ds.ts[order], strict=True))
        assert key == sorted(key) and sorted(order) == list(range(len(ds.users)))
        split = leave_last_out(ds, seed)
        assert split.unambiguous.tolist() == [False, True, True]  # the mask ignores the order
        assert ds.item_ids[split.test[1]] == 9 and ds.item_ids[split.test[2]] == 9
        tests.add(int(ds.item_ids[split.test[0]]))
        h = set(ds.item_ids[split.hist[0]].tolist()) | {int(ds.item_ids[split.test[0]])}
        assert h == {1, 2, 3, 4, 5}  # nothing lost or duplicated
    assert tests == {3, 4, 5}  # every item of the shared last second gets held out sometimes
