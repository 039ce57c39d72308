"""The fault proxy's HTTP API as an OpenAPI 3.1 document (served at ``GET /openapi.json``).

It describes the Toxiproxy 2.x API as this server answers it, codes and shapes included,
so that a schema-driven fuzzer (schemathesis) can check every answer against it. The toxic
types and their attributes come from ``model.TOXIC_ATTRIBUTES``, the one table of them.
A real Toxiproxy has no ``/openapi.json`` (it answers 404 there), so no client's route clashes.
"""

from __future__ import annotations

from typing import Any

from chaos_rec.toxiproxy.model import MAX_ATTRIBUTE, STREAMS, TOXIC_ATTRIBUTES

__all__ = ["OPENAPI_PATH", "openapi_document"]

OPENAPI_PATH = "/openapi.json"

# the real ParseDirection lower-cases the stream (JSON Schema patterns have no (?i))
_STREAM = {
    "type": "string",
    "pattern": "^([uU][pP]|[dD][oO][wW][nN])[sS][tT][rR][eE][aA][mM]$",
    "description": "upstream or downstream, any case; shown lower-cased",
}
_REQUEST_ID = {
    "X-Toxiproxy-Request-Id": {
        "description": "an xid, as the real server's request-id middleware sets",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9a-v]{20}$"},
    }
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _REQUEST_ID,
        "content": {"application/json": {"schema": schema}},
    }


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _empty(description: str) -> dict[str, Any]:
    return {"description": description, "headers": _REQUEST_ID}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_NOT_FOUND = {
    "description": "the proxy or toxic does not exist (JSON), or no route matched (text)",
    "headers": _REQUEST_ID,
    "content": {
        "application/json": {"schema": _ref("Error")},
        "text/plain": {"schema": {"type": "string"}},
    },
}
_BAD = _error("bad request body, missing field, bad value, or an address outside the allowlist")
_BIND = _error("the listener could not bind (`listen tcp ADDR: bind: …`), as the real server")


def _toxic_create(type_: str) -> dict[str, Any]:
    """A create body for one toxic type: its attributes are checked, any other key ignored."""
    attribute = {"type": "integer", "minimum": 0, "maximum": MAX_ATTRIBUTE}
    return {
        "type": "object",
        "required": ["type"],
        "properties": {
            "name": {"type": "string", "nullable": True, "description": "`<type>_<stream>`"},
            "type": {"type": "string", "enum": [type_]},
            "stream": {**_STREAM, "nullable": True},
            "toxicity": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
            "attributes": {
                "type": "object",
                "nullable": True,
                "properties": dict.fromkeys(TOXIC_ATTRIBUTES[type_], attribute),
            },
        },
    }


def _schemas() -> dict[str, Any]:
    toxicity = {"type": "number", "minimum": 0, "maximum": 1}
    return {
        "Error": {
            "type": "object",
            "required": ["error", "status"],
            "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
        },
        "Toxic": {
            "type": "object",
            "required": ["name", "type", "stream", "toxicity", "attributes"],
            "properties": {
                "name": {"type": "string"},
                "type": {"type": "string", "enum": sorted(TOXIC_ATTRIBUTES)},
                "stream": {"type": "string", "enum": list(STREAMS)},
                "toxicity": toxicity,
                "attributes": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": 0},
                },
            },
        },
        "ToxicCreate": {"oneOf": [_toxic_create(t) for t in sorted(TOXIC_ATTRIBUTES)]},
        "ToxicUpdate": {
            "type": "object",
            "nullable": True,
            "description": "attributes merge; those the toxic's type has must be integers >= 0",
            "properties": {
                "toxicity": {**toxicity, "nullable": True},
                "attributes": {"type": "object", "nullable": True},
            },
        },
        "Proxy": {
            "type": "object",
            "required": ["name", "listen", "upstream", "enabled", "toxics"],
            "properties": {
                "name": {"type": "string"},
                "listen": {"type": "string"},
                "upstream": {"type": "string"},
                "enabled": {"type": "boolean"},
                "toxics": {"type": "array", "items": _ref("Toxic")},
            },
        },
        "ProxyCreate": {
            "type": "object",
            "required": ["name", "upstream"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "listen": {
                    "type": "string",
                    "nullable": True,
                    "description": "host:port (default 127.0.0.1:0); port 0 picks one",
                },
                "upstream": {"type": "string", "minLength": 1},
                "enabled": {"type": "boolean", "nullable": True},
            },
        },
        "ProxyUpdate": {
            "type": "object",
            "nullable": True,
            "properties": {
                "listen": {"type": "string", "nullable": True},
                "upstream": {"type": "string", "nullable": True},
                "enabled": {"type": "boolean", "nullable": True},
            },
        },
        "Populated": {
            "type": "object",
            "required": ["proxies"],
            "properties": {
                "error": {"type": "string"},
                "status": {"type": "integer"},
                "proxies": {
                    "type": "array",
                    "nullable": True,
                    "description": "null when no proxy was applied, as the real server",
                    "items": _ref("Proxy"),
                },
            },
        },
    }


