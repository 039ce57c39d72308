"""Search quality of the ``query`` path against a BM25 baseline over the same item text.

Queries are made from each user's held-out (test) item, three kinds per item:

- ``genre``: one of the item's genres, e.g. ``Thriller``;
- ``title``: one to three words of its title, e.g. ``Usual Suspects``;
- ``genre+title``: a genre and one title word, e.g. ``Crime Suspects``.

Figures per kind: recall@10 of the held-out item (is it among the top 10?) and, for the kinds
with a genre, genre precision@10 (the share of the top 10 that carry the query's genre). Two
settings: ``query only`` (no history: a search box, the whole catalogue ranked) and ``query +
history`` (the served blend, the user's history excluded; BM25 gets the same exclusion but
cannot use the history otherwise).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from training.data import Dataset

__all__ = ["BM25", "SearchQuery", "search_figures", "search_queries", "tokens"]

KINDS = ("genre", "title", "genre+title")
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

# scores [Q, N] for the queries, given each query's user history (None: query only)
Ranker = Callable[[list[str], list[np.ndarray] | None], np.ndarray]


def tokens(text: str) -> list[str]:
    """Lower-case words (hyphenated words kept whole: ``sci-fi``)."""
    return _WORD.findall(text.lower())


class BM25:
    """Okapi BM25 (k1, b) over one document per item."""

    def __init__(self, docs: list[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.vocab: dict[str, int] = {}
        rows: list[Counter[int]] = []
        for d in docs:
            rows.append(Counter(self.vocab.setdefault(t, len(self.vocab)) for t in tokens(d)))
        self.tf = np.zeros((len(docs), len(self.vocab)))
        for i, row in enumerate(rows):
            for t, c in row.items():
                self.tf[i, t] = c
        self.doc_len = self.tf.sum(1)
        df = (self.tf > 0).sum(0)
        self.idf = np.log(1.0 + (len(docs) - df + 0.5) / (df + 0.5))

    def scores(self, queries: list[str]) -> np.ndarray:
        """BM25 score of every document for every query [Q, N] (0 where no term matches)."""
        avg = max(float(self.doc_len.mean()), 1e-9) if len(self.doc_len) else 1.0
        norm = self.k1 * (1.0 - self.b + self.b * self.doc_len / avg)
        weight = self.tf * (self.k1 + 1.0) / (self.tf + norm[:, None])  # [N, V]
        out = np.zeros((len(queries), self.tf.shape[0]))
        for q, text in enumerate(queries):
            terms = [self.vocab[t] for t in tokens(text) if t in self.vocab]
            for t in terms:
                out[q] += self.idf[t] * weight[:, t]
        return out


@dataclass(frozen=True)
class SearchQuery:
    """One synthetic query for a held-out item; ``genre`` = category index or -1."""

    user: int  # row in the split
    item: int  # internal index of the held-out item
    kind: str
    text: str
    genre: int


def _title_words(ds: Dataset, item: int) -> list[str]:
    title = ds.item_text[item].split(". Genres:")[0].split(" (")[0]
    return [w for w in title.replace(",", " ").split() if len(w) > 2] or [title]


def search_queries(ds: Dataset, items: np.ndarray, seed: int) -> list[SearchQuery]:
    """Every kind of query for each held-out item (genre kinds only for items with genres)."""
    rng = random.Random(seed)
    out: list[SearchQuery] = []
    for u, i in enumerate(int(x) for x in items):
        words = _title_words(ds, i)
        genres = ds.item_genres[i]
        title = " ".join(words[: rng.randint(1, min(3, len(words)))])
        out.append(SearchQuery(u, i, "title", title, -1))
        if genres:
            g = rng.choice(genres)
            out.append(SearchQuery(u, i, "genre", ds.categories[g], g))
            g = rng.choice(genres)
            out.append(
                SearchQuery(u, i, "genre+title", f"{ds.categories[g]} {rng.choice(words)}", g)
            )
    return out


def _figures(
    scores: np.ndarray, queries: list[SearchQuery], genre_mh: np.ndarray, k: int
) -> dict[str, dict[str, float]]:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    items = np.array([q.item for q in queries])
    hit = (top == items[:, None]).any(1)
    out: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        sel = np.array([q.kind == kind for q in queries])
        if not sel.any():
            continue
        row = {"queries": float(sel.sum()), f"recall@{k}": float(hit[sel].mean())}
        genres = np.array([q.genre for q in queries])
        if kind != "title":
            g = genres[sel]
            row[f"genre_precision@{k}"] = float(genre_mh[top[sel], g[:, None]].mean())
        out[kind] = row
    return out


def search_figures(
    ds: Dataset,
    items: np.ndarray,
    hist: list[np.ndarray],
    rankers: dict[str, Ranker],
    seed: int,
    k: int = 10,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{"<ranker>, <setting>": {kind: figures}}`` for each ranker, query only and with history."""
    queries = search_queries(ds, items, seed)
    genre_mh = np.zeros((ds.n_items, max(1, len(ds.categories))), dtype=bool)
    for i, g in enumerate(ds.item_genres):
        genre_mh[i, g] = True
    texts = [q.text for q in queries]
    hists = [hist[q.user] for q in queries]
    out = {}
    for name, rank in rankers.items():
        out[f"{name}, query only"] = _figures(rank(texts, None), queries, genre_mh, k)
        s = rank(texts, hists).astype(np.float64, copy=True)
        for r, h in enumerate(hists):
            s[r, h] = -math.inf
        out[f"{name}, query + history"] = _figures(s, queries, genre_mh, k)
    return out
