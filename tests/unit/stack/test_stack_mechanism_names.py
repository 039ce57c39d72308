"""The stack's switch and routing names are the serving processes' (one contract, one copy).

`chaos_rec` never imports `serving`, so the one copy lives in `reference_contract`, which
imports nothing; `serving.settings` and `chaos_rec.stack.config` both take the names from it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import reference_contract as contract
from chaos_rec.stack.config import GATEWAY_ROUTINGS, MECHANISMS_GATEWAY, MECHANISMS_SERVER
from serving.settings import GATEWAY_MECHANISMS, ROUTINGS, SERVER_MECHANISMS


def test_stack_and_serving_name_the_same_mechanisms() -> None:
    assert MECHANISMS_SERVER == SERVER_MECHANISMS
    assert MECHANISMS_GATEWAY == GATEWAY_MECHANISMS
    assert MECHANISMS_SERVER is SERVER_MECHANISMS is contract.SERVER_MECHANISMS
    assert MECHANISMS_GATEWAY is GATEWAY_MECHANISMS is contract.GATEWAY_MECHANISMS


def test_stack_and_gateway_name_the_same_routings() -> None:
    assert GATEWAY_ROUTINGS == ROUTINGS
    assert GATEWAY_ROUTINGS is ROUTINGS is contract.GATEWAY_ROUTINGS


def test_the_contract_module_imports_nothing() -> None:
    tree = ast.parse(Path(contract.__file__).read_text(encoding="utf-8"))
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [getattr(n, "module", None) for n in imports] == ["__future__"]
