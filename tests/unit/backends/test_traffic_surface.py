"""The public surface of chaos_rec.backends.adapters changes only on purpose."""

from __future__ import annotations

import chaos_rec.backends.adapters as traffic


def test_public_surface() -> None:
    assert sorted(traffic.__all__) == [
        "AdapterTraffic",
        "GATEWAY_FIELDS",
        "GATEWAY_PATH",
        "HttpRequest",
        "KINDS",
        "Selector",
        "TrafficSpec",
        "build_request",
        "compile_selector",
        "parse_answer",
    ]
    assert all(hasattr(traffic, name) for name in traffic.__all__)
    assert set(traffic.KINDS) == {"chaos-rec", "oip-v2", "http"}
