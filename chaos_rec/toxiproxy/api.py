"""The Toxiproxy HTTP API (aiohttp): routes, status codes and JSON shapes of Shopify toxiproxy 2.x."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from chaos_rec.errors import ProxyRequestError
from chaos_rec.toxiproxy.collection import ProxyCollection
from chaos_rec.toxiproxy.metrics import render_metrics
from chaos_rec.toxiproxy.openapi import OPENAPI_PATH, openapi_document
from chaos_rec.toxiproxy.requestid import new_request_id

__all__ = ["HANDLER_TIMEOUT", "VERSION", "build_app"]

log = logging.getLogger("chaos_rec.toxiproxy.api")

VERSION = "2.12.0+chaos-rec.1"
HANDLER_TIMEOUT = 25.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_COLLECTION = web.AppKey("collection", ProxyCollection)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json"
    )


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message, "status": status}, status)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Browser guard (403 for ``Mozilla/``), 25 s handler timeout (503), errors as JSON.

    No route, or no such method on it, answers as the real server's router does.
    """
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        return web.Response(status=403, text="User agent not allowed\n")
    try:
        return await asyncio.wait_for(handler(request), HANDLER_TIMEOUT)
    except ProxyRequestError as exc:
        return _error(str(exc), exc.status)
    except TimeoutError:
        return web.Response(status=503, text="")
    except web.HTTPMethodNotAllowed:
        return web.Response(status=405)
    except web.HTTPNotFound:
        return web.Response(status=404, text="404 page not found\n")


_JSON_SPACE = b" \t\n\r"


async def _body(request: web.Request) -> Any:
    """The first JSON value of the body, read as Go's ``json.Decoder`` reads it.

    An empty (or all-whitespace) body is 400 ``bad request body: EOF``; what follows the
    first value is ignored; ``null`` is returned as None (callers treat it as no fields, as
    decoding null into a Go struct changes nothing).
    """
    raw = await request.read()
    if not raw.strip(_JSON_SPACE):
        raise ProxyRequestError("bad request body: EOF", 400)
    try:
        value, _ = json.JSONDecoder().raw_decode(raw.decode("utf-8").lstrip(" \t\n\r"))
    except ValueError as exc:  # UnicodeDecodeError included
        raise ProxyRequestError(f"bad request body: {exc}", 400) from exc
    except RecursionError as exc:  # as Go's decoder refuses nesting beyond its limit
        raise ProxyRequestError("bad request body: exceeded max depth", 400) from exc
    return value


def _coll(request: web.Request) -> ProxyCollection:
    return request.app[_COLLECTION]


async def proxy_index(request: web.Request) -> web.Response:
    """GET /proxies."""
    coll = _coll(request)
    return _json({name: p.to_json() for name, p in coll.proxies.items()})


async def proxy_create(request: web.Request) -> web.Response:
    """POST /proxies."""
    coll = _coll(request)
    body = await _body(request)
    spec = coll.parse_proxy(body if body is not None else {})
    async with coll.lock:
        proxy = await coll.create(spec)
    return _json(proxy.to_json(), 201)


async def populate(request: web.Request) -> web.Response:
    """POST /populate: the real server's body, ``{"error", "status", "proxies"}`` on failure.

    As there, ``proxies`` is ``null`` when no proxy was applied (an empty list, a bad body, a
    failure at the first proxy), and a bind failure keeps the proxies applied before it.
    """
    coll = _coll(request)
    try:
        body = await _body(request)
        async with coll.lock:  # a bad body raises: nothing changed; null is no proxies
            proxies, failed = await coll.populate(body if body is not None else [])
    except ProxyRequestError as exc:
        proxies, failed = [], exc
    applied = [p.to_json() for p in proxies] or None
    if failed is not None:
        return _json(
            {"error": str(failed), "status": failed.status, "proxies": applied}, failed.status
        )
    return _json({"proxies": applied}, 201)


async def proxy_show(request: web.Request) -> web.Response:
    """GET /proxies/{proxy}."""
    return _json(_coll(request).get(request.match_info["proxy"]).to_json())


async def proxy_update(request: web.Request) -> web.Response:
    """POST or PATCH /proxies/{proxy}."""
    coll = _coll(request)
    name = request.match_info["proxy"]
    coll.get(name)
    body = await _body(request)
    async with coll.lock:
        proxy = await coll.update(name, body if body is not None else {})
    return _json(proxy.to_json())


