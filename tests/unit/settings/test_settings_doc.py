"""docs/configuration.md holds the settings table exactly as chaos_rec.settings renders it."""

from __future__ import annotations

from pathlib import Path

from chaos_rec.settings import TABLE, markdown_table

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
BEGIN = "<!-- BEGIN settings table"
END = "<!-- END settings table -->"


def _doc_table() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("\n", text.index(BEGIN)) + 1
    return text[start : text.index(END)]


def test_the_doc_table_is_the_rendered_module() -> None:
    assert _doc_table() == markdown_table(), (
        "docs/configuration.md is out of date: paste `python -m chaos_rec.settings` "
        "between its BEGIN/END settings table markers"
    )


def test_the_table_has_one_row_per_setting_with_every_spelling() -> None:
    rows = _doc_table().splitlines()[2:]
    assert len(rows) == len(TABLE)
    for row, s in zip(rows, TABLE, strict=True):
        assert row.startswith(f"| `{s.name}` |")
        for spelling in (s.option, s.ini, s.env, s.ctk):
            if spelling:
                assert f"`{spelling}" in row, (s.name, spelling)
