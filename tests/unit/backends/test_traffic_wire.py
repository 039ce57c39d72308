"""build_request and parse_answer per kind: the exact JSON sent, and what each answer reads as."""

from __future__ import annotations

from typing import Any

import pytest

from chaos_rec.backends.adapters import TrafficSpec, build_request, parse_answer
from chaos_rec.core.seams import Answer

W = "traffic"
GATEWAY = TrafficSpec.from_dict({"kind": "chaos-rec", "headers": {"x-team": "recs"}}, W)
OIP = TrafficSpec.from_dict(
    {"kind": "oip-v2", "model": "recommender", "items_output": "item_ids"}, W
)
OIP_FULL = TrafficSpec.from_dict(
    {"kind": "oip-v2", "model": "recommender", "version": "2", "user_input": "USER",
     "user_datatype": "INT32", "shape": [1, 1], "k_input": "K", "k_datatype": "BYTES",
     "items_output": "ITEMS", "fallback_output": "TIER", "fallback_ok": "none"},
    W,
)  # fmt: skip
OIP_PARAM = TrafficSpec.from_dict(
    {"kind": "oip-v2", "model": "m", "items_output": "item_ids",
     "fallback_parameter": "degraded", "fallback_ok": False},
    W,
)  # fmt: skip
HTTP = TrafficSpec.from_dict(
    {"kind": "http", "path": "/api/{user_id}/recs", "headers": {"authorization": "Bearer t"},
     "body": {"user": "{user_id}", "count": "{k}", "q": "{query}", "note": "u{user_id}/k{k}/q={query}",
              "ctx": [{"search": "{query}"}, 1, True, None]},
     "items": "data.recs[*].id", "fallback": "data.mode", "fallback_ok": "model"},
    W,
)  # fmt: skip


def test_chaos_rec_request() -> None:
    req = build_request(GATEWAY, 42, 10, "comedy")
    assert (req.method, req.path, dict(req.headers)) == (
        "POST",
        "/v1/recommend",
        {"x-team": "recs"},
    )
    assert req.json_body == {"user_id": 42, "k": 10, "query": "comedy"}
    assert list(req.json_body) == ["user_id", "k", "query"]
    assert build_request(GATEWAY, 42, 10, None).json_body["query"] is None


def test_oip_v2_request_minimal() -> None:
    req = build_request(OIP, 42, 10, "ignored")
    assert (req.method, req.path) == ("POST", "/v2/models/recommender/infer")
    assert req.json_body == {
        "inputs": [{"name": "user_id", "shape": [1], "datatype": "INT64", "data": [42]}],
        "outputs": [{"name": "item_ids"}],
    }


def test_oip_v2_request_with_version_k_and_marker() -> None:
    req = build_request(OIP_FULL, 42, 10, None)
    assert req.path == "/v2/models/recommender/versions/2/infer"
    assert req.json_body == {
        "inputs": [
            {"name": "USER", "shape": [1, 1], "datatype": "INT32", "data": [42]},
            {"name": "K", "shape": [1, 1], "datatype": "BYTES", "data": ["10"]},
        ],
        "outputs": [{"name": "ITEMS"}, {"name": "TIER"}],
    }


def test_http_template_fills_placeholders() -> None:
    req = build_request(HTTP, 42, 5, "sci fi")
    assert (req.method, req.path, dict(req.headers)) == (
        "POST", "/api/42/recs", {"authorization": "Bearer t"},
    )  # fmt: skip
    assert req.json_body == {
        "user": 42, "count": 5, "q": "sci fi", "note": "u42/k5/q=sci fi",
        "ctx": [{"search": "sci fi"}, 1, True, None],
    }  # fmt: skip
    none = build_request(HTTP, 42, 5, None).json_body
    assert none["q"] is None and none["ctx"][0] == {"search": None}
    assert none["note"] == "u42/k5/q="


def test_http_path_placeholders_are_url_quoted() -> None:
    spec = TrafficSpec.from_dict(
        {"kind": "http", "method": "GET", "path": "/r?u={user_id}&q={query}", "items": "ids"}, W
    )
    req = build_request(spec, 7, 3, "a b/c")
    assert (req.method, req.path, req.json_body) == ("GET", "/r?u=7&q=a%20b%2Fc", None)