async def proxy_delete(request: web.Request) -> web.Response:
    """DELETE /proxies/{proxy}."""
    coll = _coll(request)
    async with coll.lock:
        coll.delete(request.match_info["proxy"])
    return web.Response(status=204)


async def toxic_index(request: web.Request) -> web.Response:
    """GET /proxies/{proxy}/toxics."""
    return _json(_coll(request).get(request.match_info["proxy"]).toxic_list())


async def toxic_create(request: web.Request) -> web.Response:
    """POST /proxies/{proxy}/toxics (200, like the real server)."""
    coll = _coll(request)
    name = request.match_info["proxy"]
    coll.get(name)
    body = await _body(request)
    async with coll.lock:
        spec = coll.add_toxic(name, body if body is not None else {})
    return _json(spec.to_json())


async def toxic_show(request: web.Request) -> web.Response:
    """GET /proxies/{proxy}/toxics/{toxic}."""
    m = request.match_info
    return _json(_coll(request).get_toxic(m["proxy"], m["toxic"]).to_json())


async def toxic_update(request: web.Request) -> web.Response:
    """POST or PATCH /proxies/{proxy}/toxics/{toxic}."""
    coll = _coll(request)
    m = request.match_info
    coll.get_toxic(m["proxy"], m["toxic"])
    body = await _body(request)
    async with coll.lock:
        spec = coll.update_toxic(m["proxy"], m["toxic"], body if body is not None else {})
    return _json(spec.to_json())


async def toxic_delete(request: web.Request) -> web.Response:
    """DELETE /proxies/{proxy}/toxics/{toxic}."""
    coll = _coll(request)
    m = request.match_info
    async with coll.lock:
        coll.remove_toxic(m["proxy"], m["toxic"])
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    """POST /reset."""
    coll = _coll(request)
    async with coll.lock:
        await coll.reset()
    return web.Response(status=204)


async def version(request: web.Request) -> web.Response:
    """GET /version."""
    return web.Response(
        body=f'{{"version": "{VERSION}"}}\n'.encode(),
        headers={"Content-Type": "application/json;charset=utf-8"},
    )


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics (Prometheus text)."""
    return web.Response(
        text=render_metrics(_coll(request)),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def openapi(request: web.Request) -> web.Response:
    """GET /openapi.json: this API as an OpenAPI 3 document (not a real Toxiproxy route)."""
    return _json(openapi_document(VERSION))


async def _request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer carries ``X-Toxiproxy-Request-Id`` (an xid), as the real server's do."""
    response.headers["X-Toxiproxy-Request-Id"] = new_request_id()


def build_app(collection: ProxyCollection) -> web.Application:
    """The aiohttp application serving the Toxiproxy API over ``collection``."""
    app = web.Application(middlewares=[_guard], client_max_size=4 * 1024 * 1024)
    app.on_response_prepare.append(_request_id)
    app[_COLLECTION] = collection
    r = app.router
    r.add_post("/reset", reset)
    r.add_get("/proxies", proxy_index, allow_head=False)
    r.add_post("/proxies", proxy_create)
    r.add_post("/populate", populate)
    r.add_get("/proxies/{proxy}", proxy_show, allow_head=False)
    r.add_post("/proxies/{proxy}", proxy_update)
    r.add_patch("/proxies/{proxy}", proxy_update)
    r.add_delete("/proxies/{proxy}", proxy_delete)
    r.add_get("/proxies/{proxy}/toxics", toxic_index, allow_head=False)
    r.add_post("/proxies/{proxy}/toxics", toxic_create)
    r.add_get("/proxies/{proxy}/toxics/{toxic}", toxic_show, allow_head=False)
    r.add_post("/proxies/{proxy}/toxics/{toxic}", toxic_update)
    r.add_patch("/proxies/{proxy}/toxics/{toxic}", toxic_update)
    r.add_delete("/proxies/{proxy}/toxics/{toxic}", toxic_delete)
    r.add_get("/version", version, allow_head=False)
    r.add_get("/metrics", metrics, allow_head=False)
    r.add_get(OPENAPI_PATH, openapi, allow_head=False)
    return app
