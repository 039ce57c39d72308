"""TrafficSpec: one-line ConfigErrors naming the bad key, a to_dict round trip, the marker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaos_rec.backends.adapters import KINDS, TrafficSpec
from chaos_rec.errors import ConfigError

WHERE = "deployment file d.json: traffic"
OIP: dict[str, Any] = {"kind": "oip-v2", "model": "recommender", "items_output": "item_ids"}
HTTP: dict[str, Any] = {"kind": "http", "path": "/recs", "items": "items[*].id"}
GRPC: dict[str, Any] = {**OIP, "protocol": "grpc", "grpc_url": "127.0.0.1:8001"}

BAD: list[tuple[Any, str]] = [
    ([], "traffic: must be a mapping"),
    ({"kind": "grpc"}, "traffic.kind: must be one of chaos-rec, oip-v2, http"),
    ({"kind": "chaos-rec", "model": "m"}, "traffic.model: unknown key for kind chaos-rec"),
    ({"headers": {"x": 1}}, "traffic.headers: must map header names to strings"),
    ({"kind": "oip-v2", "items_output": "o"}, "traffic.model: required"),
    ({"kind": "oip-v2", "model": "m"}, "traffic.items_output: required"),
    ({**OIP, "model": "a/b"}, "traffic.model: must be a name"),
    ({**OIP, "user_datatype": "FP32"}, "traffic.user_datatype: must be one of INT64"),
    ({**OIP, "k_datatype": "STRING"}, "traffic.k_datatype: must be one of"),
    ({**OIP, "shape": [2]}, "traffic.shape: must be a list of 1s"),
    ({**OIP, "shape": []}, "traffic.shape: must be a list of 1s"),
    ({**OIP, "shape": "1"}, "traffic.shape: must be a list of 1s"),
    ({**OIP, "shape": [True]}, "traffic.shape: must be a list of 1s"),
    ({**OIP, "fallback_output": "f"}, "traffic.fallback_ok: required with a fallback marker"),
    ({**OIP, "fallback_ok": "none"}, "traffic.fallback_ok: given without a fallback marker"),
    (
        {**OIP, "fallback_output": "f", "fallback_parameter": "p", "fallback_ok": 0},
        "traffic.fallback_parameter: give fallback_output or fallback_parameter, not both",
    ),
    ({**OIP, "items": "x"}, "traffic.items: unknown key for kind oip-v2"),
    ({**OIP, "protocol": "http2"}, "traffic.protocol: must be one of rest, grpc"),
    ({**OIP, "protocol": None}, "traffic.protocol: must be one of rest, grpc"),
    ({**OIP, "protocol": "grpc"}, 'traffic.grpc_url: required with "protocol": "grpc"'),
    ({**OIP, "grpc_url": "h:8001"}, 'traffic.grpc_url: given without "protocol": "grpc"'),
    ({**GRPC, "grpc_url": "grpc://h:8001"}, "traffic.grpc_url: must be host:port"),
    ({**GRPC, "grpc_url": "h"}, "traffic.grpc_url: must be host:port"),
    ({**GRPC, "grpc_url": "h:0"}, "traffic.grpc_url: must be host:port"),
    ({**GRPC, "grpc_url": "h:65536"}, "traffic.grpc_url: must be host:port"),
    ({**GRPC, "grpc_url": 8001}, "traffic.grpc_url: must be host:port"),
    ({**GRPC, "headers": {"x y": "1"}}, "traffic.headers: a gRPC metadata name is letters"),
    ({**GRPC, "headers": {"tok-bin": "1"}}, "traffic.headers: a gRPC metadata name is letters"),
    ({**GRPC, "headers": {"x": "caf\u00e9"}}, "traffic.headers.x: a gRPC metadata value is"),
    (
        {"kind": "http", "path": "/r", "items": "a", "protocol": "grpc"},
        "traffic.protocol: unknown key",
    ),
    ({"kind": "http", "items": "a"}, "traffic.path: required, a path starting with '/'"),
    ({**HTTP, "path": "recs"}, "traffic.path: required, a path starting with '/'"),
    ({**HTTP, "method": "DELETE"}, "traffic.method: must be one of GET, POST"),
    ({**HTTP, "method": "GET", "body": {}}, "traffic.body: a GET request has no body"),
    ({**HTTP, "body": {"u": "{userid}"}}, "traffic.body.u: unknown placeholder {userid}"),
    ({**HTTP, "body": {"a": [1, "{uid}"]}}, "traffic.body.a[1]: unknown placeholder {uid}"),
    ({**HTTP, "path": "/u/{user}"}, "traffic.path: unknown placeholder {user}"),
    ({"kind": "http", "path": "/r"}, "traffic.items: required, a selector"),
    ({**HTTP, "items": "items[*"}, "traffic.items: bad selector 'items[*'"),
    ({**HTTP, "items": 3}, "traffic.items: a selector must be a non-empty string"),
    ({**HTTP, "fallback": "a[*].b", "fallback_ok": 1}, "traffic.fallback: must select one"),
    ({**HTTP, "fallback": "meta.fallback"}, "traffic.fallback_ok: required"),
    ({**HTTP, "fallback": "f", "fallback_ok": [1]}, "traffic.fallback_ok: must be a string"),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m.split(":")[1] for _, m in BAD])
def test_bad_sections_fail_in_one_line_naming_the_key(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        TrafficSpec.from_dict(data, WHERE)
    text = str(info.value)
    assert text.startswith(f"deployment file d.json: {message}"), text
    assert "\n" not in text


GOOD: list[dict[str, Any]] = [
    {},
    {"kind": "chaos-rec", "headers": {"authorization": "Bearer t"}},
    OIP,
    {
        **OIP,
        "version": 3,
        "k_input": "k",
        "user_datatype": "BYTES",
        "fallback_output": "tier",
        "fallback_ok": "none",
    },
    {**OIP, "fallback_parameter": "degraded", "fallback_ok": False, "shape": [1, 1]},
    {**OIP, "protocol": "rest"},
    GRPC,
    {**GRPC, "grpc_url": "[::1]:8001", "headers": {"Authorization": "Bearer t"}},
    {**GRPC, "grpc_url": "triton.svc.cluster.local:8001", "k_input": "k"},
    HTTP,
    {
        **HTTP,
        "method": "GET",
        "path": "/u/{user_id}?k={k}",
        "fallback": "meta.fb",
        "fallback_ok": None,
    },
    {**HTTP, "body": {"user": "{user_id}", "n": "{k}", "q": ["{query}"]}, "headers": {"a": "b"}},
]


@pytest.mark.parametrize("data", GOOD)
def test_to_dict_round_trips_through_json(data: dict[str, Any]) -> None:
    spec = TrafficSpec.from_dict(data, WHERE)
    again = TrafficSpec.from_dict(json.loads(json.dumps(spec.to_dict())), WHERE)
    assert again == spec
    assert set(spec.to_dict()) == {"kind", "headers", *KINDS[spec.kind]}


def test_oip_v2_speaks_rest_unless_told_grpc() -> None:
    assert TrafficSpec.from_dict(OIP, WHERE).protocol == "rest"
    spec = TrafficSpec.from_dict(GRPC, WHERE)
    assert (spec.protocol, spec.grpc_url) == ("grpc", "127.0.0.1:8001")


def test_an_integer_version_is_read_as_its_name() -> None:
    assert TrafficSpec.from_dict({**OIP, "version": 2}, WHERE).version == "2"


def test_the_fallback_marker_is_known_per_kind() -> None:
    marker = {
        "chaos-rec": TrafficSpec.from_dict({}, WHERE),
        "oip-v2 output": TrafficSpec.from_dict(
            {**OIP, "fallback_output": "t", "fallback_ok": "none"}, WHERE
        ),
        "oip-v2 parameter": TrafficSpec.from_dict(
            {**OIP, "fallback_parameter": "t", "fallback_ok": "none"}, WHERE
        ),
        "http": TrafficSpec.from_dict({**HTTP, "fallback": "fb", "fallback_ok": "none"}, WHERE),
    }
    none = [TrafficSpec.from_dict(OIP, WHERE), TrafficSpec.from_dict(HTTP, WHERE)]
    assert all(spec.has_fallback_marker for spec in marker.values())
    assert not any(spec.has_fallback_marker for spec in none)
