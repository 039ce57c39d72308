"""Secrets the Chaos Toolkit way: named values from CTK secrets, the environment or a file.

A deployment file refers to a secret by name, ``${secret:NAME}`` inside a traffic header value
(``"authorization": "Bearer ${secret:API_TOKEN}"``), and may name a ``secrets_file`` (a JSON
object of names to strings, readable by its owner only). A name is looked up in the CTK
``secrets`` the door was given (top level or any scope), then the environment (the name, then
in upper case), then that file; the admin token is the secret ``chaos_rec_admin_token``;
a name found nowhere is one ConfigError line. Values live in memory and in the environment of
the Locust subprocess (never on a command line, in the run dir, a log, a report or a journal);
what is written keeps the ``${secret:NAME}`` reference.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from chaos_rec.errors import ConfigError

__all__ = ["SECRET_REF", "SecretSource", "fill_secrets", "read_secrets_file", "secret_names"]

SECRET_REF: Final = re.compile(r"\$\{secret:([A-Za-z_][A-Za-z0-9_]*)\}")


def secret_names(texts: Iterable[str]) -> list[str]:
    """Every secret name the ``${secret:NAME}`` references in ``texts`` use, in order."""
    found: dict[str, None] = {}
    for text in texts:
        for name in SECRET_REF.findall(text):
            found[name] = None
    return list(found)


def fill_secrets(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``${secret:NAME}`` replaced by its value (names must be in ``values``)."""
    return SECRET_REF.sub(lambda m: values[m.group(1)], text)


def read_secrets_file(path: Path) -> dict[str, str]:
    """A secrets file: a JSON object of names to strings, not readable by group or others."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read secrets file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"secrets file {path} is open to other users (mode {stat.S_IMODE(mode):o}): "
            f"chmod 600 {path}"
        )
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ConfigError(f"secrets file {path} is not JSON") from None  # no value in the message
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ConfigError(f"secrets file {path} must be a JSON object of names to strings")
    return data


class SecretSource:
    """Where secret names are looked up: CTK secrets, then the environment, then a file."""

    def __init__(
        self,
        ctk: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        file: Path | None = None,
    ) -> None:
        self.ctk = ctk or {}
        self.environ = os.environ if environ is None else environ
        self.file = file
        self._file_values: dict[str, str] | None = None

    def _from_ctk(self, name: str) -> str | None:
        if isinstance(self.ctk.get(name), str):
            return str(self.ctk[name])
        for scope in self.ctk.values():
            if isinstance(scope, Mapping) and isinstance(scope.get(name), str):
                return str(scope[name])
        return None

    def find(self, name: str) -> str | None:
        """The value of ``name``, or None when no source holds it."""
        value = self._from_ctk(name) or self.environ.get(name) or self.environ.get(name.upper())
        if value is None and self.file is not None:
            if self._file_values is None:
                self._file_values = read_secrets_file(self.file)
            value = self._file_values.get(name)
        return value

    def resolve(self, names: Iterable[str], where: str) -> dict[str, str]:
        """Every name's value; one ConfigError line naming the first that no source holds."""
        values: dict[str, str] = {}
        for name in names:
            value = self.find(name)
            if value is None:
                sources = "the CTK secrets, the environment" + (
                    f" or secrets file {self.file}" if self.file else " (no secrets_file named)"
                )
                raise ConfigError(f"{where}: secret {name!r} is in none of {sources}")
            values[name] = value
        return values
