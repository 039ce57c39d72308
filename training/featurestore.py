"""Feature-store key layout and value encoding: the single source of truth (no heavy imports).

Layout (namespace ``cr:v1:``):

- ``cr:v1:user:{user_id}`` → JSON ``{"h": [...], "c": int, "ts": int, "n": int,
  "age": int|null, "gender": str|null}`` (history = external item ids, oldest first,
  at most ``max_history``), written with an optional TTL.
- ``cr:v1:meta`` → hash ``model_version``, ``dataset``, ``n_users``, ``materialized_at``,
  ``digest`` (sha256 over all encoded user values in user-id order, see :func:`digest`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from training.errors import StoreError

__all__ = [
    "META_KEY",
    "PREFIX",
    "USER_PREFIX",
    "UserFeatures",
    "decode_user",
    "digest",
    "encode_user",
    "user_key",
]

PREFIX = "cr:v1:"
USER_PREFIX = PREFIX + "user:"
META_KEY = PREFIX + "meta"


@dataclass(frozen=True)
class UserFeatures:
    """Online features of one user, as stored under ``cr:v1:user:{id}``."""

    user_id: int
    history: list[int] = field(default_factory=list)
    top_category: int = -1
    ts: int = 0
    n: int = 0
    age: int | None = None
    gender: str | None = None


def user_key(user_id: int) -> str:
    """Redis key of one user's features."""
    return f"{USER_PREFIX}{int(user_id)}"


def encode_user(features: UserFeatures) -> bytes:
    """Encode a user's features as the canonical compact JSON value (bytes)."""
    value = {
        "h": [int(i) for i in features.history],
        "c": int(features.top_category),
        "ts": int(features.ts),
        "n": int(features.n),
        "age": None if features.age is None else int(features.age),
        "gender": features.gender,
    }
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def decode_user(raw: bytes | str, user_id: int = -1) -> UserFeatures:
    """Decode a stored value; raise StoreError when it is not a valid user record."""
    try:
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise TypeError("not an object")
        history = value["h"]
        if not isinstance(history, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in history
        ):
            raise TypeError("'h' must be a list of ints")
        age = value.get("age")
        gender = value.get("gender")
        return UserFeatures(
            user_id=int(user_id),
            history=list(history),
            top_category=int(value["c"]),
            ts=int(value["ts"]),
            n=int(value["n"]),
            age=None if age is None else int(age),
            gender=None if gender is None else str(gender),
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"corrupt feature value for user {user_id}: {exc}") from exc


def digest(encoded_values: Iterable[bytes]) -> str:
    """sha256 over encoded user values given in ascending user-id order (each followed by \\n)."""
    h = hashlib.sha256()
    for value in encoded_values:
        h.update(value)
        h.update(b"\n")
    return h.hexdigest()
