"""Every file a user hands chaos-rec, nested deeper than its decoder recurses: one error line.

Python's JSON and TOML decoders raise RecursionError there, which no reader caught (a
traceback); each reader now words it as the file not being valid JSON/TOML.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.core.secrets import read_secrets_file
from chaos_rec.core.target import read_deployment_file
from chaos_rec.drill.config import load_slo_file
from chaos_rec.drill.experiment import load_drill
from chaos_rec.errors import ChaosRecError
from chaos_rec.report.files import load_report
from chaos_rec.stack.config import StackConfig

DEEP_JSON = "[" * 100_000
DEEP_TOML = "a = " + "[" * 100_000


@pytest.mark.parametrize(
    ("name", "text", "read", "starts"),
    [
        ("dep.json", DEEP_JSON, read_deployment_file, "deployment file {p} is not JSON: "),
        ("drill.json", DEEP_JSON, load_drill, "not valid JSON: "),
        ("slo.json", DEEP_JSON, load_slo_file, "SLO file {p} is not valid json: "),
        ("slo.toml", DEEP_TOML, load_slo_file, "SLO file {p} is not valid toml: "),
        ("secrets.json", DEEP_JSON, read_secrets_file, "secrets file {p} is not JSON"),
        ("stack.json", DEEP_JSON, StackConfig.load, "bad config file {p}: "),
        ("stack.toml", DEEP_TOML, StackConfig.load, "bad config file {p}: "),
        ("report/summary.json", DEEP_JSON, lambda p: load_report(p.parent),
         "{p} is not JSON: "),
    ],
)  # fmt: skip
def test_a_file_nested_too_deeply_is_one_line(
    tmp_path: Path, name: str, text: str, read: Callable[[Path], Any], starts: str
) -> None:
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ChaosRecError) as info:
        read(path)
    message = str(info.value)
    assert message.startswith(starts.format(p=path)) and "\n" not in message, message[:200]
