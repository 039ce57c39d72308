"""The stack's switch and routing names are the serving processes' (one contract, two sides).

`chaos_rec` never imports `serving` (it drives the reference stack through its command lines
and admin APIs only), so the names are written on both sides; this test keeps them equal.
"""

from __future__ import annotations

from chaos_rec.stack.config import GATEWAY_ROUTINGS, MECHANISMS_GATEWAY, MECHANISMS_SERVER
from serving.settings import GATEWAY_MECHANISMS, ROUTINGS, SERVER_MECHANISMS


def test_stack_and_serving_name_the_same_mechanisms() -> None:
    assert MECHANISMS_SERVER == SERVER_MECHANISMS
    assert MECHANISMS_GATEWAY == GATEWAY_MECHANISMS


def test_stack_and_gateway_name_the_same_routings() -> None:
    assert GATEWAY_ROUTINGS == ROUTINGS
