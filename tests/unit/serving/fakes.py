"""Small fakes for serving unit tests (never used outside tests/unit)."""

from __future__ import annotations

import asyncio
import json

import numpy as np

from serving.errors import FeatureStoreError
from serving.features import UserFeatures


class FakeModel:
    """Deterministic model: scores items by id; records each batch size."""

    def __init__(self, n_items: int = 50, version: str = "fake-1") -> None:
        self.model_version = version
        self.item_ids = np.arange(1000, 1000 + n_items, dtype=np.int64)
        self.item_category = np.arange(n_items) % 5
        self.categories = ["action", "comedy", "drama", "horror", "romance"]
        self.popular = np.arange(n_items)[::-1].copy()
        self.popular_by_category = {c: np.where(self.item_category == c)[0] for c in range(5)}
        self.max_history = 20
        self.batches: list[int] = []

    def recommend(self, histories, queries, k, exclude_seen=True):  # type: ignore[no-untyped-def]
        self.batches.append(len(histories))
        ids = np.stack([self.item_ids[:k] + len(h) for h in histories])
        scores = np.tile(np.linspace(1, 0, k, dtype=np.float32), (len(histories), 1))
        return ids.astype(np.int64), scores

    def warmup(self) -> None:
        self.recommend([[1]], [None], 1)


class FakeSource:
    """In-memory feature source with switchable failure, delay and counters."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.fail = False
        self.delay = 0.0
        self.calls = 0
        self.timeouts_seen: list[float | None] = []

    def put(self, user_id: int, history: list[int], category: int = 1) -> None:
        self.data[f"cr:v1:user:{user_id}"] = json.dumps({"h": history, "c": category}).encode()

    async def get(self, key: str, *, timeout_s: float | None) -> bytes | None:
        self.calls += 1
        self.timeouts_seen.append(timeout_s)
        if self.delay:
            if timeout_s is not None and self.delay > timeout_s:
                await asyncio.sleep(timeout_s)
                raise FeatureStoreError("Timeout reading from socket")
            await asyncio.sleep(self.delay)
        if self.fail:
            raise FeatureStoreError("Connection refused")
        return self.data.get(key)

    async def close(self) -> None:
        return None


def decode(raw: bytes) -> UserFeatures:
    v = json.loads(raw)
    return UserFeatures(list(v["h"]), v["c"] if v["c"] >= 0 else None)


def key(user_id: int) -> str:
    return f"cr:v1:user:{user_id}"
