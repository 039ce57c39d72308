"""Schemathesis against a real fault proxy process: bounded, CI-sized (well under 60 s).

The cases come from the document the proxy serves at ``GET /openapi.json``; every answer
must conform to it, and no case may get a 5xx (beyond the documented bind failure) or go
unanswered. ``benchmarks/fuzz_fault_proxy.py`` runs the same for a longer campaign.
"""

from __future__ import annotations

import pytest

from chaos_rec.toxiproxy.fuzz import fuzz_api
from chaos_rec.toxiproxy.testing import free_port, running_fault_proxy

pytestmark = pytest.mark.integration

CASES = 250


def test_schemathesis_finds_no_5xx_no_crash_no_undocumented_answer() -> None:
    with running_fault_proxy() as api:  # the default loop (uvloop when installed)
        report = fuzz_api(api, f"127.0.0.1:{free_port()}", max_examples=CASES, seed=18)
    print(f"fault proxy fuzz: {report.to_json()}")
    assert report.cases == CASES
    assert report.crashes == []
    assert report.server_errors == []
    assert report.nonconforming == []
    assert len(report.statuses) >= 4  # successes and refusals alike were reached
    assert report.statuses[200] + report.statuses[201] + report.statuses[204] > 0
