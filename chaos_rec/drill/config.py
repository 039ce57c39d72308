"""The drill plugin's typed configuration, built once from pytest options, env and ini.

Names, defaults, ranges and precedence come from :mod:`chaos_rec.settings` (the pytest door);
this module adds what only the plugin does with them: reading the SLO file (or
``[tool.chaos_rec.slo]``) and checking that a baseline folder holds a report.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.errors import ConfigError
from chaos_rec.settings import default, resolve_pytest

DEFAULT_SEED: int = default("seed")
DEFAULT_TOLERANCE: float = default("tolerance")


@dataclass(frozen=True)
class DrillConfig:
    """Everything the drill plugin needs; built once in ``pytest_configure``."""

    rootdir: Path
    paths: tuple[Path, ...]
    stack: str = default("target")
    report_dir: Path | None = None
    seed: int = DEFAULT_SEED
    dry: bool = default("dry")
    slo: Mapping[str, Any] | None = None
    slo_source: str | None = None
    baseline_dir: Path | None = None
    tolerance: float = DEFAULT_TOLERANCE
    state_dir: Path = field(default_factory=lambda: Path(default("state_dir")))
    load_rps: float = default("load_rps")
    load_users: int = default("load_users")
    load_workers: int = default("load_workers")
    fail_fast: bool = default("fail_fast")
    ctk_settings: Path | None = None
    verbose: int = 0

    @property
    def stack_file(self) -> Path | None:
        """The user's deployment file, or None for the reference stack."""
        return None if self.stack == "reference" else Path(self.stack)

    @property
    def runs_dir(self) -> Path:
        """Where each drill's run dir is created."""
        return self.state_dir / "runs"


def load_slo_file(path: Path) -> tuple[dict[str, Any], str]:
    """Read an SLO spec from JSON, or TOML (whole file, or its ``[tool.chaos_rec.slo]``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read SLO file {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
            data = data.get("tool", {}).get("chaos_rec", {}).get("slo", data)
        else:
            data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError is a ValueError
        raise ConfigError(
            f"SLO file {path} is not valid {path.suffix[1:] or 'JSON'}: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"SLO file {path} must hold an object, got {type(data).__name__}")
    return data, str(path)


def _pyproject_slo(rootdir: Path) -> dict[str, Any] | None:
    pyproject = rootdir / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    slo = data.get("tool", {}).get("chaos_rec", {}).get("slo")
    return slo if isinstance(slo, dict) else None


def _check_paths(values: Mapping[str, Any], spelled: Mapping[str, str]) -> None:
    """Refuse, before any drill, a report folder that is a file, a deployment file that does not
    read and a Chaos Toolkit settings file that is missing or not YAML."""
    report: Path | None = values["report_dir"]
    if report is not None and report.exists() and not report.is_dir():
        raise ConfigError(f"{spelled['report_dir']}: {report} is a file, not a folder")
    if values["target"] != "reference":
        from chaos_rec.core.target import read_deployment_file

        try:
            read_deployment_file(Path(values["target"]))
        except ConfigError as exc:
            raise ConfigError(f"{spelled['target']}: {exc}") from exc
    if values["ctk_settings"] is not None:
        from chaos_rec.drill.runner import ctk_settings

        try:
            ctk_settings(values["ctk_settings"])
        except ConfigError as exc:
            raise ConfigError(f"{spelled['ctk_settings']}: {exc}") from exc


def from_pytest(config: pytest.Config, env: Mapping[str, str] | None = None) -> DrillConfig:
    """Build the config: options > CHAOS_REC_* env > ini/pyproject > defaults."""
    root = Path(config.rootpath)
    resolved = resolve_pytest(config, here=Path(config.invocation_params.dir), root=root, env=env)
    values, spelled = resolved.values, resolved.spelled

    baseline_dir: Path | None = values["baseline_dir"]
    if baseline_dir is not None and not (baseline_dir / "summary.json").is_file():
        raise ConfigError(
            f"{spelled['baseline_dir']}: {baseline_dir} holds no summary.json of a report"
        )

    _check_paths(values, spelled)
    slo: dict[str, Any] | None
    if values["slo"] is not None:
        slo, source = load_slo_file(values["slo"])
    else:
        slo, source = _pyproject_slo(root), "pyproject.toml [tool.chaos_rec.slo]"
        if slo is None:
            source = ""

    return DrillConfig(
        rootdir=root,
        paths=values["paths"],
        stack=values["target"],
        report_dir=values["report_dir"],
        seed=values["seed"],
        dry=values["dry"],
        slo=slo,
        slo_source=source or None,
        baseline_dir=baseline_dir,
        tolerance=values["tolerance"],
        state_dir=values["state_dir"],
        load_rps=values["load_rps"],
        load_users=values["load_users"],
        load_workers=values["load_workers"],
        fail_fast=values["fail_fast"],
        ctk_settings=values["ctk_settings"],
        verbose=int(config.getoption("verbose", default=0) or 0),
    )
