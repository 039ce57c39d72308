"""Pure ModelInfer request building and answer reading for an ``oip-v2`` spec over gRPC (no I/O).

One copy of each fact: :func:`infer_request` encodes the tensors that
:func:`~chaos_rec.traffic.wire.build_request` puts in the REST body (same names, datatypes,
shapes and values) as ``raw_input_contents``, little-endian, as tritonclient always does; and
:func:`read_reply` turns a ``ModelInferResponse`` (``raw_output_contents`` or the typed
``contents``) into the REST JSON shape and hands it to
:func:`~chaos_rec.traffic.wire.parse_answer`, so REST and gRPC answers are read by the same
code. A non-OK status is no answer, like a non-200. :data:`HTTP_STATUS` gives each gRPC status
the HTTP status that the load timeline records for it.

Needs ``protobuf`` (the messages in :mod:`oip_proto.grpc_predict_v2_pb2`), not ``grpcio``; the
I/O is in :mod:`chaos_rec.traffic.grpc_client`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

from chaos_rec.core.seams import Answer
from chaos_rec.errors import ConfigError
from chaos_rec.traffic.selector import NoMatch
from chaos_rec.traffic.spec import TrafficSpec
from chaos_rec.traffic.wire import build_request, parse_answer
from oip_proto import grpc_predict_v2_pb2 as pb

__all__ = ["HTTP_STATUS", "MODEL_INFER", "infer_request", "read_reply", "response_json"]

MODEL_INFER: Final = "/inference.GRPCInferenceService/ModelInfer"

# gRPC status name -> the HTTP status recorded for it: google.rpc.Code's HTTP mapping, except
# RESOURCE_EXHAUSTED -> 503, the status Triton's and KServe's REST endpoints give the same
# overload (so shedding counts against availability over either protocol)
HTTP_STATUS: Final[Mapping[str, int]] = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 503,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
}

# fixed-size datatype -> struct code (little-endian, one element)
_FIXED: Final[Mapping[str, str]] = {
    "BOOL": "?",
    "UINT8": "B",
    "UINT16": "H",
    "UINT32": "I",
    "UINT64": "Q",
    "INT8": "b",
    "INT16": "h",
    "INT32": "i",
    "INT64": "q",
    "FP16": "e",
    "FP32": "f",
    "FP64": "d",
}
# datatype -> the InferTensorContents field that holds it when sent typed
_TYPED: Final[Mapping[str, str]] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def _raw(name: str, datatype: str, data: Sequence[Any]) -> bytes:
    """One input tensor's raw little-endian bytes (BYTES: 4-byte length-prefixed elements)."""
    if datatype == "BYTES":
        items = [str(v).encode() for v in data]
        return b"".join(struct.pack("<I", len(b)) + b for b in items)
    try:
        return struct.pack(f"<{len(data)}{_FIXED[datatype]}", *data)
    except struct.error as exc:
        raise ConfigError(f"traffic: input {name} cannot hold {list(data)} as {datatype}") from exc


def infer_request(
    spec: TrafficSpec, user_id: int, k: int, query: str | None = None
) -> pb.ModelInferRequest:
    """The ModelInfer request with the tensors of the REST request for the same user and k.

    A value its datatype cannot hold (a user id above 127 as INT8) is a ConfigError.
    """
    body = build_request(spec, user_id, k, query).json_body
    inputs = [
        pb.ModelInferRequest.InferInputTensor(
            name=t["name"], datatype=t["datatype"], shape=t["shape"]
        )
        for t in body["inputs"]
    ]
    raw = [_raw(t["name"], t["datatype"], t["data"]) for t in body["inputs"]]
    outputs = [
        pb.ModelInferRequest.InferRequestedOutputTensor(name=o["name"]) for o in body["outputs"]
    ]
    return pb.ModelInferRequest(
        model_name=spec.model or "",
        model_version=spec.version or "",
        inputs=inputs,
        outputs=outputs,
        raw_input_contents=raw,
    )


def _count(out: pb.ModelInferResponse.InferOutputTensor) -> int | None:
    """Elements the output's shape holds (None when the shape does not say)."""
    n = 1
    for d in out.shape:
        if d < 0:
            return None
        n *= d
    return n


def _decode_raw(out: pb.ModelInferResponse.InferOutputTensor, raw: bytes) -> list[Any]:
    if out.datatype == "BYTES":
        items: list[Any] = []
        pos = 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise NoMatch(f"output {out.name}: truncated BYTES length")
            (n,) = struct.unpack_from("<I", raw, pos)
            if pos + 4 + n > len(raw):
                raise NoMatch(f"output {out.name}: truncated BYTES element")
            items.append(_text(out.name, raw[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        return items
    code = _FIXED.get(out.datatype)
    if code is None:
        raise NoMatch(f"output {out.name}: datatype {out.datatype!r} is not read")
    size = struct.calcsize(f"<{code}")
    if len(raw) % size:
        raise NoMatch(f"output {out.name}: {len(raw)} bytes are no {out.datatype} values")
    return list(struct.unpack(f"<{len(raw) // size}{code}", raw))


def _decode_typed(out: pb.ModelInferResponse.InferOutputTensor) -> list[Any]:
    field = _TYPED.get(out.datatype)
    if field is None:
        raise NoMatch(f"output {out.name}: datatype {out.datatype!r} has no typed contents")
    values = list(getattr(out.contents, field))
    return [_text(out.name, v) for v in values] if out.datatype == "BYTES" else values


def _text(name: str, value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoMatch(f"output {name}: a BYTES element is not UTF-8") from exc


def _parameter(param: pb.InferParameter) -> Any:
    which = param.WhichOneof("parameter_choice")
    return None if which is None else getattr(param, which)


def response_json(resp: pb.ModelInferResponse) -> dict[str, Any]:
    """The response in the REST JSON shape (``outputs[].data`` flat); NoMatch if malformed."""
    raw = list(resp.raw_output_contents)
    if raw and len(raw) != len(resp.outputs):
        raise NoMatch(f"{len(raw)} raw_output_contents for {len(resp.outputs)} outputs")
    outputs = []
    for i, out in enumerate(resp.outputs):
        data = _decode_raw(out, raw[i]) if raw else _decode_typed(out)
        count = _count(out)
        if count is not None and count != len(data):
            raise NoMatch(f"output {out.name}: {len(data)} values for shape {list(out.shape)}")
        outputs.append(
            {"name": out.name, "datatype": out.datatype, "shape": list(out.shape), "data": data}
        )
    return {
        "model_name": resp.model_name,
        "model_version": resp.model_version,
        "id": resp.id,
        "parameters": {key: _parameter(p) for key, p in resp.parameters.items()},
        "outputs": outputs,
    }


def read_reply(
    spec: TrafficSpec, code: str, resp: pb.ModelInferResponse | None, k: int | None = None
) -> Answer | None:
    """The answer in a ModelInfer reply with status ``code`` (a ``grpc.StatusCode`` name); None
    unless OK with items (and marker), as :func:`~chaos_rec.traffic.wire.parse_answer` reads
    them in the same reply over REST."""
    if code != "OK" or resp is None:
        return None
    try:
        body = response_json(resp)
    except NoMatch:
        return None
    return parse_answer(spec, HTTP_STATUS["OK"], body, k)
