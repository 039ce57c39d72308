"""Figures that explain a dataset's difficulty: sequence lengths, sparsity, repeats, item text.

``python -m training facts --dataset NAME [--set min_item=5]`` prints them as JSON; the
Instacart analysis in ``docs/model-quality.md`` quotes them.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from training.data import Dataset
from training.split import Split

__all__ = ["dataset_facts"]


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0


def dataset_facts(ds: Dataset, split: Split) -> dict[str, Any]:
    """Lengths, item-count sparsity, test-item popularity, collapsed repeats, text content."""
    lens = np.array([len(h) for h in split.hist])
    pop = split.popularity()
    test_pop = pop[split.test]
    rep = ds.report
    words = [re.sub(r"\d+", "", t.split(". Genres:")[0]).split() for t in ds.item_text]
    generic = {"item"}
    return {
        "users": len(split.user_ids),
        "items": ds.n_items,
        "history_length": {"p10": _pct(lens, 10), "median": _pct(lens, 50), "p90": _pct(lens, 90)},
        "events_per_item_median": _pct(pop, 50),
        "items_seen_at_most_5_times": float((pop <= 5).mean()),
        "test_item_popularity_median": _pct(test_pop, 50),
        "test_items_seen_at_most_5_times": float((test_pop <= 5).mean()),
        "test_items_never_seen": float((test_pop == 0).mean()),
        "repeat_rows_collapsed": rep.duplicates,
        "repeat_share_of_rows": rep.duplicates / max(1, rep.rows_in),
        "users_with_unambiguous_last_event": int(split.unambiguous.sum()),
        "items_with_descriptive_text": float(np.mean([bool(set(w) - generic) for w in words])),
        "items_with_categories": float(np.mean([bool(g) for g in ds.item_genres])),
    }
