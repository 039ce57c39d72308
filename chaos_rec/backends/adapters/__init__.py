"""Traffic adapters: one serialisable spec per API kind, pure request/answer functions, a client.

Kinds: ``chaos-rec`` (the bundled gateway's ``POST /v1/recommend``), ``oip-v2`` (KServe/Triton
Open Inference Protocol v2 REST ``/v2/models/{model}/infer``; gRPC ModelInfer is not here yet)
and ``http`` (a declarative template with :mod:`~chaos_rec.backends.adapters.selector`
selectors). :func:`build_request` and :func:`parse_answer` do no I/O, so the Locust subprocess
and the quality replay can share them; :class:`AdapterTraffic` implements the ``Traffic`` seam.
"""

from __future__ import annotations

from chaos_rec.backends.adapters.adapter import AdapterTraffic
from chaos_rec.backends.adapters.selector import Selector, compile_selector
from chaos_rec.backends.adapters.spec import KINDS, TrafficSpec
from chaos_rec.backends.adapters.wire import (
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
    "AdapterTraffic",
    "HttpRequest",
    "Selector",
    "TrafficSpec",
    "build_request",
    "compile_selector",
    "parse_answer",
]
