"""OIP v2 tensor decoding/encoding and input validation."""

from __future__ import annotations

import struct

import pytest

from serving.codec import OutTensor, bytes_raw, parse_json_data, parse_raw, to_requests
from serving.errors import BadRequest


def test_raw_int64_and_bytes_round_trip() -> None:
    u = parse_raw("user_id", "INT64", [2], struct.pack("<2q", 4, 9))
    q = parse_raw("query", "BYTES", [2], bytes_raw([b"a", "é".encode()]))
    reqs = to_requests({"user_id": u, "query": q})
    assert [(r.user_id, r.k, r.query) for r in reqs] == [(4, 10, "a"), (9, 10, "é")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("user_id", "INT64", [2], b"\x00" * 8), "do not hold 2"),
        (("query", "BYTES", [1], b"\x05\x00\x00\x00ab"), "truncated"),
        (("user_id", "FP32", [1], b"\x00" * 4), "must be INT64"),
        (("user_id", "INT64", [-1], b""), "non-negative"),
    ],
)
def test_raw_errors(args: tuple[str, str, list[int], bytes], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_raw(*args)


def test_json_and_request_errors() -> None:
    with pytest.raises(BadRequest, match="integers"):
        parse_json_data("user_id", "INT64", [1], ["1"])
    u = parse_json_data("user_id", "INT64", [2, 1], [[1], [2]])
    with pytest.raises(BadRequest, match="2 users"):
        to_requests({"user_id": u, "query": parse_json_data("query", "BYTES", [1], ["x"])})
    with pytest.raises(BadRequest, match="UTF-8"):
        to_requests({"user_id": parse_json_data("user_id", "INT64", [1], [1]),
                     "query": parse_raw("query", "BYTES", [1], bytes_raw([b"\xff"]))})  # fmt: skip
    with pytest.raises(BadRequest, match="shape \\[1\\]"):
        to_requests({"user_id": u, "k": parse_json_data("k", "INT64", [2], [1, 2])})


def test_out_tensor_raw_layout() -> None:
    assert OutTensor("f", "BYTES", [1], ["none"]).raw() == b"\x04\x00\x00\x00none"
    assert OutTensor("i", "INT64", [1], [3]).raw() == struct.pack("<q", 3)


def test_json_int64_out_of_range_and_lone_surrogates_are_bad_requests() -> None:
    # found by fuzzing: an INT64 past 64 bits was accepted, a lone surrogate was a 500
    for big in (2**63, -(2**63) - 1, 10**30):
        with pytest.raises(BadRequest, match="does not fit INT64"):
            parse_json_data("user_id", "INT64", [1], [big])
    assert parse_json_data("user_id", "INT64", [2], [2**63 - 1, -(2**63)]).data == [
        2**63 - 1,
        -(2**63),
    ]
    with pytest.raises(BadRequest, match="not valid Unicode"):
        parse_json_data("query", "BYTES", [1], ["\ud800"])


def test_json_data_nested_deeper_than_the_recursion_limit_is_flattened() -> None:
    data: object = [[1, [2]], [], 3]
    for _ in range(5000):  # iterative: no RecursionError at any depth json.loads hands over
        data = [data]
    assert parse_json_data("user_id", "INT64", [3], data).data == [1, 2, 3]
