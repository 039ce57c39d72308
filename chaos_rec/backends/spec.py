"""Reading one backend section of a deployment file: each bad key is one ConfigError line.

A ``command`` section (the default ``kind``; another backend passes its own ``kind`` and keys)
may hold ``kind`` (``"command"``), ``timeout_s`` (seconds per command),
``env`` (a string-to-string object added to the environment) and ``secret_env`` (names of
environment variables whose values are masked wherever a command is shown).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from typing import Any, Final

from chaos_rec.backends.shell import check_placeholders
from chaos_rec.errors import ConfigError

__all__ = ["COMMON_KEYS", "Reader", "base_dict"]

COMMON_KEYS: Final = frozenset({"kind", "timeout_s", "env", "secret_env"})
_ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Reader:
    """Typed reads of one section's keys; ``where`` prefixes every error (``file: processes``)."""

    def __init__(
        self,
        data: Any,
        where: str,
        keys: Collection[str],
        *,
        kind: str = "command",
        common: Collection[str] = COMMON_KEYS,
    ) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be an object")
        self.data, self.where = data, where
        unknown = sorted(str(k) for k in set(data) - set(keys) - set(common))
        if unknown:
            known = ", ".join(sorted(set(keys) | set(common)))
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {known})")
        backend = data.get("kind", kind)
        if backend != kind:
            raise ConfigError(f"{where}.kind: expected {kind!r}, got {backend!r}")

    def string(self, key: str) -> str | None:
        """An optional non-empty string."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self.where}.{key}: must be a non-empty string")
        return value

    def command(self, key: str, allowed: Collection[str], *, required: bool = True) -> str | None:
        """A command whose placeholders are all in ``allowed``."""
        value = self.string(key)
        if value is None:
            if required:
                raise ConfigError(f"{self.where}.{key}: missing (a shell command)")
            return None
        check_placeholders(value, allowed, f"{self.where}.{key}")
        return value

    def seconds(self, key: str, default: float | None) -> float | None:
        """An optional positive, finite number of seconds."""
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.where}.{key}: must be a number of seconds")
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{self.where}.{key}: must be positive, got {value}")
        return float(value)

    def timeout(self, default: float) -> float:
        """``timeout_s``: seconds each command may run."""
        value = self.seconds("timeout_s", default)
        return default if value is None else value

    def exit_code(self, key: str, default: int) -> int:
        """An exit code 1..255."""
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 255:
            raise ConfigError(f"{self.where}.{key}: must be an exit code 1..255, got {value!r}")
        return value

    def env(self) -> dict[str, str]:
        """``env``: variables added to the environment."""
        value = self.data.get("env") or {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.where}.env: must be an object of strings")
        for name, text in value.items():
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise ConfigError(f"{self.where}.env: {name!r} is not a variable name")
            if not isinstance(text, str):
                raise ConfigError(f"{self.where}.env.{name}: must be a string")
        return dict(value)

    def secret_env(self) -> tuple[str, ...]:
        """``secret_env``: names of variables whose values are never shown."""
        value = self.data.get("secret_env") or []
        if not isinstance(value, list):
            raise ConfigError(f"{self.where}.secret_env: must be a list of variable names")
        for name in value:
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise ConfigError(f"{self.where}.secret_env: {name!r} is not a variable name")
        return tuple(value)


def base_dict(
    backend: str, timeout_s: float, env: Mapping[str, str], secret_env: tuple[str, ...]
) -> dict[str, Any]:
    """The keys every command section shares, as the deployment file holds them."""
    out: dict[str, Any] = {"kind": backend, "timeout_s": timeout_s}
    if env:
        out["env"] = dict(env)
    if secret_env:
        out["secret_env"] = list(secret_env)
    return out
