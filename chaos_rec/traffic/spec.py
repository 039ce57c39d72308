"""The traffic adapter's spec: which API a deployment speaks, as a serialisable frozen value.

The deployment file's ``traffic`` section becomes a :class:`TrafficSpec` in
:meth:`TrafficSpec.from_dict`, which names the bad key in one line
(``deployment file X: traffic.items: ...``); :meth:`TrafficSpec.to_dict` gives back a dict
that ``from_dict`` reads to an equal spec (the Locust subprocess gets it as JSON).

Every kind takes ``headers`` (name -> string). ``oip-v2`` sends the user id (and, with
``k_input``, k) as a named tensor of ``shape`` [1] ([1, 1] for a model with a batch
dimension) and reads item ids from the output named ``items_output``; ``http`` fills a
template: in ``path`` and in the strings of ``body``, ``{user_id}``, ``{k}`` and ``{query}``
are replaced (a string that is exactly ``"{user_id}"`` or ``"{k}"`` becomes the integer,
exactly ``"{query}"`` the query or null; inside a longer string no query is ""); ``items``
and ``fallback`` are selectors (:mod:`.selector`). A fallback marker (``fallback_output``,
``fallback_parameter`` or ``fallback``) needs ``fallback_ok``: the value that means the
model answered; any other value is the answer's tier.

``oip-v2`` speaks REST by default (``"protocol": "rest"``: POST ``/v2/models/{model}/infer``
below the deployment's ``gateway_url``). ``"protocol": "grpc"`` sends the same tensors as
``inference.GRPCInferenceService/ModelInfer`` to ``grpc_url``, the gRPC address as
``host:port`` (what tritonclient's gRPC client takes, e.g. ``"127.0.0.1:8001"``; plaintext,
no TLS), with the headers as gRPC metadata (names lower-cased, so they must be letters,
digits, ``-``, ``_`` or ``.``); :mod:`.grpc_wire` builds the request and reads the answer
through the same parsing as REST. ``grpc_url`` is required with ``grpc`` and refused without.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from chaos_rec.core.secrets import secret_names
from chaos_rec.errors import ConfigError
from chaos_rec.traffic.selector import compile_selector

__all__ = ["KINDS", "OIP_DATATYPES", "PLACEHOLDERS", "PROTOCOLS", "TrafficSpec"]

# kind -> the keys it takes besides ``kind`` and ``headers``
KINDS: Final[Mapping[str, tuple[str, ...]]] = {
    "chaos-rec": (),
    "oip-v2": (
        "model",
        "version",
        "user_input",
        "user_datatype",
        "shape",
        "k_input",
        "k_datatype",
        "items_output",
        "fallback_output",
        "fallback_parameter",
        "fallback_ok",
        "protocol",
        "grpc_url",
    ),
    "http": ("method", "path", "body", "items", "fallback", "fallback_ok"),
}
# OIP v2 tensor datatypes a user id or k can be sent as (BYTES: the decimal string)
OIP_DATATYPES: Final = ("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "BYTES")
PLACEHOLDERS: Final = ("user_id", "k", "query")
PROTOCOLS: Final = ("rest", "grpc")  # how an oip-v2 spec reaches the model server
METHODS: Final = ("GET", "POST", "PUT", "PATCH")
_PLACEHOLDER: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME: Final = re.compile(r"[A-Za-z0-9_.-]+")
# host:port, the host a DNS name, an IPv4 address or a bracketed IPv6 address
_GRPC_URL: Final = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})")


@dataclass(frozen=True)
class TrafficSpec:
    """How to ask a deployment for recommendations and read its answer (one API kind)."""

    kind: str = "chaos-rec"
    headers: tuple[tuple[str, str], ...] = ()
    # oip-v2
    model: str | None = None
    version: str | None = None
    user_input: str = "user_id"
    user_datatype: str = "INT64"
    shape: tuple[int, ...] = (1,)  # of each input tensor; [1, 1] for a model with a batch dim
    k_input: str | None = None
    k_datatype: str = "INT64"
    items_output: str | None = None
    fallback_output: str | None = None
    fallback_parameter: str | None = None
    protocol: str = "rest"  # or "grpc": ModelInfer to grpc_url
    grpc_url: str | None = None  # host:port
    # http
    method: str = "POST"
    path: str | None = None
    body: Any = field(default=None, hash=False)
    items: str | None = None
    fallback: str | None = None
    # oip-v2 and http: the marker's value that means the model answered
    fallback_ok: Any = field(default=None, hash=False)

    @property
    def has_fallback_marker(self) -> bool:
        """True when the adapter can tell a degraded answer from the model's."""
        if self.kind == "chaos-rec":
            return True
        if self.kind == "oip-v2":
            return bool(self.fallback_output or self.fallback_parameter)
        return self.fallback is not None

    @property
    def secret_names(self) -> list[str]:
        """The secrets its headers refer to (``${secret:NAME}``)."""
        return secret_names(value for _, value in self.headers)

    @classmethod
    def from_dict(cls, data: object, where: str) -> TrafficSpec:
        """Validate a ``traffic`` section; one ConfigError line ``<where>.<key>: ...`` if bad."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: must be a mapping with a 'kind', got {data!r}")
        kind = data.get("kind", "chaos-rec")
        if kind not in KINDS:
            raise ConfigError(f"{where}.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
        known = ("kind", "headers", *KINDS[kind])
        for key in data:
            if key not in known:
                raise ConfigError(
                    f"{where}.{key}: unknown key for kind {kind} (known: {', '.join(known)})"
                )
        headers = _headers(data.get("headers", {}), f"{where}.headers")
        values = {key: data[key] for key in KINDS[kind] if key in data}
        check = _check_oip if kind == "oip-v2" else _check_http if kind == "http" else None
        if check is not None:
            check(values, where)
        if values.get("protocol") == "grpc":
            _metadata_names(headers, f"{where}.headers")
        return cls(kind=kind, headers=headers, **values)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON data (what :meth:`from_dict` reads back to an equal spec)."""
        out: dict[str, Any] = {"kind": self.kind, "headers": dict(self.headers)}
        for key in KINDS[self.kind]:
            value = getattr(self, key)
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


