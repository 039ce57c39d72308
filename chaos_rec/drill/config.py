"""The drill plugin's typed configuration, built once from pytest options, env and ini."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.errors import ConfigError

DEFAULT_SEED = 1234
DEFAULT_TOLERANCE = 0.10


@dataclass(frozen=True)
class DrillConfig:
    """Everything the drill plugin needs; built once in ``pytest_configure``."""

    rootdir: Path
    paths: tuple[Path, ...]
    stack: str = "reference"
    report_dir: Path | None = None
    seed: int = DEFAULT_SEED
    dry: bool = False
    slo: Mapping[str, Any] | None = None
    slo_source: str | None = None
    baseline_dir: Path | None = None
    tolerance: float = DEFAULT_TOLERANCE
    state_dir: Path = field(default_factory=lambda: Path(".chaos-rec"))
    load_rps: float = 20.0
    load_users: int = 8
    verbose: int = 0

    @property
    def stack_file(self) -> Path | None:
        """The user's deployment file, or None for the reference stack."""
        return None if self.stack == "reference" else Path(self.stack)

    @property
    def runs_dir(self) -> Path:
        """Where each drill's run dir is created."""
        return self.state_dir / "runs"


def _resolve(rootdir: Path, value: str | os.PathLike[str]) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (rootdir / path)


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
    except (ValueError, tomllib.TOMLDecodeError) as exc:
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


def _number(name: str, raw: object, kind: type[int] | type[float]) -> Any:
    try:
        return kind(str(raw))
    except ValueError as exc:
        raise ConfigError(f"{name} must be a {kind.__name__}, got {raw!r}") from exc


def from_pytest(config: pytest.Config, env: Mapping[str, str] | None = None) -> DrillConfig:
    """Build the config: options > CHAOS_REC_* env > ini/pyproject > defaults."""
    env = os.environ if env is None else env
    root = Path(config.rootpath)

    here = Path(config.invocation_params.dir)
    bases: dict[str, Path] = {}

    def pick(option: str, env_key: str, ini: str) -> Any:
        value = config.getoption(option, default=None)
        bases[option] = here
        if value not in (None, "", []):
            return value
        if env.get(env_key):
            return env[env_key]
        bases[option] = root
        ini_value = config.getini(ini)
        return ini_value if ini_value not in ("", None, []) else None

    cli_paths = config.getoption("drill_paths", default=None) or []
    if cli_paths:
        paths = tuple(_resolve(here, p) for p in cli_paths)
    else:
        paths = tuple(_resolve(root, p) for p in config.getini("drill_paths"))

    stack = str(pick("drill_stack", "CHAOS_REC_DRILL_STACK", "drill_stack") or "reference")
    if stack != "reference":
        stack_path = _resolve(bases["drill_stack"], stack)
        if not stack_path.is_file():
            raise ConfigError(f"--drill-stack: no such deployment file: {stack}")
        stack = str(stack_path)

    report = pick("drill_report", "CHAOS_REC_DRILL_REPORT", "drill_report")
    baseline = pick("drill_baseline", "CHAOS_REC_DRILL_BASELINE", "drill_baseline")
    baseline_dir = _resolve(bases["drill_baseline"], baseline) if baseline else None
    if baseline_dir is not None and not (baseline_dir / "summary.json").is_file():
        raise ConfigError(f"--drill-baseline: {baseline_dir} holds no summary.json of a report")

    slo_file = pick("drill_slo", "CHAOS_REC_DRILL_SLO", "drill_slo")
    slo: dict[str, Any] | None
    if slo_file:
        slo, source = load_slo_file(_resolve(bases["drill_slo"], slo_file))
    else:
        slo, source = _pyproject_slo(root), "pyproject.toml [tool.chaos_rec.slo]"
        if slo is None:
            source = ""

    seed = _number(
        "--drill-seed", pick("drill_seed", "CHAOS_REC_SEED", "drill_seed") or DEFAULT_SEED, int
    )
    tolerance = _number(
        "drill_baseline_tolerance",
        config.getini("drill_baseline_tolerance") or DEFAULT_TOLERANCE,
        float,
    )
    if not 0 <= tolerance < 10:
        raise ConfigError(f"drill_baseline_tolerance must be within [0, 10), got {tolerance}")
    state_dir = _resolve(
        root, env.get("CHAOS_REC_STATE_DIR") or config.getini("drill_state_dir") or ".chaos-rec"
    )
    dry = (
        bool(config.getoption("drill_dry", default=False))
        or str(env.get("CHAOS_REC_DRILL_DRY", "")) == "1"
    )
    return DrillConfig(
        rootdir=root,
        paths=paths,
        stack=stack,
        report_dir=_resolve(bases["drill_report"], report) if report else None,
        seed=seed,
        dry=dry,
        slo=slo,
        slo_source=source or None,
        baseline_dir=baseline_dir,
        tolerance=tolerance,
        state_dir=state_dir,
        load_rps=_number("drill_load_rps", config.getini("drill_load_rps") or 20, float),
        load_users=_number("drill_load_users", config.getini("drill_load_users") or 8, int),
        verbose=int(config.getoption("verbose", default=0) or 0),
    )
