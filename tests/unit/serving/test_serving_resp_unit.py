"""RespSource (the server's Redis GET client) against a scripted RESP server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from serving.errors import FeatureStoreError
from serving.feature_sources import RedisSource, RespSource, _parse_reply, redis_source

Behaviour = Callable[[list[bytes]], bytes | None]  # command → raw reply (None = never answer)


class FakeRedis:
    """Parses RESP arrays, answers with `behaviour`, records commands and connections."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.commands: list[list[bytes]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readline()
                if not head:
                    return
                n = int(head[1:])
                args = []
                for _ in range(n):
                    size = int((await reader.readline())[1:])
                    args.append((await reader.readexactly(size + 2))[:-2])
                self.commands.append(args)
                reply = self.behaviour(args)
                if reply is None:
                    await asyncio.sleep(3600)
                elif reply == b"CLOSE":
                    writer.close()
                    return
                else:
                    for i in range(0, len(reply), 3):  # in pieces: replies may arrive split
                        writer.write(reply[i : i + 3])
                        await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:  # also when asyncio.run cancels a handler parked on "hang": no socket left open
            writer.close()

    async def url(self, path: str = "/0", auth: str = "") -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://{auth}127.0.0.1:{port}{path}"

    def close(self) -> None:
        """Stops listening (not wait_closed: from 3.12 it waits on handlers parked on "hang")."""
        assert self.server is not None
        self.server.close()


def store(args: list[bytes]) -> bytes | None:
    if args[0] == b"GET":
        return {b"hit": b"$5\r\nhello\r\n", b"empty": b"$0\r\n\r\n", b"hang": None,
                b"close": b"CLOSE", b"err": b"-WRONGTYPE bad\r\n"}.get(args[1], b"$-1\r\n")  # fmt: skip
    return b"+OK\r\n"


def test_get_hit_miss_empty_and_connection_reuse() -> None:
    asyncio.run(_hit_miss_empty())


async def _hit_miss_empty() -> None:
    fake = FakeRedis(store)
    src = RespSource(await fake.url())
    assert await src.get("hit", timeout_s=1.0) == b"hello"
    assert await src.get("nope", timeout_s=1.0) is None
    assert await src.get("empty", timeout_s=None) == b""
    assert fake.connections == 1  # one idle connection reused
    assert fake.commands == [[b"GET", b"hit"], [b"GET", b"nope"], [b"GET", b"empty"]]
    await src.close()
    fake.close()


def test_timeout_error_and_close_become_feature_store_errors() -> None:
    asyncio.run(_errors())


async def _errors() -> None:
    fake = FakeRedis(store)
    src = RespSource(await fake.url())
    with pytest.raises(FeatureStoreError, match="Timeout"):
        await src.get("hang", timeout_s=0.05)
    with pytest.raises(FeatureStoreError, match="WRONGTYPE"):
        await src.get("err", timeout_s=1.0)
    with pytest.raises(FeatureStoreError, match="closed"):
        await src.get("close", timeout_s=1.0)
    assert await src.get("hit", timeout_s=1.0) == b"hello"  # a fresh connection after failures
    assert fake.connections == 4  # timed-out, errored and closed connections are never reused
    await src.close()
    fake.close()


def test_a_cancelled_get_drops_its_connection() -> None:
    asyncio.run(_cancelled())


async def _cancelled() -> None:
    fake = FakeRedis(store)
    src = RespSource(await fake.url())
    task = asyncio.ensure_future(src.get("hang", timeout_s=None))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await src.get("hit", timeout_s=1.0) == b"hello"
    assert fake.connections == 2
    await src.close()
    fake.close()


def test_refused_connection_and_pool_limit() -> None:
    asyncio.run(_refused_and_limit())


async def _refused_and_limit() -> None:
    with pytest.raises(FeatureStoreError):
        await RespSource("redis://127.0.0.1:1/0").get("k", timeout_s=0.5)
    f = FakeRedis(store)
    src = RespSource(await f.url(), max_connections=1)
    first = asyncio.ensure_future(src.get("hang", timeout_s=None))
    await asyncio.sleep(0.05)
    with pytest.raises(FeatureStoreError, match="Too many connections"):
        await src.get("hit", timeout_s=0.5)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await src.close()
    f.close()


def test_auth_and_select_on_connect() -> None:
    asyncio.run(_auth_select())


async def _auth_select() -> None:
    f = FakeRedis(store)
    src = RespSource(await f.url(path="/3", auth="user:p%40ss@"))
    assert await src.get("hit", timeout_s=1.0) == b"hello"
    assert f.commands[:2] == [[b"AUTH", b"user", b"p@ss"], [b"SELECT", b"3"]]
    await src.close()
    f.close()


def test_parser_and_factory() -> None:
    assert _parse_reply(bytearray(b"$3\r\nab")) is not None
    assert _parse_reply(bytearray(b"$3\r\nabc\r\n")) == b"abc"
    assert _parse_reply(bytearray(b"$-1\r\n")) is None
    with pytest.raises(ValueError):
        _parse_reply(bytearray(b"?x\r\n"))
    assert isinstance(redis_source("redis://127.0.0.1:6379/0"), RespSource)
    assert isinstance(redis_source("unix:///tmp/redis.sock"), RedisSource)
