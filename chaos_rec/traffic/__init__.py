"""What a deployment's API looks like: one serialisable spec per API kind, pure request/answer code.

Kinds: ``chaos-rec`` (the bundled gateway's ``POST /v1/recommend``), ``oip-v2`` (KServe/Triton
Open Inference Protocol v2: REST ``/v2/models/{model}/infer``, or gRPC ModelInfer with
``"protocol": "grpc"``) and ``http`` (a declarative template with
:mod:`~chaos_rec.traffic.selector` selectors). :func:`build_request` and
:func:`parse_answer` do no I/O, so the Locust subprocess (``chaos_rec.load.locustfile``) and the
quality replay (``chaos_rec.backends.adapters.AdapterTraffic``) send and read the same requests.
Over gRPC, :class:`OipGrpcClient` (one reused channel; one ``infer`` per request) sends what
:mod:`.grpc_wire` builds from the same spec and reads the reply through :func:`parse_answer`;
it imports grpcio, and protobuf through :mod:`.grpc_wire`, on its first call, not before.
"""

from __future__ import annotations

from chaos_rec.traffic.grpc_client import GrpcReply, OipGrpcClient
from chaos_rec.traffic.selector import Selector, compile_selector
from chaos_rec.traffic.spec import KINDS, TrafficSpec
from chaos_rec.traffic.wire import (
    GATEWAY_FIELDS,
    GATEWAY_PATH,
    HttpRequest,
    build_request,
    parse_answer,
)

__all__ = [
    "GATEWAY_FIELDS",
    "GATEWAY_PATH",
    "KINDS",
    "GrpcReply",
    "HttpRequest",
    "OipGrpcClient",
    "Selector",
    "TrafficSpec",
    "build_request",
    "compile_selector",
    "parse_answer",
]
