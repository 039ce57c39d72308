"""Feature-store client: latency budget, one hedged retry, circuit breaker, last-known cache."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from serving.breaker import CircuitBreaker
from serving.errors import FeatureStoreError
from serving.feature_sources import FeatureSource
from serving.metrics import ServerMetrics
from serving.settings import Switches


@dataclass(frozen=True)
class UserFeatures:
    """What serving uses of a user's features."""

    history: list[int]
    category: int | None


@dataclass(frozen=True)
class Lookup:
    """Result of one lookup: `fresh`, `cached` (Redis failed or lost it), `absent` or `failed`."""

    source: str
    features: UserFeatures | None
    error: str | None = None


class LastKnownCache:
    """Bounded LRU of the last features seen per user (stale reads allowed)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[int, UserFeatures] = OrderedDict()

    def get(self, user_id: int) -> UserFeatures | None:
        """Last-known features or None."""
        found = self._data.get(user_id)
        if found is not None:
            self._data.move_to_end(user_id)
        return found

    def put(self, user_id: int, features: UserFeatures) -> None:
        """Remember features, evicting the least recently used."""
        self._data[user_id] = features
        self._data.move_to_end(user_id)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class FeatureClient:
    """The one way the server reads user features; never lets a Redis failure escape as-is."""

    def __init__(
        self,
        source: FeatureSource,
        *,
        key: Callable[[int], str],
        decode: Callable[[bytes], UserFeatures],
        switches: Switches,
        budget_s: float,
        breaker: CircuitBreaker,
        cache: LastKnownCache,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.source = source
        self.key = key
        self.decode = decode
        self.switches = switches
        self.budget_s = budget_s
        self.breaker = breaker
        self.cache = cache
        self.metrics = metrics

    async def lookup(self, user_id: int) -> Lookup:
        """Fresh features, else last-known ones, else `absent`/`failed` (caller picks the tier)."""
        use_breaker = self.switches["breaker"]
        if use_breaker and not self.breaker.allow():
            self._observe_breaker()
            return self._degraded(user_id, "circuit breaker open")
        started = time.perf_counter()
        ok = False
        try:
            raw = await self._fetch(self.key(user_id))
            ok = True
        except FeatureStoreError as exc:
            self._count_error(exc)
            return self._degraded(user_id, str(exc))
        finally:
            if self.metrics is not None:
                self.metrics.feature_latency.observe(time.perf_counter() - started)
            if use_breaker:
                (self.breaker.success if ok else self.breaker.failure)()
            self._observe_breaker()
        if raw is None:
            # Redis answered but lost/never had the user: last-known features still help.
            cached = self.cache.get(user_id) if self.switches["cache"] else None
            return Lookup("cached", cached) if cached else Lookup("absent", None)
        try:
            features = self.decode(raw)
        except (FeatureStoreError, ValueError, KeyError, TypeError) as exc:
            self._count_error(exc)
            return self._degraded(user_id, f"undecodable features for user {user_id}: {exc}")
        if self.switches["cache"]:
            self.cache.put(user_id, features)
        return Lookup("fresh", features)

    def _degraded(self, user_id: int, why: str) -> Lookup:
        cached = self.cache.get(user_id) if self.switches["cache"] else None
        if cached is not None:
            return Lookup("cached", cached, why)
        return Lookup("failed", None, why)

    def _count_error(self, exc: Exception) -> None:
        if self.metrics is not None:
            kind = "timeout" if "imeout" in str(exc) or "imeout" in type(exc).__name__ else "error"
            self.metrics.feature_errors.labels(kind=kind).inc()

    def _observe_breaker(self) -> None:
        if self.metrics is not None:
            # switched off, no breaker short-circuits anything: never a stale "open"
            self.metrics.set_breaker(self.breaker.state if self.switches["breaker"] else "closed")

    async def _fetch(self, key: str) -> bytes | None:
        """One call, plus one hedged call if the first is slow or fails; all within the budget."""
        timeouts = self.switches["timeouts"]
        budget = self.budget_s if timeouts else None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget if budget is not None else None
        first = asyncio.ensure_future(self.source.get(key, timeout_s=budget))
        pending: set[asyncio.Future[bytes | None]] = {first}
        last_error: BaseException | None = None
        hedged = False
        try:
            while pending:
                wait_s: float | None
                if not hedged:
                    wait_s = self.budget_s / 2
                elif deadline is not None:
                    wait_s = deadline - loop.time()
                    if wait_s <= 0:
                        break
                else:
                    wait_s = None
                done, pending = await asyncio.wait(
                    pending, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    if task.exception() is None:
                        return task.result()
                    last_error = task.exception()
                if not hedged:
                    hedged = True
                    remaining = None if deadline is None else max(0.001, deadline - loop.time())
                    pending.add(asyncio.ensure_future(self.source.get(key, timeout_s=remaining)))
                elif not done:
                    break
        finally:
            for task in pending:
                task.cancel()
        if last_error is not None and not pending:
            raise FeatureStoreError(str(last_error)) from last_error
        raise FeatureStoreError(f"feature store timeout after {self.budget_s * 1000:.0f} ms")
