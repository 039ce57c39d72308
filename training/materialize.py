"""Write user features into Redis and verify the store against the offline data; holdout rows."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import featurestore as fs
from training.data import Dataset, load_dataset
from training.errors import BundleError, StoreError
from training.split import Split, leave_last_out, user_features

__all__ = ["VerifyReport", "holdout_rows", "load_for_bundle", "materialize", "verify_store"]

CHUNK = 500
DATASETS = {"movielens-100k": "movielens", "instacart-sample": "instacart"}


@dataclass
class VerifyReport:
    """Outcome of comparing the store with the offline features."""

    n_users: int
    missing: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    mismatched: list[int] = field(default_factory=list)
    meta_ok: bool = True
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every user matches and the meta hash agrees."""
        return self.meta_ok and not (self.missing or self.stale or self.mismatched)

    def line(self) -> str:
        """One-line summary."""
        return (
            f"verify: {self.n_users} users, missing {len(self.missing)}, stale {len(self.stale)}, "
            f"mismatched {len(self.mismatched)}, meta {'ok' if self.meta_ok else 'MISMATCH'} "
            f"({self.seconds:.2f}s) → {'OK' if self.ok else 'FAILED'}"
        )


def load_for_bundle(bundle: Path) -> tuple[dict[str, Any], Dataset, Split]:
    """Bundle metadata plus the dataset and split it was trained on."""
    try:
        meta = json.loads((bundle / "metadata.json").read_text())
        cfg = meta["config"]
        spec = DATASETS.get(meta["dataset"], meta["dataset"])
    except (OSError, ValueError, KeyError) as exc:
        raise BundleError(f"bundle {bundle}: unreadable metadata.json: {exc}") from exc
    ds = load_dataset(spec, min_user=int(cfg["min_user"]), min_item=int(cfg["min_item"]))
    return meta, ds, leave_last_out(ds, cfg.get("tie_seed"))


def _client(url: str, timeout: float) -> Any:
    import redis

    try:
        return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    except ValueError as exc:
        raise StoreError(f"bad redis URL {url!r}: {exc}") from exc


def materialize(
    url: str, bundle: Path, *, ttl_s: int | None = None, timeout: float = 5.0
) -> dict[str, Any]:
    """Write every user's training-history features and the meta hash; return the meta."""
    import redis

    meta, ds, split = load_for_bundle(bundle)
    feats = user_features(ds, split, int(meta["config"]["max_history"]))
    values = [(f.user_id, fs.encode_user(f)) for f in sorted(feats, key=lambda f: f.user_id)]
    info = {
        "model_version": meta["model_version"],
        "dataset": meta["dataset"],
        "n_users": str(len(values)),
        "materialized_at": f"{time.time():.3f}",
        "digest": fs.digest(v for _, v in values),
    }
    client = _client(url, timeout)
    try:
        for i in range(0, len(values), CHUNK):
            pipe = client.pipeline(transaction=False)
            for uid, v in values[i : i + CHUNK]:
                pipe.set(fs.user_key(uid), v, ex=ttl_s)
            pipe.execute()
        client.hset(fs.META_KEY, mapping=info)
    except redis.RedisError as exc:
        raise StoreError(f"writing features to {url} failed: {exc}") from exc
    finally:
        client.close()
    return info


def verify_store(url: str, bundle: Path, *, timeout: float = 5.0) -> VerifyReport:
    """Compare every user's stored value (and the meta digest) with the offline features."""
    import redis

    t0 = time.perf_counter()
    meta, ds, split = load_for_bundle(bundle)
    feats = sorted(
        user_features(ds, split, int(meta["config"]["max_history"])), key=lambda f: f.user_id
    )
    expected = [fs.encode_user(f) for f in feats]
    rep = VerifyReport(n_users=len(feats))
    client = _client(url, timeout)
    try:
        stored: list[bytes | None] = []
        for i in range(0, len(feats), CHUNK):
            stored += client.mget([fs.user_key(f.user_id) for f in feats[i : i + CHUNK]])
        info = {k.decode(): v.decode() for k, v in client.hgetall(fs.META_KEY).items()}
    except redis.RedisError as exc:
        raise StoreError(f"reading features from {url} failed: {exc}") from exc
    finally:
        client.close()
    for f, want, got in zip(feats, expected, stored, strict=True):
        if got is None:
            rep.missing.append(f.user_id)
        elif got != want:
            try:
                stale = fs.decode_user(got, f.user_id).ts < f.ts
            except StoreError:
                stale = False
            (rep.stale if stale else rep.mismatched).append(f.user_id)
    rep.meta_ok = info.get("digest") == fs.digest(expected) and info.get("model_version") == str(
        meta["model_version"]
    )
    rep.seconds = time.perf_counter() - t0
    return rep


def holdout_rows(
    bundle: Path, *, query_fraction: float = 0.3, seed: int = 11
) -> list[dict[str, Any]]:
    """Held-out (user, last item) pairs; a seeded fraction carries a query naming the target."""
    _meta, ds, split = load_for_bundle(bundle)
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for uid, target in zip(split.user_ids, split.test, strict=True):
        query: str | None = None
        if rng.random() < query_fraction:
            genres = [ds.categories[g] for g in ds.item_genres[int(target)]]
            title = ds.item_text[int(target)].split(". Genres:")[0].split(" (")[0]
            query = rng.choice(genres) if genres and rng.random() < 0.5 else title
        rows.append({"user_id": int(uid), "target_item": int(ds.item_ids[target]), "query": query})
    return rows
