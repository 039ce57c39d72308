"""OIP v2 tensors ↔ core requests/results, shared by the REST and gRPC adapters."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from serving.core import RecRequest, RecResult
from serving.errors import BadRequest

MODEL_NAME = "recommender"
INPUTS = (("user_id", "INT64", [-1]), ("k", "INT64", [1]), ("query", "BYTES", [-1]))
OUTPUTS = (
    ("item_ids", "INT64", [-1, -1]),
    ("scores", "FP32", [-1, -1]),
    ("fallback", "BYTES", [-1]),
)
_EXPECTED = {"user_id": "INT64", "k": "INT64", "query": "BYTES"}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _check_dtype(name: str, datatype: str) -> None:
    want = _EXPECTED.get(name)
    if want is not None and datatype != want:
        raise BadRequest(f"input {name!r} must be {want}, got {datatype}")


@dataclass(frozen=True)
class Tensor:
    """A decoded input tensor: ints for INT64, bytes for BYTES."""

    name: str
    datatype: str
    shape: list[int]
    data: list[int] | list[bytes]


@dataclass(frozen=True)
class OutTensor:
    """An output tensor ready for either adapter."""

    name: str
    datatype: str
    shape: list[int]
    data: list[int] | list[float] | list[str]

    def raw(self) -> bytes:
        """Raw little-endian bytes (BYTES = 4-byte length-prefixed elements)."""
        if self.datatype == "INT64":
            return np.asarray(self.data, dtype="<i8").tobytes()
        if self.datatype == "FP32":
            return np.asarray(self.data, dtype="<f4").tobytes()
        return bytes_raw([str(s).encode() for s in self.data])


def bytes_raw(items: Sequence[bytes]) -> bytes:
    """Serialise BYTES elements the Triton way."""
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def parse_raw(name: str, datatype: str, shape: list[int], raw: bytes) -> Tensor:
    """Decode one tensor sent as raw bytes (binary extension, gRPC raw_input_contents)."""
    _check_dtype(name, datatype)
    count = element_count(name, shape)
    if datatype == "INT64":
        if len(raw) != 8 * count:
            raise BadRequest(f"input {name!r}: {len(raw)} bytes do not hold {count} INT64 values")
        return Tensor(name, datatype, shape, np.frombuffer(raw, dtype="<i8").tolist())
    if datatype == "BYTES":
        items: list[bytes] = []
        pos = 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise BadRequest(f"input {name!r}: truncated BYTES element length")
            (n,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + n > len(raw):
                raise BadRequest(f"input {name!r}: truncated BYTES element")
            items.append(raw[pos : pos + n])
            pos += n
        if len(items) != count:
            raise BadRequest(f"input {name!r}: {len(items)} elements for shape {shape}")
        return Tensor(name, datatype, shape, items)
    raise BadRequest(f"input {name!r}: datatype {datatype} not supported (expected INT64 or BYTES)")


def element_count(name: str, shape: Sequence[int]) -> int:
    """Elements a shape holds, or BadRequest unless it is a list of non-negative ints."""
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise BadRequest(f"input {name!r}: shape must be a list of non-negative ints")
    return math.prod(shape)


def parse_json_data(name: str, datatype: str, shape: list[int], data: object) -> Tensor:
    """Decode one tensor given as JSON `data` (flat or nested lists)."""
    _check_dtype(name, datatype)
    count = element_count(name, shape)
    flat = _flatten(data)
    if len(flat) != count:
        raise BadRequest(f"input {name!r}: {len(flat)} values for shape {shape}")
    if datatype == "INT64":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
            raise BadRequest(f"input {name!r}: INT64 data must be integers")
        if not all(_INT64_MIN <= v <= _INT64_MAX for v in flat):  # type: ignore[operator]
            raise BadRequest(f"input {name!r}: a value does not fit INT64")
        return Tensor(name, datatype, shape, [int(v) for v in flat])  # type: ignore[call-overload]
    if datatype == "BYTES":
        if not all(isinstance(v, str) for v in flat):
            raise BadRequest(f"input {name!r}: BYTES data must be strings")
        try:
            return Tensor(name, datatype, shape, [str(v).encode() for v in flat])
        except UnicodeEncodeError as exc:  # JSON may carry a lone surrogate ("\ud800")
            raise BadRequest(
                f"input {name!r}: BYTES data is not valid Unicode ({exc.reason})"
            ) from exc
    raise BadRequest(f"input {name!r}: datatype {datatype} not supported (expected INT64 or BYTES)")


def _flatten(data: object) -> list[object]:
    """Row-major values of flat or nested lists (iterative: any depth json.loads allows)."""
    if not isinstance(data, list):
        raise BadRequest("tensor data must be a JSON list")
    out: list[object] = []
    stack: list[Iterator[object]] = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def to_requests(tensors: Mapping[str, Tensor], default_k: int = 10) -> list[RecRequest]:
    """Validate the recommender's inputs and build one request per batch row."""
    for name, t in tensors.items():
        if name not in _EXPECTED:
            raise BadRequest(f"unknown input {name!r} (inputs: user_id, k, query)")
        if t.datatype != _EXPECTED[name]:
            raise BadRequest(f"input {name!r} must be {_EXPECTED[name]}, got {t.datatype}")
    if "user_id" not in tensors:
        raise BadRequest("missing input 'user_id' (INT64 [B])")
    users = tensors["user_id"]
    if len(users.shape) not in (1, 2) or (len(users.shape) == 2 and users.shape[1] != 1):
        raise BadRequest(f"input 'user_id' must have shape [B] or [B,1], got {users.shape}")
    if not users.data:
        raise BadRequest("input 'user_id' is empty")
    k = default_k
    if "k" in tensors:
        if len(tensors["k"].data) != 1:
            raise BadRequest(f"input 'k' must have shape [1], got {tensors['k'].shape}")
        kv = tensors["k"].data[0]
        assert isinstance(kv, int)
        k = kv
    queries: list[str | None] = [None] * len(users.data)
    if "query" in tensors:
        q = tensors["query"]
        if len(q.data) != len(users.data):
            raise BadRequest(
                f"input 'query' has {len(q.data)} elements for {len(users.data)} users"
            )
        queries = []
        for raw in q.data:
            assert isinstance(raw, bytes)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadRequest(f"input 'query' is not valid UTF-8 ({exc.reason})") from exc
            queries.append(text or None)
    ids = [u for u in users.data if isinstance(u, int)]
    return [RecRequest(u, k, q) for u, q in zip(ids, queries, strict=True)]


def to_outputs(results: Sequence[RecResult], k: int) -> list[OutTensor]:
    """Three output tensors; rows shorter than k are padded with -1 / 0.0."""
    b = len(results)
    ids: list[int] = []
    scores: list[float] = []
    for r in results:
        pad = k - len(r.item_ids)
        ids.extend(r.item_ids + [-1] * pad)
        scores.extend(r.scores + [0.0] * pad)
    return [
        OutTensor("item_ids", "INT64", [b, k], ids),
        OutTensor("scores", "FP32", [b, k], scores),
        OutTensor("fallback", "BYTES", [b], [r.tier for r in results]),
    ]


def model_metadata(model_version: str) -> dict[str, object]:
    """OIP v2 model metadata."""
    return {
        "name": MODEL_NAME,
        "versions": [model_version] if model_version else [],
        "platform": "pytorch_recommender",
        "inputs": [{"name": n, "datatype": d, "shape": s} for n, d, s in INPUTS],
        "outputs": [{"name": n, "datatype": d, "shape": s} for n, d, s in OUTPUTS],
    }
