"""Bodies nested beyond what a JSON decoder takes are a 400 (as Go's ``exceeded max depth``), not a 500.

Found by hand while writing docs/bad-input.md; the app is the real aiohttp API over an empty
collection (no proxy is started).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.errors import ConfigError
from chaos_rec.toxiproxy.allowlist import Allowlist
from chaos_rec.toxiproxy.api import build_app
from chaos_rec.toxiproxy.collection import ProxyCollection
from chaos_rec.toxiproxy.server import load_config_file

DEEP = b"[" * 100_000


@pytest.mark.parametrize("path", ["/proxies", "/populate"])
def test_a_body_nested_too_deeply_is_400_and_creates_nothing(path: str) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    coll = ProxyCollection(Allowlist.build())

    async def go() -> tuple[int, Any, Any]:
        async with TestClient(TestServer(build_app(coll))) as client:
            resp = await client.post(path, data=DEEP)
            index = await (await client.get("/proxies")).json()
            return resp.status, await resp.json(), index

    status, body, index = asyncio.run(go())
    assert status == 400 and body["error"] == "bad request body: exceeded max depth"
    assert index == {}


def test_a_config_file_nested_too_deeply_is_one_config_error_line(tmp_path: Path) -> None:
    path = tmp_path / "proxies.json"
    path.write_bytes(DEEP)
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert str(info.value).startswith(f"toxiproxy config {path} is not valid JSON: ")
    assert "\n" not in str(info.value)
