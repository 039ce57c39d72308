"""Chronological leave-last-out split and user/item features derived from it.

Per user, events are ordered by (ts, external item id) — the tie-break rule for the 415
MovieLens users with several events at their last timestamp — or, with ``tie_seed``, same-ts
events are put in a seeded random order instead. The last event is the test target, the one
before it the validation target; ``unambiguous`` marks the users whose test event has a
timestamp of its own (no tie rule decides which item is held out). ``hist`` (everything but the test item) is
what the baselines fit on and what the feature store serves; the sequence model trains on
``train`` (everything but the last two) and uses validation for early stopping and the head.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from training.data import Dataset
from training.featurestore import UserFeatures

__all__ = ["Split", "leave_last_out", "tie_order", "user_features"]


@dataclass
class Split:
    """Leave-last-out split; item values are internal indices."""

    user_ids: np.ndarray  # external user ids, ascending
    hist: list[np.ndarray]  # all but the last event (oldest first)
    hist_ts: np.ndarray  # ts of each user's last history event
    valid: np.ndarray  # second-to-last item per user
    test: np.ndarray  # last item per user
    n_items: int
    unambiguous: np.ndarray  # bool per user: the test event's ts is later than every other

    @property
    def train(self) -> list[np.ndarray]:
        """All but the last two events per user."""
        return [h[:-1] for h in self.hist]

    def popularity(self) -> np.ndarray:
        """Interaction counts per item over ``hist`` (test items never counted)."""
        return np.bincount(np.concatenate(self.hist), minlength=self.n_items).astype(np.float64)


def tie_order(ds: Dataset, seed: int | None) -> np.ndarray:
    """Row order of ``ds``: as cleaned (ts, then item id) or, with a seed, same-ts rows shuffled.

    The rows stay sorted by (user, ts); only rows sharing a user and a ts swap places, by a
    draw from ``numpy.random.default_rng(seed)``.
    """
    if seed is None:
        return np.arange(len(ds.users))
    draw = np.random.default_rng(seed).random(len(ds.users))
    return np.lexsort((draw, ds.ts, ds.users))


def leave_last_out(ds: Dataset, tie_seed: int | None = None) -> Split:
    """Split a cleaned dataset (rows sorted by user, ts, item id); see :func:`tie_order`."""
    order = tie_order(ds, tie_seed)
    users, items, ts = ds.users[order], ds.items[order], ds.ts[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(users)]])
    keep = [(s, e) for s, e in zip(starts, ends, strict=True) if e - s >= 3]
    return Split(
        user_ids=np.array([users[s] for s, _ in keep], dtype=np.int64),
        hist=[items[s : e - 1].copy() for s, e in keep],
        hist_ts=np.array([ts[e - 2] for _, e in keep], dtype=np.int64),
        valid=np.array([items[e - 2] for _, e in keep], dtype=np.int64),
        test=np.array([items[e - 1] for _, e in keep], dtype=np.int64),
        n_items=ds.n_items,
        unambiguous=np.array([ts[e - 1] > ts[e - 2] for _, e in keep], dtype=bool),
    )


def user_features(ds: Dataset, split: Split, max_history: int) -> list[UserFeatures]:
    """Online features per user from the training history (the test item is held out)."""
    out: list[UserFeatures] = []
    for uid, h, ts in zip(split.user_ids, split.hist, split.hist_ts, strict=True):
        cats = Counter(int(c) for c in ds.item_category[h] if c >= 0)
        top = min(cats, key=lambda c: (-cats[c], c)) if cats else -1
        age, gender = ds.demographics.get(int(uid), (None, None))
        out.append(
            UserFeatures(
                user_id=int(uid),
                history=[int(x) for x in ds.item_ids[h[-max_history:]]],
                top_category=top,
                ts=int(ts),
                n=len(h),
                age=age,
                gender=gender,
            )
        )
    return out
