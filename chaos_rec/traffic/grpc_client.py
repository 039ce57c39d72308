"""OipGrpcClient: ModelInfer calls for an ``oip-v2`` spec with ``"protocol": "grpc"``.

One plaintext channel to the spec's ``grpc_url``, opened on the first call and reused by every
call after it (thread-safe, as grpcio channels are); the timeout is each call's gRPC deadline;
the spec's headers go as metadata (names lower-cased, each ``${secret:NAME}`` filled from the
``secrets`` given, as :func:`~chaos_rec.traffic.build_request` fills them for REST). The request and the answer are
:func:`~chaos_rec.traffic.grpc_wire.infer_request` and
:func:`~chaos_rec.traffic.grpc_wire.read_reply`, the same pure code whoever calls. The quality
replay (``AdapterTraffic.recommend``) and the Locust subprocess (one client per process, one
:meth:`OipGrpcClient.infer` per request) both use it.

Under Locust the process is gevent-patched, and grpcio's own threads do not yield to gevent:
call ``grpc.experimental.gevent.init_gevent()`` once, before the first client is made (at
import of the locustfile, after gevent's monkey-patching), or calls block the event loop.

``grpcio`` and ``protobuf`` are imported on the first call, so that ``chaos_rec.traffic`` works
without them; without them a call raises one ConfigError line that says what to install.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from chaos_rec.core.seams import Answer
from chaos_rec.core.secrets import fill_secrets
from chaos_rec.errors import ConfigError
from chaos_rec.traffic.spec import TrafficSpec

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["CHANNEL_OPTIONS", "GrpcReply", "OipGrpcClient"]

# reconnect soon after a replica comes back (grpcio's default backoff grows to 120 s, which
# would read as an outage that outlasts the fault)
CHANNEL_OPTIONS: Final = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
)


@dataclass(frozen=True)
class GrpcReply:
    """What one ModelInfer call came back with.

    ``code`` is the ``grpc.StatusCode`` name, ``status`` the HTTP status a load timeline records
    for it (:data:`~chaos_rec.traffic.grpc_wire.HTTP_STATUS`), ``answer`` None unless OK with a
    readable answer, ``detail`` the server's (or grpcio's) message for a non-OK status.
    """

    code: str
    status: int
    answer: Answer | None
    detail: str = ""


def _modules() -> tuple[ModuleType, ModuleType]:
    """grpcio and the wire module (which needs protobuf), or one ConfigError line."""
    try:
        import grpc

        from chaos_rec.traffic import grpc_wire
    except ImportError as exc:
        raise ConfigError(
            f'traffic "protocol": "grpc" needs the grpcio and protobuf packages '
            f"(pip install grpcio protobuf): {exc}"
        ) from exc
    return grpc, grpc_wire


def _metadata(spec: TrafficSpec, secrets: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The headers as gRPC metadata; a filled value that is no legal one is a ConfigError line
    naming the header, not the value."""
    pairs = []
    for name, template in spec.headers:
        value = fill_secrets(template, secrets)
        if not value.isascii() or not value.isprintable():
            raise ConfigError(
                f"traffic.headers.{name}: a gRPC metadata value is printable ASCII "
                "(the value with its secrets filled in is not)"
            )
        pairs.append((name.lower(), value))
    return tuple(pairs)


class OipGrpcClient:
    """ModelInfer for users through ``spec`` (oip-v2, protocol grpc) over one reused channel."""

    def __init__(
        self, spec: TrafficSpec, timeout_s: float, secrets: Mapping[str, str] | None = None
    ) -> None:
        if spec.kind != "oip-v2" or spec.protocol != "grpc" or not spec.grpc_url:
            raise ConfigError(
                f'a gRPC client needs an oip-v2 spec with "protocol": "grpc" and a grpc_url, '
                f"got kind {spec.kind} protocol {spec.protocol}"
            )
        if timeout_s <= 0:
            raise ConfigError(f"traffic timeout_s must be positive, got {timeout_s!r}")
        self.spec = spec
        self.timeout_s = float(timeout_s)
        self._metadata = _metadata(spec, secrets or {})  # may hold secrets: never shown
        self._channel: Any = None
        self._call: Any = None

    def _open(self) -> tuple[ModuleType, ModuleType]:
        grpc, wire = _modules()
        if self._call is None:
            self._channel = grpc.insecure_channel(self.spec.grpc_url, options=CHANNEL_OPTIONS)
            self._call = self._channel.unary_unary(
                wire.MODEL_INFER,
                request_serializer=wire.pb.ModelInferRequest.SerializeToString,
                response_deserializer=wire.pb.ModelInferResponse.FromString,
            )
        return grpc, wire

    def infer(self, user_id: int, k: int, query: str | None = None) -> GrpcReply:
        """One ModelInfer call for a user; every outcome of the call is a reply, not an exception.

        Status OK with ``answer`` None is a reply without readable items (or marker): no answer,
        like a 200 whose body parse_answer cannot read. A user id or k its tensor's datatype
        cannot hold is refused here as the server would refuse it: INVALID_ARGUMENT, no answer.
        Raises only the ConfigError of missing grpcio/protobuf.
        """
        grpc, wire = self._open()
        try:
            request = wire.infer_request(self.spec, user_id, k, query)
        except ConfigError as exc:
            return GrpcReply(
                "INVALID_ARGUMENT", wire.HTTP_STATUS["INVALID_ARGUMENT"], None, str(exc)
            )
        try:
            response = self._call(request, timeout=self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            name = code.name if code is not None else "UNKNOWN"
            details = exc.details() if callable(getattr(exc, "details", None)) else None
            return GrpcReply(name, wire.HTTP_STATUS.get(name, 500), None, str(details or exc))
        answer = wire.read_reply(self.spec, "OK", response, k)
        return GrpcReply("OK", wire.HTTP_STATUS["OK"], answer)

    def close(self) -> None:
        """Close the channel (a later call opens a new one)."""
        if self._channel is not None:
            self._channel.close()
        self._channel = self._call = None