def _headers(value: object, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"{where}: must map header names to strings, got {value!r}")
    return tuple(value.items())


def _string(values: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> None:
    value = values.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{where}.{key}: required for this kind")
        return
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ConfigError(
            f"{where}.{key}: must be a name of letters, digits, '_', '-' or '.', got {value!r}"
        )


def _fallback_ok(values: Mapping[str, Any], marker: bool, where: str) -> None:
    if marker and "fallback_ok" not in values:
        raise ConfigError(
            f"{where}.fallback_ok: required with a fallback marker (the value meaning "
            'the model answered, e.g. "none" or false)'
        )
    if not marker and values.get("fallback_ok") is not None:
        raise ConfigError(f"{where}.fallback_ok: given without a fallback marker to compare")
    if isinstance(values.get("fallback_ok"), (dict, list)):
        raise ConfigError(f"{where}.fallback_ok: must be a string, number, boolean or null")


def _check_oip(values: dict[str, Any], where: str) -> None:
    if isinstance(values.get("version"), int) and not isinstance(values["version"], bool):
        values["version"] = str(values["version"])  # `version: 1` in a YAML/JSON file
    _string(values, "model", where, required=True)
    _string(values, "items_output", where, required=True)
    for key in ("version", "user_input", "k_input", "fallback_output", "fallback_parameter"):
        _string(values, key, where)
    for key in ("user_datatype", "k_datatype"):
        if key in values and values[key] not in OIP_DATATYPES:
            raise ConfigError(
                f"{where}.{key}: must be one of {', '.join(OIP_DATATYPES)}, got {values[key]!r}"
            )
    if "shape" in values:
        shape = values["shape"]
        if (
            not isinstance(shape, list)
            or not shape
            or any(type(d) is not int or d != 1 for d in shape)
        ):
            raise ConfigError(
                f"{where}.shape: must be a list of 1s (one element: [1], or [1, 1] with a "
                f"batch dimension), got {shape!r}"
            )
        values["shape"] = tuple(shape)
    if values.get("fallback_output") and values.get("fallback_parameter"):
        raise ConfigError(
            f"{where}.fallback_parameter: give fallback_output or fallback_parameter, not both"
        )
    marker = bool(values.get("fallback_output") or values.get("fallback_parameter"))
    _fallback_ok(values, marker, where)
    _protocol(values, where)


def _protocol(values: dict[str, Any], where: str) -> None:
    """``protocol`` is rest or grpc; ``grpc_url`` (host:port) comes with grpc and only then."""
    protocol = values.setdefault("protocol", "rest")
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"{where}.protocol: must be one of {', '.join(PROTOCOLS)}, got {protocol!r}"
        )
    url = values.get("grpc_url")
    if protocol == "rest":
        if url is not None:
            raise ConfigError(f'{where}.grpc_url: given without "protocol": "grpc"')
        return
    if url is None:
        raise ConfigError(
            f'{where}.grpc_url: required with "protocol": "grpc" (host:port, e.g. "127.0.0.1:8001")'
        )
    match = _GRPC_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise ConfigError(
            f'{where}.grpc_url: must be host:port (e.g. "127.0.0.1:8001", no scheme), got {url!r}'
        )


