"""ExtConfig: Chaos Toolkit ``configuration``/``secrets`` turned into one typed config.

This is the one place where the extension reads its configuration keys
(docs/contracts.md lists them) and the ``CHAOS_REC_STATE_DIR`` /
``CHAOS_REC_RUN_DIR`` environment variables. Chaos Toolkit has already
resolved ``{"type": "env"}`` values and ``${name}`` substitutions by the time
an activity gets the dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from chaos_rec.core.run import ACTIVE
from chaos_rec.core.rundir import RunContext
from chaos_rec.errors import ConfigError

__all__ = ["ExtConfig", "ext_config"]

KEYS: Final[frozenset[str]] = frozenset(
    {
        "chaos_rec_state_dir",
        "chaos_rec_run_dir",
        "chaos_rec_target",
        "chaos_rec_gateway_url",
        "chaos_rec_toxiproxy_url",
        "chaos_rec_load_rps",
        "chaos_rec_load_users",
        "chaos_rec_seed",
        "chaos_rec_stack_config",
        "chaos_rec_load",
        "chaos_rec_warmup_s",
        "chaos_rec_safeguard_availability",
        "chaos_rec_safeguard_s",
        "chaos_rec_timeout_s",
    }
)


def _as_float(key: str, value: Any, lo: float, hi: float) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"configuration {key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not lo <= f <= hi:
        raise ConfigError(f"configuration {key} must be within [{lo:g}, {hi:g}], got {value!r}")
    return f


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"configuration {key} must be true or false, got {value!r}")


def _url(key: str, value: Any) -> str:
    text = str(value).strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise ConfigError(f"configuration {key} must be an http:// URL, got {value!r}")
    return text


def _find_secret(secrets: Mapping[str, Any] | None, key: str) -> str | None:
    if not secrets:
        return None
    if key in secrets and not isinstance(secrets[key], Mapping):
        return str(secrets[key])
    for scope in secrets.values():
        if isinstance(scope, Mapping) and key in scope:
            return str(scope[key])
    return None


@dataclass(frozen=True)
class ExtConfig:
    """Typed configuration of the chaos_rec extension."""

    state_dir: Path | None = None
    run_dir: Path | None = None
    target: str = "reference"
    gateway_url: str | None = None
    toxiproxy_url: str | None = None
    load_rps: float = 30.0
    load_users: int = 10
    seed: int = 0
    stack_config: Path | None = None
    load: bool = True
    warmup_s: float = 5.0
    safeguard_availability: float | None = 0.5
    safeguard_s: float = 10.0
    timeout_s: float = 5.0
    admin_token: str | None = None

    @classmethod
    def from_ctk(
        cls,
        configuration: Mapping[str, Any] | None = None,
        secrets: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> ExtConfig:
        """Build from Chaos Toolkit's dicts (other keys are ignored; ours are validated)."""
        cfg = {k: v for k, v in (configuration or {}).items() if k.startswith("chaos_rec_")}
        env = os.environ if environ is None else environ
        unknown = sorted(set(cfg) - KEYS)
        if unknown:
            raise ConfigError(
                f"unknown configuration key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})"
            )
        state_dir = cfg.get("chaos_rec_state_dir") or env.get("CHAOS_REC_STATE_DIR")
        run_dir = cfg.get("chaos_rec_run_dir") or env.get("CHAOS_REC_RUN_DIR")
        target = str(cfg.get("chaos_rec_target") or "reference")
        if target != "reference" and not Path(target).is_file():
            raise ConfigError(
                f"configuration chaos_rec_target must be 'reference' or a deployment file, "
                f"got {target!r} (file not found)"
            )
        floor = cfg.get("chaos_rec_safeguard_availability", 0.5)
        stack_config = cfg.get("chaos_rec_stack_config")
        return cls(
            state_dir=Path(state_dir).expanduser().absolute() if state_dir else None,
            run_dir=Path(run_dir).expanduser().absolute() if run_dir else None,
            target=target,
            gateway_url=_url("chaos_rec_gateway_url", cfg["chaos_rec_gateway_url"])
            if cfg.get("chaos_rec_gateway_url")
            else None,
            toxiproxy_url=_url("chaos_rec_toxiproxy_url", cfg["chaos_rec_toxiproxy_url"])
            if cfg.get("chaos_rec_toxiproxy_url")
            else None,
            load_rps=_as_float(
                "chaos_rec_load_rps", cfg.get("chaos_rec_load_rps", 30), 0.1, 10_000
            ),
            load_users=int(
                _as_float("chaos_rec_load_users", cfg.get("chaos_rec_load_users", 10), 1, 1000)
            ),
            seed=int(_as_float("chaos_rec_seed", cfg.get("chaos_rec_seed", 0), 0, 2**31)),
            stack_config=Path(stack_config) if stack_config else None,
            load=_as_bool("chaos_rec_load", cfg.get("chaos_rec_load", True)),
            warmup_s=_as_float("chaos_rec_warmup_s", cfg.get("chaos_rec_warmup_s", 5), 0, 600),
            safeguard_availability=None
            if floor is None or floor == ""
            else _as_float("chaos_rec_safeguard_availability", floor, 0, 1),
            safeguard_s=_as_float(
                "chaos_rec_safeguard_s", cfg.get("chaos_rec_safeguard_s", 10), 1, 3600
            ),
            timeout_s=_as_float("chaos_rec_timeout_s", cfg.get("chaos_rec_timeout_s", 5), 0.1, 120),
            admin_token=_find_secret(secrets, "chaos_rec_admin_token"),
        )

    def run_context(self, *, create: bool = False, name: str = "run") -> RunContext:
        """The run dir: configured, else opened by the control, else (create) a new one."""
        if self.run_dir is not None:
            return RunContext(self.run_dir)
        if ACTIVE.ctx is not None:
            return ACTIVE.ctx
        if create:
            return RunContext.create(self.state_dir or Path(".chaos-rec").absolute(), name)
        raise ConfigError(
            "no run dir: add the chaos_rec.controls control to the experiment "
            "or set configuration chaos_rec_run_dir"
        )


def ext_config(
    configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None = None
) -> ExtConfig:
    """The one helper every activity calls to type its configuration."""
    return ExtConfig.from_ctk(configuration, secrets)
