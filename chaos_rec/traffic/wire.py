"""Pure request building and answer parsing for each traffic kind (no I/O, JSON in and out).

The same two functions serve the quality replay (:class:`AdapterTraffic`) and, later, the
Locust subprocess, which gets the :class:`TrafficSpec` as JSON.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from chaos_rec.core.seams import Answer
from chaos_rec.core.secrets import fill_secrets
from chaos_rec.traffic.selector import NoMatch, compile_selector
from chaos_rec.traffic.spec import TrafficSpec

__all__ = [
    "GATEWAY_FIELDS",
    "GATEWAY_PATH",
    "HttpRequest",
    "build_request",
    "infer_path",
    "parse_answer",
]

GATEWAY_PATH: Final = "/v1/recommend"
GATEWAY_FIELDS: Final = ("user_id", "k", "query")  # the body's keys, in the locustfile's order
_PLACEHOLDER: Final = re.compile(r"\{(user_id|k|query)\}")


@dataclass(frozen=True)
class HttpRequest:
    """One request to send: method, path (below the deployment's base URL), headers, JSON body."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    json_body: Any = field(default=None, hash=False)


def infer_path(spec: TrafficSpec) -> str:
    """``/v2/models/{model}[/versions/{v}]/infer`` of an oip-v2 spec."""
    version = f"/versions/{spec.version}" if spec.version else ""
    return f"/v2/models/{spec.model}{version}/infer"


def _tensor(name: str, datatype: str, shape: tuple[int, ...], value: int) -> dict[str, Any]:
    data: int | str = str(value) if datatype == "BYTES" else value
    return {"name": name, "shape": list(shape), "datatype": datatype, "data": [data]}


def _fill(value: Any, user_id: int, k: int, query: str | None) -> Any:
    """The template with its placeholders replaced (a whole "{user_id}"/"{k}" is an int)."""
    if isinstance(value, str):
        whole = {"{user_id}": user_id, "{k}": k, "{query}": query}
        if value in whole:
            return whole[value]
        subs = {"user_id": str(user_id), "k": str(k), "query": query or ""}
        return _PLACEHOLDER.sub(lambda m: subs[m.group(1)], value)
    if isinstance(value, dict):
        return {key: _fill(item, user_id, k, query) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, user_id, k, query) for item in value]
    return value


def _fill_path(path: str, user_id: int, k: int, query: str | None) -> str:
    subs = {"user_id": str(user_id), "k": str(k), "query": query or ""}
    return _PLACEHOLDER.sub(lambda m: urllib.parse.quote(subs[m.group(1)], safe=""), path)


def build_request(
    spec: TrafficSpec,
    user_id: int,
    k: int,
    query: str | None,
    secrets: Mapping[str, str] | None = None,
) -> HttpRequest:
    """The request asking ``spec``'s deployment for ``k`` items for one user (each header's
    ``${secret:NAME}`` filled from ``secrets``)."""
    headers = {name: fill_secrets(value, secrets or {}) for name, value in spec.headers}
    if spec.kind == "chaos-rec":
        body = dict(zip(GATEWAY_FIELDS, (int(user_id), int(k), query), strict=True))
        return HttpRequest("POST", GATEWAY_PATH, headers, body)
    if spec.kind == "oip-v2":
        inputs = [_tensor(spec.user_input, spec.user_datatype, spec.shape, int(user_id))]
        if spec.k_input:
            inputs.append(_tensor(spec.k_input, spec.k_datatype, spec.shape, int(k)))
        wanted = [spec.items_output, spec.fallback_output]
        outputs = [{"name": name} for name in wanted if name]
        return HttpRequest(
            "POST", infer_path(spec), headers, {"inputs": inputs, "outputs": outputs}
        )
    path = _fill_path(spec.path or "/", int(user_id), int(k), query)
    body = _fill(spec.body, int(user_id), int(k), query)
    return HttpRequest(spec.method, path, headers, body)


def _item_id(value: Any) -> int:
    if isinstance(value, bool):
        raise NoMatch("an item id is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise NoMatch(f"{value!r} is not an item id")


def _tier(value: Any, ok: Any) -> str:
    if isinstance(value, list) and len(value) == 1:  # a one-element tensor's data
        value = value[0]
    if value == ok and isinstance(value, bool) == isinstance(ok, bool):
        return "none"
    return value if isinstance(value, str) else json.dumps(value)


def _output(body: Mapping[str, Any], name: str) -> Any:
    outputs = body.get("outputs")
    if not isinstance(outputs, list):
        raise NoMatch("no outputs list")
    for out in outputs:
        if isinstance(out, dict) and out.get("name") == name:
            if not isinstance(out.get("data"), list):
                raise NoMatch(f"output {name} has no data list")
            return out["data"]
    raise NoMatch(f"no output named {name}")


def _parse(spec: TrafficSpec, body: Any, k: int | None) -> Answer:
    if not isinstance(body, dict):
        raise NoMatch("the body is not a JSON object")
    if spec.kind == "chaos-rec":
        items = body.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise NoMatch("no items list")
        ids = [_item_id(i.get("item_id")) for i in items]
        return Answer(tuple(ids[:k]), str(body.get("fallback")))
    if spec.kind == "oip-v2":
        ids = [_item_id(v) for v in _output(body, spec.items_output or "")]
        tier = "none"
        if spec.fallback_output:
            tier = _tier(_output(body, spec.fallback_output), spec.fallback_ok)
        elif spec.fallback_parameter:
            params = body.get("parameters")
            if not isinstance(params, dict) or spec.fallback_parameter not in params:
                raise NoMatch(f"no parameter {spec.fallback_parameter}")
            tier = _tier(params[spec.fallback_parameter], spec.fallback_ok)
        return Answer(tuple(ids[:k]), tier)
    selector = compile_selector(spec.items, "traffic.items")
    found = selector.select(body)
    if not selector.many:  # `data.recs`: the one value selected is the list of ids
        if not isinstance(found[0], list):
            raise NoMatch(f"{spec.items} is not a list")
        found = found[0]
    ids = [_item_id(v) for v in found]
    tier = "none"
    if spec.fallback is not None:
        marker = compile_selector(spec.fallback, "traffic.fallback").one(body)
        tier = _tier(marker, spec.fallback_ok)
    return Answer(tuple(ids[:k]), tier)


def parse_answer(spec: TrafficSpec, status: int, body: Any, k: int | None = None) -> Answer | None:
    """The answer in a reply (its first ``k`` items); None unless a 200 with items (and marker)."""
    if status != 200:
        return None
    try:
        return _parse(spec, body, k)
    except NoMatch:
        return None
