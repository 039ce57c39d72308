"""gRPC ModelInfer for oip-v2: the request's tensors, the reply read like REST, the status table.

Pure functions only (no sockets); ``tests/integration/test_traffic_grpc.py`` sends them to the
real model server.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from chaos_rec import backends
from chaos_rec.backends.adapters import AdapterTraffic, TrafficSpec, build_request, parse_answer
from chaos_rec.core.seams import Answer
from chaos_rec.core.target import read_deployment_file
from chaos_rec.errors import ConfigError
from chaos_rec.traffic.grpc_client import OipGrpcClient
from chaos_rec.traffic.grpc_wire import HTTP_STATUS, infer_request, read_reply, response_json
from oip_proto import grpc_predict_v2_pb2 as pb

W = "traffic"
GRPC: dict[str, Any] = {"protocol": "grpc", "grpc_url": "127.0.0.1:8001"}
OIP = TrafficSpec.from_dict(
    {"kind": "oip-v2", "model": "recommender", "items_output": "item_ids", **GRPC}, W
)
OIP_FULL = TrafficSpec.from_dict(
    {"kind": "oip-v2", "model": "recommender", "version": "2", "user_input": "USER",
     "user_datatype": "INT32", "shape": [1, 1], "k_input": "K", "k_datatype": "BYTES",
     "items_output": "ITEMS", "fallback_output": "TIER", "fallback_ok": "none", **GRPC},
    W,
)  # fmt: skip
OIP_PARAM = TrafficSpec.from_dict(
    {"kind": "oip-v2", "model": "m", "items_output": "item_ids",
     "fallback_parameter": "degraded", "fallback_ok": False, **GRPC},
    W,
)  # fmt: skip
Out = pb.ModelInferResponse.InferOutputTensor


def _bytes(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


# --- the request: the REST request's tensors, raw and little-endian ---------------------------


def test_the_minimal_request_is_the_rest_tensor_as_raw_int64() -> None:
    req = infer_request(OIP, 42, 10)
    assert (req.model_name, req.model_version) == ("recommender", "")
    assert [(t.name, t.datatype, list(t.shape)) for t in req.inputs] == [("user_id", "INT64", [1])]
    assert list(req.raw_input_contents) == [(42).to_bytes(8, "little", signed=True)]
    assert not req.inputs[0].HasField("contents")  # raw only, as tritonclient sends
    assert [o.name for o in req.outputs] == ["item_ids"]


def test_the_full_request_has_version_k_and_the_marker_output() -> None:
    req = infer_request(OIP_FULL, 42, 10, "ignored")
    assert (req.model_name, req.model_version) == ("recommender", "2")
    assert [(t.name, t.datatype, list(t.shape)) for t in req.inputs] == [
        ("USER", "INT32", [1, 1]),
        ("K", "BYTES", [1, 1]),
    ]
    assert list(req.raw_input_contents) == [struct.pack("<i", 42), _bytes(b"10")]
    assert [o.name for o in req.outputs] == ["ITEMS", "TIER"]


@pytest.mark.parametrize("datatype", ["INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32",
                                      "UINT16", "BYTES"])  # fmt: skip
def test_every_datatype_carries_the_rest_value(datatype: str) -> None:
    spec = TrafficSpec.from_dict(
        {"kind": "oip-v2", "model": "m", "items_output": "o", "user_datatype": datatype,
         "k_input": "k", "k_datatype": datatype, **GRPC},
        W,
    )  # fmt: skip
    rest = build_request(spec, 7, 5, None).json_body["inputs"]
    req = infer_request(spec, 7, 5)
    assert [(t.name, t.datatype, list(t.shape)) for t in req.inputs] == [
        (t["name"], t["datatype"], t["shape"]) for t in rest
    ]
    for raw, tensor in zip(req.raw_input_contents, rest, strict=True):
        (value,) = tensor["data"]
        if datatype == "BYTES":
            assert raw == _bytes(str(value).encode())
        else:
            width = int(datatype.removeprefix("U").removeprefix("INT")) // 8
            signed = not datatype.startswith("U")
            assert raw == int(value).to_bytes(width, "little", signed=signed)


def test_a_value_the_datatype_cannot_hold_is_one_config_error_line() -> None:
    spec = TrafficSpec.from_dict(
        {"kind": "oip-v2", "model": "m", "items_output": "o", "user_datatype": "INT8", **GRPC}, W
    )
    with pytest.raises(ConfigError) as info:
        infer_request(spec, 300, 5)
    assert str(info.value) == "traffic: input user_id cannot hold [300] as INT8"


# --- the reply: read by parse_answer, as the same reply over REST -----------------------------


def _raw_reply(ids: list[int], tier: str | None = None, **params: pb.InferParameter) -> Any:
    outputs = [Out(name="item_ids", datatype="INT64", shape=[1, len(ids)])]
    raw = [struct.pack(f"<{len(ids)}q", *ids)]
    if tier is not None:
        outputs.append(Out(name="fallback", datatype="BYTES", shape=[1]))
        raw.append(_bytes(tier.encode()))
    return pb.ModelInferResponse(
        model_name="m", outputs=outputs, raw_output_contents=raw, parameters=params
    )


def test_a_raw_reply_reads_as_the_rest_json_of_the_same_reply() -> None:
    reply = _raw_reply([5, 6, 7], "cached_features")
    assert response_json(reply)["outputs"] == [
        {"name": "item_ids", "datatype": "INT64", "shape": [1, 3], "data": [5, 6, 7]},
        {"name": "fallback", "datatype": "BYTES", "shape": [1], "data": ["cached_features"]},
    ]
    spec = TrafficSpec.from_dict(
        {"kind": "oip-v2", "model": "m", "items_output": "item_ids",
         "fallback_output": "fallback", "fallback_ok": "none", **GRPC},
        W,
    )  # fmt: skip
    rest = {"outputs": response_json(reply)["outputs"]}
    assert read_reply(spec, "OK", reply, 2) == parse_answer(spec, 200, rest, 2)
    assert read_reply(spec, "OK", reply, 2) == Answer((5, 6), "cached_features")
    assert read_reply(spec, "OK", _raw_reply([1], "none")) == Answer((1,), "none")


def test_typed_contents_read_like_raw_ones() -> None:
    typed = pb.ModelInferResponse(
        outputs=[
            Out(name="ITEMS", datatype="INT32", shape=[2],
                contents=pb.InferTensorContents(int_contents=[9, 8])),
            Out(name="TIER", datatype="BYTES", shape=[1],
                contents=pb.InferTensorContents(bytes_contents=[b"popular"])),
        ]
    )  # fmt: skip
    assert read_reply(OIP_FULL, "OK", typed) == Answer((9, 8), "popular")
    uint64 = pb.ModelInferResponse(
        outputs=[Out(name="item_ids", datatype="UINT64", shape=[1, 2],
                     contents=pb.InferTensorContents(uint64_contents=[3, 4]))]
    )  # fmt: skip
    assert read_reply(OIP, "OK", uint64) == Answer((3, 4), "none")


def test_ids_sent_as_bytes_strings_read_as_ints() -> None:
    reply = pb.ModelInferResponse(
        outputs=[Out(name="item_ids", datatype="BYTES", shape=[2])],
        raw_output_contents=[_bytes(b"12", b"34")],
    )
    assert read_reply(OIP, "OK", reply) == Answer((12, 34), "none")


@pytest.mark.parametrize(
    ("param", "tier"),
    [
        (pb.InferParameter(bool_param=False), "none"),
        (pb.InferParameter(bool_param=True), "true"),
        (pb.InferParameter(int64_param=0), "0"),
        (pb.InferParameter(string_param="cache"), "cache"),
    ],
)
def test_a_parameter_marker_reads_like_the_json_parameter(param: Any, tier: str) -> None:
    assert read_reply(OIP_PARAM, "OK", _raw_reply([1], degraded=param)) == Answer((1,), tier)


NO_ANSWER: list[tuple[str, TrafficSpec, Any]] = [
    ("non-OK status", OIP, _raw_reply([1])),
    ("no reply", OIP, None),
    ("marker parameter missing", OIP_PARAM, _raw_reply([1])),
    ("marker output missing", OIP_FULL, pb.ModelInferResponse(
        outputs=[Out(name="ITEMS", datatype="INT64", shape=[1])],
        raw_output_contents=[struct.pack("<q", 1)])),
    ("no item output", OIP, pb.ModelInferResponse(
        outputs=[Out(name="scores", datatype="FP32", shape=[1])],
        raw_output_contents=[struct.pack("<f", 0.5)])),
    ("fewer raw contents than outputs", OIP, pb.ModelInferResponse(
        outputs=[Out(name="item_ids", datatype="INT64", shape=[1]),
                 Out(name="fallback", datatype="BYTES", shape=[1])],
        raw_output_contents=[struct.pack("<q", 1)])),
    ("raw bytes that are no INT64s", OIP, pb.ModelInferResponse(
        outputs=[Out(name="item_ids", datatype="INT64", shape=[-1])],
        raw_output_contents=[b"\x01\x02\x03"])),
    ("more values than the shape holds", OIP, pb.ModelInferResponse(
        outputs=[Out(name="item_ids", datatype="INT64", shape=[1])],
        raw_output_contents=[struct.pack("<2q", 1, 2)])),
    ("truncated BYTES", OIP, pb.ModelInferResponse(
        outputs=[Out(name="item_ids", datatype="BYTES", shape=[1])],
        raw_output_contents=[struct.pack("<I", 9) + b"12"])),
    ("BYTES that are not UTF-8", OIP, pb.ModelInferResponse(
        outputs=[Out(name="item_ids", datatype="BYTES", shape=[1])],
        raw_output_contents=[_bytes(b"\xff")])),
    ("float ids", OIP, pb.ModelInferResponse(
        outputs=[Out(name="item_ids", datatype="FP32", shape=[1])],
        raw_output_contents=[struct.pack("<f", 1.5)])),
    ("an unread datatype", OIP, pb.ModelInferResponse(
        outputs=[Out(name="item_ids", datatype="BF16", shape=[1])],
        raw_output_contents=[b"\x00\x00"])),
    ("FP16 has no typed contents", OIP, pb.ModelInferResponse(
        outputs=[Out(name="item_ids", datatype="FP16", shape=[0])])),
]  # fmt: skip


@pytest.mark.parametrize(("why", "spec", "reply"), NO_ANSWER, ids=[w for w, _, _ in NO_ANSWER])
def test_replies_without_an_answer_read_as_none(why: str, spec: TrafficSpec, reply: Any) -> None:
    code = "UNAVAILABLE" if why == "non-OK status" else "OK"
    assert read_reply(spec, code, reply) is None


def test_every_grpc_status_has_an_http_status() -> None:
    assert set(HTTP_STATUS) == {code.name for code in grpc.StatusCode}
    assert HTTP_STATUS["OK"] == 200
    # failures count against availability (5xx), a deadline against the deadline SLO (504)
    assert {HTTP_STATUS[c] for c in ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL")} == {
        503,
        500,
    }
    assert HTTP_STATUS["DEADLINE_EXCEEDED"] == 504


# --- the client and the adapter, without a server ---------------------------------------------


def test_the_client_needs_a_grpc_spec_and_a_positive_timeout() -> None:
    rest = TrafficSpec.from_dict({"kind": "oip-v2", "model": "m", "items_output": "o"}, W)
    with pytest.raises(ConfigError, match='needs an oip-v2 spec with "protocol": "grpc"'):
        OipGrpcClient(rest, 1.0)
    with pytest.raises(ConfigError, match="timeout_s must be positive"):
        OipGrpcClient(OIP, 0)


def test_headers_are_metadata_with_their_secrets_filled_in() -> None:
    headers = {"Authorization": "Bearer ${secret:TOKEN}", "x-team": "recs"}
    spec = TrafficSpec.from_dict({**OIP.to_dict(), "headers": headers}, W)
    client = OipGrpcClient(spec, 1.0, {"TOKEN": "s3cret"})
    assert client._metadata == (("authorization", "Bearer s3cret"), ("x-team", "recs"))
    with pytest.raises(ConfigError) as info:
        OipGrpcClient(spec, 1.0, {"TOKEN": "caf\u00e9"})
    assert str(info.value).startswith("traffic.headers.Authorization: a gRPC metadata value")
    assert "caf" not in str(info.value)  # a secret is never shown


def test_without_grpcio_a_call_is_one_config_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "grpc", None)  # what `import grpc` sees when not installed
    client = OipGrpcClient(OIP, 1.0)
    with pytest.raises(ConfigError) as info:
        client.infer(1, 5)
    text = str(info.value)
    assert text.startswith('traffic "protocol": "grpc" needs the grpcio and protobuf packages')
    assert "\n" not in text


def _deployment_file(tmp_path: Path, traffic: dict[str, Any]) -> Path:
    path = tmp_path / "dep.json"
    path.write_text(json.dumps({"gateway_url": "http://127.0.0.1:9", "traffic": traffic}))
    return path


def test_a_deployment_file_names_grpc_and_its_address(tmp_path: Path) -> None:
    path = _deployment_file(tmp_path, {**OIP.to_dict(), "grpc_url": "[::1]:8001"})
    traffic = backends.traffic(read_deployment_file(path), 1.0)
    assert isinstance(traffic, AdapterTraffic)
    assert (traffic.spec.protocol, traffic.spec.grpc_url) == ("grpc", "[::1]:8001")


@pytest.mark.parametrize(
    ("traffic", "message"),
    [
        ({**OIP.to_dict(), "protocol": "h2"}, "traffic.protocol: 'h2' is not one of"),
        ({**OIP.to_dict(), "grpc_url": "grpc://h:1"}, "traffic.grpc_url: 'grpc://h:1' does not"),
    ],
)
def test_the_schema_refuses_a_bad_protocol_or_address_in_one_line(
    tmp_path: Path, traffic: dict[str, Any], message: str
) -> None:
    path = _deployment_file(tmp_path, traffic)
    with pytest.raises(ConfigError) as info:
        read_deployment_file(path)
    assert str(info.value).startswith(f"deployment file {path}: {message}"), str(info.value)
    assert "\n" not in str(info.value)
