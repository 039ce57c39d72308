"""The protocol-agnostic inference core: features → tier → batched model call → result."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving.batcher import Batcher
from serving.errors import (
    BadRequest,
    BundleRefused,
    FeatureStoreError,
    ModelNotReady,
    ModelRetired,
)
from serving.features import FeatureClient, Lookup, UserFeatures
from serving.metrics import ServerMetrics
from serving.model import Model, load_model
from serving.settings import ServerSettings, Switches
from serving.worker import ProcessModel

TIERS = ("none", "cached_features", "popular_in_category", "global_popular", "cold_start")


@dataclass(frozen=True)
class RecRequest:
    """One user's request, already validated by an adapter."""

    user_id: int
    k: int
    query: str | None = None


@dataclass(frozen=True)
class RecResult:
    """Top-k items, their scores, and the fallback tier that produced them."""

    item_ids: list[int]
    scores: list[float]
    tier: str


@dataclass(frozen=True)
class _Job:
    history: list[int]
    query: str | None
    k: int


def _popular_scores(n: int) -> list[float]:
    return [round(1.0 / (1.0 + r), 6) for r in range(n)]


class InferenceCore:
    """Owns the model (hot-swappable), the feature client and the batcher."""

    def __init__(
        self,
        settings: ServerSettings,
        switches: Switches,
        features: FeatureClient,
        metrics: ServerMetrics,
        device: str = "cpu",
    ) -> None:
        self.settings = settings
        self.switches = switches
        self.features = features
        self.metrics = metrics
        self.device = device
        self.model: Model | None = None
        # told (on the loop) when a model worker process dies on its own; serve() fails fast
        self.on_model_lost: Callable[[str], None] | None = None
        self._reload_lock = threading.Lock()
        self.batcher: Batcher[_Job, tuple[list[int], list[float]]] = Batcher(
            self._run_batch,
            max_batch_size=settings.max_batch_size,
            max_queue_delay_s=settings.max_queue_delay_ms / 1000,
            capacity=settings.queue_capacity,
            switches=switches,
            metrics=metrics,
        )

    @property
    def ready(self) -> bool:
        """Bundle loaded, verified and warmed up (never depends on the feature store)."""
        return self.model is not None

    @property
    def model_version(self) -> str:
        """Version of the model serving now, or '' before the first load."""
        return "" if self.model is None else self.model.model_version

    def load(self, path: Path) -> Model:
        """Load, verify and warm up a bundle (blocking): in a model worker process of its own
        (serving.worker) unless the server runs with `--model-in-process`."""
        verify = self.switches["checksum"]
        try:
            if self.settings.model_process:
                return ProcessModel.load(
                    path, device=self.device, verify=verify, threads=self.settings.threads
                )
            return load_model(path, device=self.device, verify=verify)
        except OSError as exc:  # a path the OS refuses to look at (name too long, no access)
            raise BundleRefused(f"bundle {str(path)[:200]!r}: {exc.strerror or exc}") from exc

    def set_model(self, model: Model) -> None:
        """Swap in an already loaded and warmed-up model (on the loop); a replaced model
        worker is stopped once its batch in flight is answered."""
        old, self.model = self.model, model
        self.metrics.set_model(model.model_version)
        if isinstance(model, ProcessModel) and self.on_model_lost is not None:
            model.watch(self.on_model_lost)
        if isinstance(old, ProcessModel) and old is not model:
            old.unwatch()
            threading.Thread(target=old.close, name="cr-retire-model", daemon=True).start()

    def close(self) -> None:
        """Stop the model worker, if any (blocking; on the loop, at shutdown)."""
        model, self.model = self.model, None
        if isinstance(model, ProcessModel):
            model.unwatch()
            model.close()

    async def reload(self, path: Path) -> str:
        """Load, verify and warm up a bundle off the loop; swap only if every step passed."""
        loop = asyncio.get_running_loop()

        def load() -> Model:
            with self._reload_lock:
                return self.load(path)

        try:
            model = await loop.run_in_executor(None, load)
        except BundleRefused:
            self.metrics.reloads.labels(result="refused").inc()
            raise
        self.set_model(model)
        self.metrics.reloads.labels(result="loaded").inc()
        return model.model_version

    def _run_batch(self, jobs: Sequence[_Job]) -> list[tuple[list[int], list[float]]]:
        model = self.model
        if model is None:
            raise ModelNotReady("no model loaded")
        k = max(j.k for j in jobs)
        histories, queries = [j.history for j in jobs], [j.query for j in jobs]
        try:
            ids, scores = model.recommend(histories, queries, k)
        except ModelRetired:  # hot-swapped as this batch started: the new model answers it
            model = self.model
            if model is None:
                raise
            ids, scores = model.recommend(histories, queries, k)
        return [
            (ids[i, : j.k].astype(np.int64).tolist(), scores[i, : j.k].astype(float).tolist())
            for i, j in enumerate(jobs)
        ]

    def validate(self, req: RecRequest) -> None:
        """Raise BadRequest for an unknown user id or k out of range."""
        if req.user_id < 0:
            raise BadRequest(f"unknown user_id {req.user_id}: user ids are >= 0")
        if not 1 <= req.k <= self.settings.max_k:
            raise BadRequest(f"k={req.k} out of range: 1..{self.settings.max_k}")

    async def recommend_many(self, reqs: Sequence[RecRequest], deadline: float) -> list[RecResult]:
        """Answer each request (concurrently, so they share forward passes)."""
        if self.model is None:
            raise ModelNotReady("model not ready: bundle not loaded or warm-up pending")
        for req in reqs:
            self.validate(req)
        cap = self.batcher.capacity
        if self.switches["shedding"] and len(reqs) > cap:  # would be shed however idle we are
            raise BadRequest(f"{len(reqs)} rows in one request: the server holds at most {cap}")
        if len(reqs) == 1:  # the usual case: no task and gather for one row
            results = [await self._one(reqs[0], deadline)]
        else:
            results = list(await asyncio.gather(*(self._one(r, deadline) for r in reqs)))
        for res in results:
            self.metrics.tier(res.tier)
        return results

    async def _one(self, req: RecRequest, deadline: float) -> RecResult:
        with self.batcher.admit():
            with self.batcher.incoming():
                found = await self.features.lookup(req.user_id)
            return await self._answer(req, found, deadline)

    async def _answer(self, req: RecRequest, found: Lookup, deadline: float) -> RecResult:
        model = self.model
        assert model is not None
        if found.source == "failed" and not self.switches["fallback"]:
            raise FeatureStoreError(f"feature store failed and fallback is off: {found.error}")
        feats, tier = self._tier(found)
        history = feats.history[-model.max_history :] if feats else []
        if tier in ("none", "cached_features") or (tier == "cold_start" and req.query):
            ids, scores = await self.batcher.submit(_Job(history, req.query, req.k), deadline)
            return RecResult(ids, scores, tier)
        category = feats.category if feats else None
        if category is None and req.query:
            category = self._category_named(model, req.query)
        if category is not None and category in model.popular_by_category:
            idx = model.popular_by_category[category][: req.k]
            tier = "popular_in_category" if tier != "cold_start" else tier
        else:
            idx = model.popular[: req.k]
            tier = "global_popular" if tier != "cold_start" else tier
        ids_ext = model.item_ids[np.asarray(idx, dtype=np.int64)].astype(np.int64).tolist()
        return RecResult(ids_ext, _popular_scores(len(ids_ext)), tier)

    @staticmethod
    def _tier(found: Lookup) -> tuple[UserFeatures | None, str]:
        feats = found.features
        if found.source == "absent":
            return None, "cold_start"
        if feats is None:
            return None, "global_popular"
        if not feats.history:
            return feats, "popular_in_category"
        return feats, "none" if found.source == "fresh" else "cached_features"

    @staticmethod
    def _category_named(model: Model, query: str) -> int | None:
        q = query.casefold()
        for i, name in enumerate(model.categories):
            if name and name.casefold() in q:
                return i
        return None
