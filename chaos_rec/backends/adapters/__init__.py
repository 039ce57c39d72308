"""The ``Traffic`` seam for any API kind: :class:`AdapterTraffic` over ``chaos_rec.traffic``.

The spec, request building and answer parsing live in :mod:`chaos_rec.traffic` (below the load
runner, whose Locust subprocess uses them too); they are re-exported here for the doors.
"""

from __future__ import annotations

from chaos_rec.backends.adapters.adapter import AdapterTraffic
from chaos_rec.traffic import (
    GATEWAY_FIELDS,
    GATEWAY_PATH,
    KINDS,
    HttpRequest,
    Selector,
    TrafficSpec,
    build_request,
    compile_selector,
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
