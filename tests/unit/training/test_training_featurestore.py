"""Key layout and value encoding."""

from __future__ import annotations

import pytest

from training.errors import StoreError
from training.featurestore import META_KEY, UserFeatures, decode_user, digest, encode_user, user_key


def test_key_layout() -> None:
    assert user_key(42) == "cr:v1:user:42"
    assert META_KEY == "cr:v1:meta"


def test_round_trip_and_canonical_bytes() -> None:
    f = UserFeatures(user_id=7, history=[3, 1, 2], top_category=4, ts=99, n=3, age=None, gender="F")
    raw = encode_user(f)
    assert raw == b'{"age":null,"c":4,"gender":"F","h":[3,1,2],"n":3,"ts":99}'
    assert decode_user(raw, 7) == f


@pytest.mark.parametrize(
    "raw", [b"not json", b"[]", b'{"h":[1]}', b'{"h":["x"],"c":0,"ts":0,"n":0}']
)
def test_corrupt_values_raise_store_error(raw: bytes) -> None:
    with pytest.raises(StoreError, match="user 5"):
        decode_user(raw, 5)


def test_digest_depends_on_order_and_content() -> None:
    a, b = b"a", b"b"
    assert digest([a, b]) != digest([b, a])
    assert digest([a, b]) == digest(iter([a, b]))
    assert len(digest([])) == 64
