"""Toxic definitions as the Toxiproxy API sees them: types, attributes, parsing, validation."""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chaos_rec.errors import ConfigError, ProxyRequestError

__all__ = [
    "MAX_ATTRIBUTE",
    "STREAMS",
    "TOXIC_ATTRIBUTES",
    "ToxicSpec",
    "bad_body",
    "check_toxic",
    "parse_toxic",
    "update_toxic",
]

STREAMS = ("upstream", "downstream")

# type -> attribute names (all int, all >= 0), in the order the real server reports them
TOXIC_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
    "noop": (),
}

MAX_ATTRIBUTE = 2**63 - 1  # attributes are Go int64s in the real server


def bad_body(detail: str) -> ProxyRequestError:
    """The real server's 400 ``bad request body: …``."""
    return ProxyRequestError(f"bad request body: {detail}", 400)


def rng_for(seed: int | None, *parts: str) -> random.Random:
    """An RNG of its own: reproducible from (seed, parts) when a seed is given."""
    if seed is None:
        return random.Random()
    key = "\x00".join((str(seed), *parts)).encode()
    return random.Random(zlib.crc32(key) ^ (seed << 32))


@dataclass
class ToxicSpec:
    """One toxic of a proxy; ``attributes`` are read live by every connection that runs it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int]
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    generation: int = 0

    def to_json(self) -> dict[str, Any]:
        """The toxic as the API shows it."""
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }

    def draw(self) -> bool:
        """Decide (once per connection) whether this toxic acts on it."""
        if self.toxicity <= 0.0:
            return False
        if self.toxicity >= 1.0:
            return True
        return self.rng.random() < self.toxicity


def _int_attr(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_body(f"attribute {name} must be an integer, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise bad_body(f"attribute {name} must be an integer, got {value!r}")
        value = int(value)
    if value < 0 or value > MAX_ATTRIBUTE:
        raise bad_body(f"attribute {name} must be >= 0, got {value}")
    return int(value)


def _attributes(type_: str, raw: Any, base: dict[str, int]) -> dict[str, int]:
    """Merge raw attributes onto base; unknown keys are ignored like the real server does."""
    if raw is None:
        return dict(base)
    if not isinstance(raw, dict):
        raise bad_body(f"attributes must be an object, got {type(raw).__name__}")
    out = dict(base)
    for key in TOXIC_ATTRIBUTES[type_]:
        if key in raw:
            out[key] = _int_attr(key, raw[key])
    return out


def _toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_body(f"toxicity must be a number, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise bad_body(f"toxicity must be between 0 and 1, got {value}")
    return float(value)


def _str_field(body: dict[str, Any], key: str, default: str) -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_body(f"{key} must be a string, got {value!r}")
    return value


def parse_toxic(body: Any, *, seed: int | None, proxy: str) -> ToxicSpec:
    """Build a toxic from a create request, with the real server's checks and defaults."""
    if not isinstance(body, dict):
        raise bad_body("expected a JSON object")
    stream = _str_field(body, "stream", "downstream").lower()  # as the real ParseDirection
    type_ = _str_field(body, "type", "")
    if stream not in STREAMS:
        raise ProxyRequestError("stream was invalid, can be either upstream or downstream", 400)
    name = _str_field(body, "name", "") or f"{type_}_{stream}"
    if type_ not in TOXIC_ATTRIBUTES:
        raise ProxyRequestError("invalid toxic type", 400)
    toxicity = _toxicity(body["toxicity"]) if body.get("toxicity") is not None else 1.0
    # every attribute defaults to 0, and 0 is accepted, as the real server does (a slicer of
    # average_size 0 sends 1-byte pieces)
    attrs = _attributes(type_, body.get("attributes"), dict.fromkeys(TOXIC_ATTRIBUTES[type_], 0))
    return ToxicSpec(
        name=name,
        type=type_,
        stream=stream,
        toxicity=toxicity,
        attributes=attrs,
        rng=rng_for(seed, proxy, name),
    )


def update_toxic(spec: ToxicSpec, body: Any) -> tuple[dict[str, int], float]:
    """Validate an update (attributes merge, toxicity); returns the new values, changes nothing."""
    if not isinstance(body, dict):
        raise bad_body("expected a JSON object")
    attrs = _attributes(spec.type, body.get("attributes"), spec.attributes)
    toxicity = spec.toxicity
    if body.get("toxicity") is not None:
        toxicity = _toxicity(body["toxicity"])
    return attrs, toxicity


def check_toxic(what: str, kind: str, attributes: Any, stream: str, toxicity: Any) -> None:
    """A client's check of a toxic before it asks any fault proxy for one: the server's checks,
    and one stricter (an attribute the type does not have is refused; servers ignore it, so a
    typo would add a toxic that does nothing). ConfigError, one line starting with ``what``."""
    if kind not in TOXIC_ATTRIBUTES:
        raise ConfigError(
            f"{what}: unknown toxic type {kind!r}: use one of {', '.join(TOXIC_ATTRIBUTES)}"
        )
    if stream not in STREAMS:
        raise ConfigError(f"{what}: stream must be upstream or downstream, got {stream!r}")
    if isinstance(attributes, Mapping):
        unknown = sorted(str(k) for k in set(attributes) - set(TOXIC_ATTRIBUTES[kind]))
        if unknown:
            known = ", ".join(TOXIC_ATTRIBUTES[kind]) or "none"
            raise ConfigError(f"{what} {kind}: unknown attribute {unknown[0]!r} (known: {known})")
        attributes = dict(attributes)
    body = {"type": kind, "stream": stream, "toxicity": toxicity, "attributes": attributes}
    try:
        parse_toxic(body, seed=None, proxy="")
    except ProxyRequestError as exc:
        detail = str(exc).removeprefix("bad request body: ")
        raise ConfigError(f"{what} {kind}: {detail}") from exc
