"""The settings table of ``docs/configuration.md``, rendered from the one table."""

from __future__ import annotations

from chaos_rec.settings._table import TABLE, Setting


def _cell(text: str | None) -> str:
    return f"`{text}`".replace("|", "\\|") if text else ""


def _env_text(s: Setting) -> str:
    if s.env is None:
        return ""
    doors = [d for d, reads in (("pytest", s.in_pytest), ("CTK", s.ctk_env)) if reads]
    both = s.in_pytest and s.ctk is not None
    return _cell(s.env) + (f" ({doors[0]} only)" if both and len(doors) == 1 else "")


def markdown_table() -> str:
    """The settings table of ``docs/configuration.md``, rendered from :data:`SETTINGS`."""
    kinds = {"path": "path", "paths": "paths", "url": "URL", "target": "`reference` or file"}
    rows = [
        "| setting | type | default | option | ini | env | CTK key | meaning |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in TABLE:
        kind = kinds.get(s.kind, s.kind)
        if s.range_text():
            kind += f" in {s.range_text()}"
        if s.nullable:
            kind += " or null"
        option = f"{s.option} {s.metavar}" if s.option and s.metavar else s.option
        ctk = _cell(s.ctk) + (" (secret)" if s.kind == "secret" else "")
        cells = [
            f"`{s.name}`", kind, _cell(s.default_text()) or "—", _cell(option), _cell(s.ini),
            _env_text(s), ctk, s.meaning.replace("|", "\\|"),
        ]  # fmt: skip
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
