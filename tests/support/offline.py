"""The environment of every subprocess the tests start: this process's, read when called, offline."""

from __future__ import annotations

import os

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # no model download at run time


def offline_env(**extra: str) -> dict[str, str]:
    """``os.environ`` as it is now (a ``monkeypatch.setenv`` made before the call counts), offline,
    with ``extra`` on top. Read at call time on purpose: a copy taken at import misses the state
    dir a fixture sets later, and its subprocess then starts a stack of its own."""
    return {**os.environ, **OFFLINE, **extra}
