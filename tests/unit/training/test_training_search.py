"""BM25 over item text, the held-out search queries and their figures (a fake ranker)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.data import _build, clean
from training.search import BM25, search_figures, search_queries, tokens

DOCS = ["Star Wars (1977). Genres: Action, Sci-Fi", "Fargo (1996). Genres: Crime", "Star Trek"]


def test_tokens_keep_hyphenated_words() -> None:
    assert tokens("Star Wars (1977). Genres: Action, Sci-Fi") == [
        "star",
        "wars",
        "1977",
        "genres",
        "action",
        "sci-fi",
    ]


def test_bm25_matches_the_formula() -> None:
    bm = BM25(DOCS, k1=1.2, b=0.75)
    s = bm.scores(["star", "fargo crime", "nothing"])
    lens = np.array([6, 4, 2])
    avg = lens.mean()
    idf_star = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))

    def w(dl: int) -> float:
        return 1 * 2.2 / (1 + 1.2 * (1 - 0.75 + 0.75 * dl / avg))

    assert s[0] == pytest.approx([idf_star * w(6), 0.0, idf_star * w(2)])
    assert s[0, 2] > s[0, 0]  # the shorter document ranks first
    assert s[1].argmax() == 1 and s[1, 0] == s[1, 2] == 0.0
    assert not s[2].any()


def _ds():
    rows = [(str(u), str(i), str(t)) for u in (1, 2) for t, i in enumerate((1, 2, 3, 4))]
    kept, rep = clean(rows, min_user=3)
    texts = {
        1: "Star Wars (1977). Genres: Action, Sci-Fi",
        2: "Fargo (1996). Genres: Crime",
        3: "Alien (1979). Genres: Sci-Fi",
        4: "Heat (1995). Genres: Action, Crime",
    }
    genres = {1: ["Action", "Sci-Fi"], 2: ["Crime"], 3: ["Sci-Fi"], 4: ["Action", "Crime"]}
    return _build("s", kept, rep, texts, genres, {})


def test_queries_name_their_item() -> None:
    ds = _ds()
    qs = search_queries(ds, np.array([0, 3]), seed=0)
    assert [(q.user, q.kind) for q in qs] == [
        (0, "title"),
        (0, "genre"),
        (0, "genre+title"),
        (1, "title"),
        (1, "genre"),
        (1, "genre+title"),
    ]
    assert qs[0].text in ("Star", "Star Wars") and qs[3].text == "Heat"
    assert qs[1].genre in ds.item_genres[0] and qs[1].text == ds.categories[qs[1].genre]
    assert search_queries(ds, np.array([0, 3]), seed=0) == qs


def test_figures_of_a_perfect_and_a_useless_ranker() -> None:
    ds = _ds()
    items, hist = np.array([0, 3]), [np.array([1]), np.array([0, 1, 2])]
    queries = search_queries(ds, items, seed=0)
    target = np.array([q.item for q in queries])

    def perfect(texts: list[str], hists: list[np.ndarray] | None) -> np.ndarray:
        s = np.zeros((len(texts), ds.n_items))
        s[np.arange(len(texts)), target] = 1.0
        return s

    def flat(texts: list[str], hists: list[np.ndarray] | None) -> np.ndarray:
        return np.zeros((len(texts), ds.n_items))

    got = search_figures(ds, items, hist, {"p": perfect, "f": flat}, seed=0, k=1)
    assert set(got) == {
        "p, query only",
        "p, query + history",
        "f, query only",
        "f, query + history",
    }
    assert got["p, query only"]["title"]["recall@1"] == 1.0
    # the top item carries the query's genre (it is the held-out item)
    assert got["p, query only"]["genre"]["genre_precision@1"] == 1.0
    assert "genre_precision@1" not in got["p, query only"]["title"]
    # a flat ranker's top-1 is item 0 (stable order); with history items 0-2 are excluded for
    # user 1, so its held-out item 3 comes first
    assert got["f, query only"]["title"]["recall@1"] == 0.5
    assert got["f, query + history"]["title"]["recall@1"] == 1.0
    assert got["f, query only"]["genre"]["queries"] == 2.0
