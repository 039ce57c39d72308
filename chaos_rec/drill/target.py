"""The drill target: the reference stack's state file or a user's deployment file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos_rec.errors import ConfigError

REQUIRED = ("gateway_url",)


def read_deployment(path: Path) -> dict[str, Any]:
    """Read a deployment file (``chaos_rec.targets`` shape: gateway_url, toxiproxy_url, …)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read deployment file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"deployment file {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"deployment file {path} must hold a JSON object")
    missing = [k for k in REQUIRED if not isinstance(data.get(k), str)]
    if missing:
        raise ConfigError(f"deployment file {path} lacks {', '.join(missing)}")
    if data.get("toxiproxy_url") is not None and not isinstance(data["toxiproxy_url"], str):
        raise ConfigError(f"deployment file {path}: toxiproxy_url must be a URL string")
    return data