def _metadata_names(headers: tuple[tuple[str, str], ...], where: str) -> None:
    """Headers sent as gRPC metadata: names that lower-case to legal metadata keys."""
    for name, value in headers:
        if not _NAME.fullmatch(name) or name.lower().endswith("-bin"):
            raise ConfigError(
                f"{where}: a gRPC metadata name is letters, digits, '-', '_' or '.' "
                f"(not ending in -bin), got {name!r}"
            )
        if not value.isascii() or not value.isprintable():
            raise ConfigError(f"{where}.{name}: a gRPC metadata value is printable ASCII")


def _check_http(values: dict[str, Any], where: str) -> None:
    method = values.setdefault("method", "POST")
    if method not in METHODS:
        raise ConfigError(f"{where}.method: must be one of {', '.join(METHODS)}, got {method!r}")
    path = values.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigError(f"{where}.path: required, a path starting with '/', got {path!r}")
    _placeholders(path, f"{where}.path")
    if method == "GET" and values.get("body") is not None:
        raise ConfigError(f"{where}.body: a GET request has no body")
    _placeholders(values.get("body"), f"{where}.body")
    if "items" not in values:
        raise ConfigError(f"{where}.items: required, a selector such as items[*].item_id")
    compile_selector(values["items"], f"{where}.items")
    fallback = values.get("fallback")
    if fallback is not None and compile_selector(fallback, f"{where}.fallback").many:
        raise ConfigError(f"{where}.fallback: must select one value, not use [*]")
    _fallback_ok(values, values.get("fallback") is not None, where)


def _placeholders(value: Any, where: str) -> None:
    """Every ``{name}`` in the template's strings is one of :data:`PLACEHOLDERS`."""
    if isinstance(value, str):
        for name in _PLACEHOLDER.findall(value):
            if name not in PLACEHOLDERS:
                raise ConfigError(
                    f"{where}: unknown placeholder {{{name}}} "
                    f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
                )
    elif isinstance(value, dict):
        for key, item in value.items():
            _placeholders(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _placeholders(item, f"{where}[{i}]")
    elif value is not None and not isinstance(value, (bool, int, float)):
        raise ConfigError(f"{where}: not JSON data: {value!r}")
