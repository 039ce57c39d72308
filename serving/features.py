"""Feature-store client: latency budget, one hedged retry, circuit breaker, last-known cache."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

from serving.breaker import CircuitBreaker
from serving.errors import FeatureStoreError
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


class FeatureSource(Protocol):
    """Raw key/value access to the feature store (Redis in production, fakes in unit tests)."""

    async def get(self, key: str, *, timeout_s: float | None) -> bytes | None:
        """Value of `key` or None; raise FeatureStoreError on any failure."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class RedisSource:
    """redis.asyncio access with explicit socket timeouts; errors become FeatureStoreError."""

    def __init__(self, url: str, *, max_connections: int = 256) -> None:
        self.url = url
        self._max = max_connections
        self._clients: dict[float | None, object] = {}

    def _client(self, timeout_s: float | None) -> object:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        if timeout_s not in self._clients:
            self._clients[timeout_s] = aioredis.Redis.from_url(
                self.url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                max_connections=self._max,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                health_check_interval=0,
            )
        return self._clients[timeout_s]

    async def get(self, key: str, *, timeout_s: float | None) -> bytes | None:
        """GET key; the socket timeout is the budget (None = wait as long as the link hangs)."""
        import redis.exceptions

        client = self._client(timeout_s)
        try:
            value = await client.get(key)  # type: ignore[attr-defined]
        except (redis.exceptions.RedisError, OSError) as exc:
            raise FeatureStoreError(f"redis GET failed: {type(exc).__name__}: {exc}") from exc
        return value if value is None else bytes(value)

    async def close(self) -> None:
        """Close every pool."""
        for client in self._clients.values():
            with contextlib.suppress(Exception):  # closing a broken link must not mask shutdown
                await client.aclose()  # type: ignore[attr-defined]
        self._clients.clear()


class _RespConnection(asyncio.Protocol):
    """One Redis connection, one command at a time; replies parsed in data_received (RESP2)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buf = bytearray()
        self._waiter: asyncio.Future[bytes | None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("Connection closed by server."))

    def data_received(self, data: bytes) -> None:
        self._buf += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            reply = _parse_reply(self._buf)
        except ValueError as exc:  # a protocol error: this connection is unusable
            self._fail(exc)
            self.abort()
            return
        if reply is not _INCOMPLETE:
            self._waiter = None
            if isinstance(reply, Exception):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)  # type: ignore[arg-type]

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def abort(self) -> None:
        """Drop the connection now (after a timeout, a cancel, or a protocol error)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def call(self, command: bytes, timeout_s: float | None) -> bytes | None:
        """Send one packed command and wait for its reply; `timeout_s` None waits forever."""
        assert self.transport is not None and self._waiter is None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bytes | None] = loop.create_future()
        self._waiter = waiter
        self._buf.clear()
        self.transport.write(command)
        timer = (
            None
            if timeout_s is None
            else loop.call_later(timeout_s, self._fail, TimeoutError("Timeout reading from socket"))
        )
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()


_INCOMPLETE = object()


def _parse_reply(buf: bytearray) -> object:
    """One RESP2 reply from the start of `buf`: bytes, None, an Exception, or _INCOMPLETE."""
    end = buf.find(b"\r\n")
    if end < 0:
        return _INCOMPLETE
    kind, line = buf[:1], bytes(buf[1:end])
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None
        if len(buf) < end + 2 + n + 2:
            return _INCOMPLETE
        return bytes(buf[end + 2 : end + 2 + n])
    if kind == b"+":
        return line
    if kind == b"-":
        return ConnectionError(f"redis error: {line.decode(errors='replace')}")
    raise ValueError(f"unexpected redis reply {bytes(buf[:40])!r}")


def _pack(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespSource:
    """GET over a pool of plain asyncio connections to Redis (RESP2), explicit timeouts.

    The server only ever GETs one key per request, so this speaks exactly that (plus AUTH and
    SELECT on connect) instead of going through redis.asyncio's generic client, whose pools,
    retry wrapper and RESP3 parser cost more loop CPU per lookup than the rest of the request.
    Same contract as RedisSource: connect and read each have `timeout_s` (None = wait as long
    as the link hangs), no retries, a connection that timed out, failed or was cancelled is
    dropped (never reused), and every failure is a FeatureStoreError.
    """

    def __init__(self, url: str, *, max_connections: int = 256) -> None:
        parts = urlsplit(url)
        if parts.scheme != "redis" or not parts.hostname:
            raise ValueError(f"RespSource needs a redis://host[:port][/db] url, got {url!r}")
        self.url = url
        self._host = parts.hostname
        self._port = parts.port or 6379
        db = parts.path.strip("/")
        self._setup: list[bytes] = []
        if parts.password is not None:
            user = unquote(parts.username or "").encode()
            pw = unquote(parts.password).encode()
            self._setup.append(_pack(b"AUTH", user, pw) if user else _pack(b"AUTH", pw))
        if db and db != "0":
            self._setup.append(_pack(b"SELECT", db.encode()))
        self._max = max_connections
        self._idle: list[_RespConnection] = []
        self._open = 0

    async def _connect(self, timeout_s: float | None) -> _RespConnection:
        if self._open >= self._max:
            raise ConnectionError("Too many connections")
        loop = asyncio.get_running_loop()
        self._open += 1
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_RespConnection, self._host, self._port), timeout_s
            )
        except BaseException:
            self._open -= 1
            raise
        try:
            for command in self._setup:
                await conn.call(command, timeout_s)
        except BaseException:
            self._drop(conn)
            raise
        return conn

    def _drop(self, conn: _RespConnection) -> None:
        conn.abort()
        self._open -= 1

    async def get(self, key: str, *, timeout_s: float | None) -> bytes | None:
        """GET key; the timeout is the budget (None = wait as long as the link hangs)."""
        conn: _RespConnection | None = None
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                break
            self._open -= 1
            conn = None
        try:
            if conn is None:
                conn = await self._connect(timeout_s)
            value = await conn.call(_pack(b"GET", key.encode()), timeout_s)
        except (OSError, TimeoutError, ValueError) as exc:
            if conn is not None:
                self._drop(conn)
            raise FeatureStoreError(f"redis GET failed: {type(exc).__name__}: {exc}") from exc
        except BaseException:  # cancelled (a hedge lost): the reply may still come, drop it
            if conn is not None:
                self._drop(conn)
            raise
        self._idle.append(conn)
        return value

    async def close(self) -> None:
        """Close every connection."""
        for conn in self._idle:
            conn.abort()
        self._idle.clear()
        self._open = 0


def redis_source(url: str, *, max_connections: int = 256) -> FeatureSource:
    """RespSource for plain redis:// urls, else the redis.asyncio client (rediss, unix)."""
    if urlsplit(url).scheme == "redis":
        return RespSource(url, max_connections=max_connections)
    return RedisSource(url, max_connections=max_connections)


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
