"""REST adapter: OIP v2 over HTTP, /metrics and /admin (decode → core → encode)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from serving import codec
from serving.core import InferenceCore
from serving.errors import (
    BadRequest,
    BundleRefused,
    DeadlineExceeded,
    FeatureStoreError,
    ModelNotReady,
    Overloaded,
    ServingError,
)
from serving.metrics import CONTENT_TYPE
from serving.settings import Switches

log = logging.getLogger("serving.rest")

# The one error → HTTP status table of this adapter.
STATUS: dict[type[ServingError], int] = {
    BadRequest: 400,
    BundleRefused: 409,
    ModelNotReady: 503,
    Overloaded: 503,
    FeatureStoreError: 503,
    DeadlineExceeded: 504,
}
HEADER_LEN = "Inference-Header-Content-Length"
MAX_BODY_KEY = web.AppKey("max_body", int)  # an app's body limit, for the error line
TOO_DEEP = "body is nested too deeply to parse"  # json.loads' answer to [[[[...]]]]
OPENAPI = "model_server.openapi.json"  # this API's OpenAPI 3 document, served at /openapi.json


def status_of(exc: ServingError) -> int:
    """HTTP status for a domain error (500 for anything not in the table)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def json_body(payload: object, status: int = 200) -> web.Response:
    """A JSON response serialised by orjson (same JSON as json.dumps, a fraction of the CPU)."""
    try:
        body = orjson.dumps(payload)
    except TypeError:  # what orjson refuses (an echoed id beyond 64 bits): the stdlib encoder
        body = json.dumps(payload).encode()
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def check_token(request: web.Request, token: str | None) -> None:
    """Raise 401/403 unless the request carries the admin bearer token."""
    if not token:
        raise web.HTTPForbidden(
            text=json.dumps({"error": "admin API disabled: start with --admin-token"}),
            content_type="application/json",
        )
    got = request.headers.get("Authorization", "")
    if not hmac.compare_digest(got.encode(), f"Bearer {token}".encode()):
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "missing or wrong admin token"}),
            content_type="application/json",
        )


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or BadRequest."""
    try:
        body = json.loads(await request.read())
    except web.HTTPRequestEntityTooLarge as exc:
        raise BadRequest(
            f"request body too large (limit {request.app[MAX_BODY_KEY]} bytes)"
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise BadRequest(TOO_DEEP) from exc
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def resilience_routes(switches: Switches, token: str | None) -> list[web.RouteDef]:
    """GET/POST /admin/resilience (shared with the gateway)."""

    async def get(request: web.Request) -> web.Response:
        check_token(request, token)
        return web.json_response(switches.as_dict())

    async def post(request: web.Request) -> web.Response:
        check_token(request, token)
        try:
            return web.json_response(switches.update(await read_json_object(request)))
        except BadRequest as exc:
            return _error(400, str(exc))

    return [web.get("/admin/resilience", get), web.post("/admin/resilience", post)]


def openapi_route(document: str) -> web.RouteDef:
    """GET /openapi.json: `document`, an OpenAPI 3 file of package `serving` (read here, once)."""
    body = resources.files("serving").joinpath(document).read_bytes()

    async def get(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    return web.get("/openapi.json", get)


class RestAdapter:
    """aiohttp handlers over one InferenceCore."""

    def __init__(self, core: InferenceCore, name: str, token: str | None) -> None:
        self.core = core
        self.name = name
        self.token = token

    def app(self, max_body: int) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=max_body)
        app[MAX_BODY_KEY] = max_body
        m = "/v2/models/{model}"
        v = "/v2/models/{model}/versions/{version}"
        app.add_routes(
            [
                web.get("/v2/health/live", self.live),
                web.get("/v2/health/ready", self.ready),
                web.get("/v2", self.server_metadata),
                web.get(m, self.model_metadata),
                web.get(v, self.model_metadata),
                web.get(m + "/ready", self.model_ready),
                web.get(v + "/ready", self.model_ready),
                web.post(m + "/infer", self.infer),
                web.post(v + "/infer", self.infer),
                web.get("/metrics", self.metrics),
                web.post("/admin/reload", self.reload),
                openapi_route(OPENAPI),
                *resilience_routes(self.core.switches, self.token),
            ]
        )
        return app

    async def live(self, request: web.Request) -> web.Response:
        """Liveness: the process answers."""
        return web.json_response({"live": True})

    async def ready(self, request: web.Request) -> web.Response:
        """Readiness: bundle loaded, verified, warmed up (never the feature store)."""
        ok = self.core.ready
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    async def server_metadata(self, request: web.Request) -> web.Response:
        """OIP v2 server metadata."""
        return web.json_response(
            {
                "name": "chaos-rec-model-server",
                "version": "0.1.0",
                "extensions": ["binary_tensor_data"],
            }
        )

    def _check_model(self, request: web.Request) -> None:
        if request.match_info["model"] != codec.MODEL_NAME:
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"unknown model {request.match_info['model']!r}"}),
                content_type="application/json",
            )

    async def model_metadata(self, request: web.Request) -> web.Response:
        """OIP v2 model metadata (tensor names, datatypes, shapes)."""
        self._check_model(request)
        return web.json_response(codec.model_metadata(self.core.model_version))

    async def model_ready(self, request: web.Request) -> web.Response:
        """Model readiness."""
        self._check_model(request)
        ok = self.core.ready
        return web.json_response({"name": codec.MODEL_NAME, "ready": ok}, status=200 if ok else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus metrics."""
        return web.Response(body=self.core.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def infer(self, request: web.Request) -> web.Response:
        """OIP v2 infer (JSON or Triton binary-data extension)."""
        self._check_model(request)
        started = time.perf_counter()
        code = 200
        try:
            body = await self._read_body(request)
            header, tensors = self._decode(request, body)
            reqs = codec.to_requests(tensors)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.core.settings.request_timeout_ms / 1000
            results = await self.core.recommend_many(reqs, deadline)
            outs = codec.to_outputs(results, reqs[0].k)
            payload: dict[str, Any] = {
                "model_name": codec.MODEL_NAME,
                "model_version": self.core.model_version,
                "parameters": {"model_version": self.core.model_version, "replica": self.name},
                "outputs": [
                    {"name": o.name, "datatype": o.datatype, "shape": o.shape, "data": o.data}
                    for o in outs
                ],
            }
            if "id" in header:
                payload["id"] = header["id"]
            return json_body(payload)
        except ServingError as exc:
            code = status_of(exc)
            return _error(code, str(exc))
        except Exception as exc:  # a bug or a failed forward pass: one line, the server lives on
            code = 500
            log.exception("infer failed")
            return _error(500, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self.core.metrics.request_done("http", str(code), time.perf_counter() - started)

    async def _read_body(self, request: web.Request) -> bytes:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise BadRequest(
                f"request body too large (limit {request.app[MAX_BODY_KEY]} bytes)"
            ) from exc

    @staticmethod
    def _decode(
        request: web.Request, body: bytes
    ) -> tuple[dict[str, Any], dict[str, codec.Tensor]]:
        hlen_text = request.headers.get(HEADER_LEN)
        try:
            hlen = int(hlen_text) if hlen_text is not None else len(body)
        except ValueError as exc:
            raise BadRequest(f"{HEADER_LEN} is not an integer: {hlen_text!r}") from exc
        if not 0 < hlen <= len(body):
            raise BadRequest(f"{HEADER_LEN}={hlen} does not fit a {len(body)}-byte body")
        try:
            header = json.loads(body[:hlen].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise BadRequest(f"request is not valid UTF-8 ({exc.reason})") from exc
        except ValueError as exc:
            raise BadRequest(f"request is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise BadRequest(TOO_DEEP) from exc
        if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
            raise BadRequest("request must be a JSON object with an 'inputs' list")
        binary = body[hlen:]
        pos = 0
        tensors: dict[str, codec.Tensor] = {}
        for spec in header["inputs"]:
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise BadRequest("each input needs a 'name'")
            name, dtype, shape = spec["name"], spec.get("datatype"), spec.get("shape")
            if name in tensors:
                raise BadRequest(f"input {name!r} given twice")
            if not isinstance(dtype, str) or not isinstance(shape, list):
                raise BadRequest(f"input {name!r} needs 'datatype' and 'shape'")
            params = spec.get("parameters") or {}
            size = params.get("binary_data_size") if isinstance(params, dict) else None
            if size is not None:
                if not isinstance(size, int) or size < 0 or pos + size > len(binary):
                    raise BadRequest(f"input {name!r}: binary_data_size {size} exceeds the body")
                tensors[name] = codec.parse_raw(name, dtype, shape, binary[pos : pos + size])
                pos += size
            elif "data" in spec:
                tensors[name] = codec.parse_json_data(name, dtype, shape, spec["data"])
            else:
                raise BadRequest(f"input {name!r} has neither 'data' nor binary_data_size")
        return header, tensors

    async def reload(self, request: web.Request) -> web.Response:
        """Hot-reload a bundle (token); 409 and the old model keeps serving when refused."""
        check_token(request, self.token)
        try:
            body = await read_json_object(request)
            path = body.get("bundle")
            if not isinstance(path, str) or not path:
                raise BadRequest('body must be {"bundle": "/path/to/bundle"}')
            version = await self.core.reload(Path(path))
        except ServingError as exc:
            return _error(status_of(exc), str(exc))
        return web.json_response({"model_version": version, "replica": self.name})
