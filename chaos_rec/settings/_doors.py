"""The doors: pytest (option > env > ini > default) and Chaos Toolkit (key > env > default)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chaos_rec.errors import ConfigError
from chaos_rec.settings._table import CTK_KEYS, CTK_PREFIX, SETTINGS, TABLE, Setting


def _path(raw: object, base: Path | None, spelled: str) -> Path:
    if not isinstance(raw, str | Path):
        raise ConfigError(f"{spelled} must be a path (a string), got {raw!r}")
    path = Path(raw).expanduser()
    if base is None:
        return path.absolute()
    return path if path.is_absolute() else base / path


def _target(raw: object, spelled: str, base: Path | None) -> str:
    text = str(raw)
    if text == "reference":
        return text
    path = Path(text).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise ConfigError(
            f"{spelled}: no such deployment file: {text} "
            "(it must be 'reference' or a deployment file)"
        )
    return str(path)


def _given(value: object) -> bool:
    """Whether a door was given a value (None, "" and an empty list are not)."""
    return value is not None and value not in ("", [], ())


# ---- the pytest door --------------------------------------------------------------------


class PytestConfig(Protocol):
    """The part of ``pytest.Config`` the pytest door reads."""

    def getoption(self, name: str, default: Any = ...) -> Any: ...

    def getini(self, name: str) -> Any: ...


def _pick(
    s: Setting, config: PytestConfig, env: Mapping[str, str], here: Path, root: Path
) -> tuple[Any, str, Path]:
    """(raw value, how the user spelled it, base of relative paths); raw None: the default."""
    if s.option is not None:
        value = config.getoption(s.dest, default=None)
        if _given(value) and value is not False:  # False: a store_true option not given
            return value, s.option, here
    if s.env is not None and env.get(s.env):
        return env[s.env], s.env, here
    if s.ini is not None:
        value = config.getini(s.ini)
        if _given(value):
            return value, s.ini, root
    return None, "default", root


@dataclass(frozen=True)
class Resolved:
    """What a door resolved: typed values by setting name, and how the user spelled each."""

    values: dict[str, Any]
    spelled: dict[str, str]  # the option, env variable or ini key that won; "default"


def resolve_pytest(
    config: PytestConfig, *, here: Path, root: Path, env: Mapping[str, str] | None = None
) -> Resolved:
    """The pytest door: option > env > ini > default, typed and range-checked.

    Relative paths from an option or the environment are taken from ``here`` (where pytest
    was started), from ini and defaults from ``root`` (the rootdir).
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    spellings: dict[str, str] = {}
    for s in TABLE:
        if not s.in_pytest:
            continue
        raw, spelled, base = _pick(s, config, env, here, root)
        spellings[s.name] = spelled
        if raw is None:
            raw = s.default
        if raw is None:
            values[s.name] = None
        elif s.kind == "paths":
            items = [raw] if isinstance(raw, str) else list(raw)
            values[s.name] = tuple(_path(p, base, spelled) for p in items)
        elif s.kind == "path":
            values[s.name] = _path(raw, base, spelled)
        elif s.kind == "target":
            values[s.name] = _target(raw, spelled, base)
        else:
            values[s.name] = s.parse(raw, spelled)
    return Resolved(values, spellings)


# ---- the Chaos Toolkit door -------------------------------------------------------------


def _find_secret(secrets: Mapping[str, Any] | None, key: str) -> str | None:
    if not secrets:
        return None
    if key in secrets and not isinstance(secrets[key], Mapping):
        return str(secrets[key])
    for scope in secrets.values():
        if isinstance(scope, Mapping) and key in scope:
            return str(scope[key])
    return None


def resolve_ctk(
    configuration: Mapping[str, Any] | None,
    secrets: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Chaos Toolkit door: configuration key > env (``ctk_env``) > default, typed.

    Keys not starting with ``chaos_rec_`` are ignored; an unknown ``chaos_rec_*`` key is a
    ConfigError. A key that is null or "" is not set (a nullable one is turned off). Unset
    paths and URLs are None (the target decides them).
    """
    env = os.environ if env is None else env
    given = {k: v for k, v in (configuration or {}).items() if k.startswith(CTK_PREFIX)}
    unknown = sorted(set(given) - CTK_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown configuration key {unknown[0]!r} (known: {', '.join(sorted(CTK_KEYS))})"
        )
    out: dict[str, Any] = {}
    for s in TABLE:
        if s.ctk is None:
            continue
        if s.kind == "secret":
            out[s.name] = _find_secret(secrets, s.ctk)
            continue
        raw, spelled = given.get(s.ctk), f"configuration {s.ctk}"
        if s.nullable and s.ctk in given and not _given(raw):
            out[s.name] = None
            continue
        if not _given(raw) and s.ctk_env and s.env is not None and env.get(s.env):
            raw, spelled = env[s.env], s.env
        if not _given(raw):
            out[s.name] = None if s.kind in ("path", "url") else s.default
        elif s.kind == "path":
            out[s.name] = _path(raw, None, spelled)
        elif s.kind == "target":
            out[s.name] = _target(raw, spelled, None)
        else:
            out[s.name] = s.parse(raw, spelled)
    return out


# ---- the stack's state dir (``chaos-rec stack``, ``load_state``) -------------------------


def resolve_state_dir(
    state_dir: Path | str | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """``state_dir``, else ``CHAOS_REC_STATE_DIR``, else the default ``.chaos-rec`` (absolute)."""
    s = SETTINGS["state_dir"]
    env = os.environ if env is None else env
    chosen = state_dir if state_dir is not None else (env.get(str(s.env)) or s.default)
    return Path(chosen).expanduser().absolute()
