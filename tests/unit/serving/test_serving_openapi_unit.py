"""The OpenAPI documents of the model server and the gateway match the routes and tables of the code."""

from __future__ import annotations

import json
from importlib import resources
from types import SimpleNamespace
from typing import Any

import pytest
import schemathesis
from aiohttp import web

from serving import codec, rest
from serving.gateway import server as gateway_server
from serving.gateway.server import Gateway
from serving.settings import (
    GATEWAY_MECHANISMS,
    SERVER_MECHANISMS,
    GatewaySettings,
    ServerSettings,
    Switches,
)


def _doc(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resources.files("serving").joinpath(name).read_text())
    return doc


def _model_server_app() -> web.Application:
    core = SimpleNamespace(switches=Switches(SERVER_MECHANISMS))
    return rest.RestAdapter(core, "replica-0", "tok").app(1 << 20)  # type: ignore[arg-type]


def _gateway_app() -> web.Application:
    return Gateway(GatewaySettings(port=1, replicas={"r0": "127.0.0.1:1"})).app()


def _routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method != "HEAD":  # aiohttp adds HEAD to every GET
            out.add((route.method.lower(), route.resource.canonical))  # type: ignore[union-attr]
    return out


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, p) for p, item in doc["paths"].items() for m in item if m != "parameters"}


CASES = [
    pytest.param(rest.OPENAPI, _model_server_app, id="model-server"),
    pytest.param(gateway_server.OPENAPI, _gateway_app, id="gateway"),
]


@pytest.mark.parametrize(("name", "app"), CASES)
def test_the_document_names_every_route_and_no_other(name: str, app: Any) -> None:
    doc = _doc(name)
    assert _documented(doc) == _routes(app())
    schemathesis.openapi.from_dict(doc)  # loads: a valid OpenAPI 3 document


@pytest.mark.parametrize(("name", "mechanisms"), [(rest.OPENAPI, SERVER_MECHANISMS),
                                                   (gateway_server.OPENAPI, GATEWAY_MECHANISMS)])  # fmt: skip
def test_the_documented_switches_are_the_mechanisms(name: str, mechanisms: tuple[str, ...]) -> None:
    switches = _doc(name)["components"]["schemas"]["Switches"]
    assert tuple(switches["properties"]) == mechanisms
    assert switches["additionalProperties"] is False


def test_the_gateway_documents_its_k_range_and_every_error_status() -> None:
    doc = _doc(gateway_server.OPENAPI)
    k = doc["components"]["schemas"]["RecommendRequest"]["properties"]["k"]
    assert (k["minimum"], k["maximum"]) == (1, GatewaySettings.max_k)
    responses = doc["paths"]["/v1/recommend"]["post"]["responses"]
    assert {str(s) for s in gateway_server.STATUS.values()} <= set(responses)


def test_the_model_server_documents_its_tensors_and_every_error_status() -> None:
    doc = _doc(rest.OPENAPI)
    schemas = doc["components"]["schemas"]
    assert schemas["InferInput"]["properties"]["datatype"]["enum"] == sorted(
        {d for _, d, _ in codec.INPUTS}, reverse=True
    )
    assert schemas["OutputTensor"]["properties"]["name"]["enum"] == [n for n, _, _ in codec.OUTPUTS]
    infer = doc["paths"]["/v2/models/{model}/infer"]["post"]["responses"]
    wanted = {str(rest.STATUS[c]) for c in rest.STATUS} - {"409"}  # 409: reload only
    assert wanted | {"404"} <= set(infer)
    assert "409" in doc["paths"]["/admin/reload"]["post"]["responses"]
    assert ServerSettings.max_k == GatewaySettings.max_k  # the gateway's k range is the server's


@pytest.mark.parametrize(("name", "app"), CASES)
def test_get_openapi_json_serves_the_document(name: str, app: Any) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    async def go() -> tuple[int, str, Any]:
        async with TestClient(TestServer(app())) as client:
            resp = await client.get("/openapi.json")
            return resp.status, resp.content_type, await resp.json()

    import asyncio

    status, ctype, body = asyncio.run(go())
    assert (status, ctype) == (200, "application/json")
    assert body == _doc(name)
