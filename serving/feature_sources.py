"""Feature-store sources: raw key/value access to Redis, and the protocol fakes implement.

``RespSource`` speaks RESP2 itself over asyncio (one command per pooled connection, replies
parsed as they arrive) for plain ``redis://`` URLs; ``RedisSource`` wraps ``redis.asyncio`` for
the rest (``rediss://``, unix sockets). Every failure becomes a ``FeatureStoreError``; the
resilience around them (budget, hedge, breaker, cache) is ``serving.features``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol
from urllib.parse import unquote, urlsplit

from serving.errors import FeatureStoreError

__all__ = ["FeatureSource", "RedisSource", "RespSource", "redis_source"]


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
