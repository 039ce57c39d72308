"""``python -m chaos_rec.settings > …``: print the table of ``docs/configuration.md``."""

from __future__ import annotations

from chaos_rec.settings import markdown_table

print(markdown_table(), end="")