def _paths() -> dict[str, Any]:
    proxy, toxic = _param("proxy"), _param("toxic")
    populated = _json(_ref("Populated"), "what was applied, with the error that stopped it")
    return {
        "/proxies": {
            "get": {
                "operationId": "ProxyIndex",
                "responses": {
                    "200": _json(
                        {"type": "object", "additionalProperties": _ref("Proxy")},
                        "every proxy by name, each with its toxics",
                    )
                },
            },
            "post": {
                "operationId": "ProxyCreate",
                "requestBody": _body(_ref("ProxyCreate")),
                "responses": {
                    "201": _json(_ref("Proxy"), "created (and listening when enabled)"),
                    "400": _BAD,
                    "409": _error("proxy already exists"),
                    "500": _BIND,
                },
            },
        },
        "/populate": {
            "post": {
                "operationId": "Populate",
                "requestBody": _body(
                    {"type": "array", "nullable": True, "items": _ref("ProxyCreate")}
                ),
                "responses": {
                    "201": _json(_ref("Populated"), "every proxy created, kept or replaced"),
                    "400": populated,
                    "500": populated,
                },
            }
        },
        "/proxies/{proxy}": {
            "parameters": [proxy],
            "get": {
                "operationId": "ProxyShow",
                "responses": {"200": _json(_ref("Proxy"), "the proxy"), "404": _NOT_FOUND},
            },
            **{
                method: {
                    "operationId": f"ProxyUpdate{method.upper()}",
                    "requestBody": _body(_ref("ProxyUpdate")),
                    "responses": {
                        "200": _json(_ref("Proxy"), "updated"),
                        "400": _BAD,
                        "404": _NOT_FOUND,
                        "500": _BIND,
                    },
                }
                for method in ("post", "patch")
            },
            "delete": {
                "operationId": "ProxyDelete",
                "responses": {"204": _empty("deleted"), "404": _NOT_FOUND},
            },
        },
        "/proxies/{proxy}/toxics": {
            "parameters": [proxy],
            "get": {
                "operationId": "ToxicIndex",
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Toxic")}, "the toxics"),
                    "404": _NOT_FOUND,
                },
            },
            "post": {
                "operationId": "ToxicCreate",
                "requestBody": _body(_ref("ToxicCreate")),
                "responses": {
                    "200": _json(_ref("Toxic"), "added (200, as the real server)"),
                    "400": _BAD,
                    "404": _NOT_FOUND,
                    "409": _error("toxic already exists"),
                },
            },
        },
        "/proxies/{proxy}/toxics/{toxic}": {
            "parameters": [proxy, toxic],
            "get": {
                "operationId": "ToxicShow",
                "responses": {"200": _json(_ref("Toxic"), "the toxic"), "404": _NOT_FOUND},
            },
            **{
                method: {
                    "operationId": f"ToxicUpdate{method.upper()}",
                    "requestBody": _body(_ref("ToxicUpdate")),
                    "responses": {
                        "200": _json(_ref("Toxic"), "updated"),
                        "400": _BAD,
                        "404": _NOT_FOUND,
                    },
                }
                for method in ("post", "patch")
            },
            "delete": {
                "operationId": "ToxicDelete",
                "responses": {"204": _empty("removed"), "404": _NOT_FOUND},
            },
        },
        "/reset": {
            "post": {
                "operationId": "ResetState",
                "responses": {
                    "204": _empty("every toxic removed, every proxy enabled"),
                    "500": _BIND,
                },
            }
        },
        "/version": {
            "get": {
                "operationId": "Version",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["version"],
                            "properties": {"version": {"type": "string"}},
                        },
                        "the server's version",
                    )
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "Metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text",
                        "headers": _REQUEST_ID,
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        OPENAPI_PATH: {
            "get": {
                "operationId": "OpenAPI",
                "responses": {"200": _json({"type": "object"}, "this document")},
            }
        },
    }


def _null_as_type(node: Any) -> Any:
    """Write ``nullable: true`` (used above for brevity) as OpenAPI 3.1's ``type: [T, "null"]``.

    In 3.1 the schemas are plain JSON Schema, so a fuzzer that makes invalid data knows
    that null is valid where it is.
    """
    if isinstance(node, list):
        return [_null_as_type(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _null_as_type(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        out["type"] = [node["type"], "null"]
    return out


def openapi_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API, for server ``version``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chaos-rec fault proxy (Toxiproxy 2.x API)",
            "version": version,
            "description": (
                "Shopify Toxiproxy's HTTP API as chaos-rec's fault proxy serves it; the "
                "differences from the real server are listed in docs/fault-proxy.md. Every "
                "answer carries X-Toxiproxy-Request-Id; a User-Agent starting with Mozilla/ "
                "gets 403; a handler running past 25 s gets 503."
            ),
        },
        "paths": _null_as_type(_paths()),
        "components": {"schemas": _null_as_type(_schemas())},
    }