def _oip_body(items: Any, **extra: Any) -> dict[str, Any]:
    out = {"name": "item_ids", "shape": [1, len(items)], "datatype": "INT64", "data": items}
    return {"model_name": "m", "outputs": [out], **extra}


PARSED: list[tuple[TrafficSpec, int, Any, Answer | None]] = [
    # chaos-rec: items[].item_id, tier from fallback
    (GATEWAY, 200, {"items": [{"item_id": 3}, {"item_id": 1}], "fallback": "none"},
     Answer((3, 1), "none")),
    (GATEWAY, 200, {"items": [{"item_id": 3}], "fallback": "popular"}, Answer((3,), "popular")),
    (GATEWAY, 503, {"error": "overloaded"}, None),
    (GATEWAY, 200, "<html>", None),
    (GATEWAY, 200, {"items": [{"id": 3}], "fallback": "none"}, None),
    (GATEWAY, 200, {"items": "3,1"}, None),
    # oip-v2
    (OIP, 200, _oip_body([5, 6, 7]), Answer((5, 6, 7), "none")),
    (OIP, 200, _oip_body(["5", 6.0]), Answer((5, 6), "none")),
    (OIP, 400, {"error": "unknown input"}, None),
    (OIP, 200, {"outputs": [{"name": "scores", "data": [0.1]}]}, None),
    (OIP, 200, {"outputs": [{"name": "item_ids"}]}, None),
    (OIP, 200, {"model_name": "m"}, None),
    (OIP, 200, _oip_body([1.5]), None),
    (OIP, 200, _oip_body([True]), None),
    (OIP, 200, None, None),
    (OIP_FULL, 200, {"outputs": [{"name": "ITEMS", "data": [1]},
                                 {"name": "TIER", "datatype": "BYTES", "data": ["popular"]}]},
     Answer((1,), "popular")),
    (OIP_FULL, 200, {"outputs": [{"name": "ITEMS", "data": [1]},
                                 {"name": "TIER", "data": ["none"]}]}, Answer((1,), "none")),
    (OIP_FULL, 200, {"outputs": [{"name": "ITEMS", "data": [1]}]}, None),
    (OIP_PARAM, 200, _oip_body([1], parameters={"degraded": False}), Answer((1,), "none")),
    (OIP_PARAM, 200, _oip_body([1], parameters={"degraded": True}), Answer((1,), "true")),
    (OIP_PARAM, 200, _oip_body([1], parameters={"degraded": 0}), Answer((1,), "0")),
    (OIP_PARAM, 200, _oip_body([1]), None),
    # http
    (HTTP, 200, {"data": {"recs": [{"id": 9}, {"id": 8}], "mode": "model"}},
     Answer((9, 8), "none")),
    (HTTP, 200, {"data": {"recs": [{"id": 9}], "mode": "cache"}}, Answer((9,), "cache")),
    (HTTP, 200, {"data": {"recs": [{"id": 9}]}}, None),
    (HTTP, 200, {"data": {"recs": [{"item": 9}], "mode": "model"}}, None),
    (HTTP, 500, {"data": {"recs": [], "mode": "model"}}, None),
    (HTTP, 200, {"data": {"recs": [], "mode": "model"}}, Answer((), "none")),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "status", "body", "expected"), PARSED)
def test_parse_answer(spec: TrafficSpec, status: int, body: Any, expected: Answer | None) -> None:
    assert parse_answer(spec, status, body, 10) == expected


def test_answers_are_truncated_to_k_and_a_list_selector_reads_the_list() -> None:
    assert parse_answer(OIP, 200, _oip_body([1, 2, 3, 4]), 2) == Answer((1, 2), "none")
    assert parse_answer(OIP, 200, _oip_body([1, 2, 3, 4])) == Answer((1, 2, 3, 4), "none")
    spec = TrafficSpec.from_dict({"kind": "http", "path": "/r", "items": "data.recs"}, W)
    assert parse_answer(spec, 200, {"data": {"recs": [4, 5, 6]}}, 2) == Answer((4, 5), "none")
    assert parse_answer(spec, 200, {"data": {"recs": 4}}, 2) is None
