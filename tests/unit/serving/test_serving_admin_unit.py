"""The admin API of the model server and the gateway refuses bad input with a 4xx, changing nothing.

The apps are the real aiohttp applications (routes, token check, body parsing); only the model
server's inference core is a stand-in that records reloads, so no model is loaded.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from serving import rest
from serving.gateway.server import Gateway
from serving.settings import SERVER_MECHANISMS, GatewaySettings, Switches

TOKEN = "tok"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class _Core:
    """The part of InferenceCore the admin routes use; records every reload it is asked for."""

    def __init__(self) -> None:
        self.switches = Switches(SERVER_MECHANISMS)
        self.reloads: list[Path] = []

    async def reload(self, path: Path) -> str:
        self.reloads.append(path)
        return "v2"


def _model_server(core: _Core, token: str | None = TOKEN) -> web.Application:
    return rest.RestAdapter(core, "replica-0", token).app(1 << 16)  # type: ignore[arg-type]


def _gateway(token: str | None = TOKEN) -> Gateway:
    return Gateway(GatewaySettings(port=1, replicas={"r0": "127.0.0.1:1"}, admin_token=token))


def _call(
    app: web.Application, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    async def go() -> tuple[int, dict[str, Any]]:
        async with TestClient(TestServer(app)) as client:
            resp = await client.request(method, path, **kwargs)
            body: dict[str, Any] = await resp.json(content_type=None)
            return resp.status, body

    return asyncio.run(go())


@pytest.mark.parametrize("server", ["model_server", "gateway"])
@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer nope"}, 401), ({"Authorization": TOKEN}, 401)],
)
def test_admin_without_the_token_is_401_and_changes_nothing(
    server: str, headers: dict[str, str], status: int
) -> None:
    core = _Core()
    gateway = _gateway()
    app = _model_server(core) if server == "model_server" else gateway.app()
    switches = core.switches if server == "model_server" else gateway.switches
    before = switches.as_dict()
    code, body = _call(app, "POST", "/admin/resilience", json={"cache": False}, headers=headers)
    assert (code, body) == (status, {"error": "missing or wrong admin token"})
    assert switches.as_dict() == before


def test_admin_of_a_server_started_without_a_token_is_403() -> None:
    code, body = _call(_model_server(_Core(), token=None), "GET", "/admin/resilience")
    assert (code, body) == (403, {"error": "admin API disabled: start with --admin-token"})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'{"cache": false, "warp": false}', "unknown mechanism 'warp'"),
        (b'{"cache": false, "breaker": "off"}', "mechanism 'breaker' must be true or false"),
    ],
)
def test_a_bad_switch_change_is_400_and_applies_no_part_of_it(payload: bytes, message: str) -> None:
    core = _Core()
    code, body = _call(_model_server(core), "POST", "/admin/resilience", data=payload, headers=AUTH)
    assert code == 400 and message in body["error"] and "\n" not in body["error"]
    assert core.switches.as_dict() == dict.fromkeys(SERVER_MECHANISMS, True)  # cache still on


@pytest.mark.parametrize(
    "payload", [b"{}", b'{"bundle": ""}', b'{"bundle": 5}', b'{"path": "/b"}', b"[]", b"nope"]
)
def test_a_reload_without_a_bundle_path_is_400_and_reloads_nothing(payload: bytes) -> None:
    core = _Core()
    code, body = _call(_model_server(core), "POST", "/admin/reload", data=payload, headers=AUTH)
    assert code == 400 and "\n" not in body["error"]
    assert core.reloads == []


def test_a_reload_without_the_token_is_401_and_reloads_nothing() -> None:
    core = _Core()
    code, _ = _call(_model_server(core), "POST", "/admin/reload", json={"bundle": "/b"})
    assert code == 401 and core.reloads == []
