"""Every setting of the drill tool, once: name, type, default, range and each door's spelling.

Two doors resolve them, each with one function:

- pytest (:func:`resolve_pytest`): ``--drill-…`` option > ``CHAOS_REC_…`` environment >
  ini key (``[tool.pytest.ini_options]``) > default;
- Chaos Toolkit (:func:`resolve_ctk`): experiment ``configuration`` key ``chaos_rec_…`` >
  environment (only where ``ctk_env`` says so) > default.

``chaos_rec.drill.config`` (``DrillConfig``) and ``chaos_rec.extconfig`` (``ExtConfig``) build
their typed configs from what these return; ``chaos_rec.plugin`` registers the options and ini
keys from :data:`SETTINGS`; ``docs/configuration.md`` is :func:`markdown_table` (a unit test
compares them). Nothing else reads these environment variables.
"""

from __future__ import annotations

from chaos_rec.settings._doc import markdown_table
from chaos_rec.settings._doors import (
    PytestConfig,
    Resolved,
    resolve_ctk,
    resolve_pytest,
    resolve_state_dir,
)
from chaos_rec.settings._table import CTK_KEYS, ENV_PREFIX, SETTINGS, TABLE, Setting, default

__all__ = [
    "CTK_KEYS",
    "ENV_PREFIX",
    "SETTINGS",
    "TABLE",
    "PytestConfig",
    "Resolved",
    "Setting",
    "default",
    "markdown_table",
    "resolve_ctk",
    "resolve_pytest",
    "resolve_state_dir",
]
