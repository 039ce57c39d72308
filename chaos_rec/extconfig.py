"""ExtConfig: Chaos Toolkit ``configuration``/``secrets`` turned into one typed config.

The keys, their defaults, ranges and the environment variables this door reads
(``CHAOS_REC_STATE_DIR``, ``CHAOS_REC_RUN_DIR``) are :mod:`chaos_rec.settings`'
(``docs/configuration.md`` lists them); ``ExtConfig.from_ctk`` is the one place the
extension turns them into a typed config. Chaos Toolkit has already resolved
``{"type": "env"}`` values and ``${name}`` substitutions by the time an activity gets the dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from chaos_rec.core.run import ACTIVE
from chaos_rec.core.rundir import RunContext
from chaos_rec.errors import ConfigError
from chaos_rec.settings import CTK_KEYS, default, resolve_ctk

__all__ = ["ExtConfig", "ext_config"]

KEYS: Final[frozenset[str]] = CTK_KEYS  # the chaos_rec_* configuration keys


@dataclass(frozen=True)
class ExtConfig:
    """Typed configuration of the chaos_rec extension."""

    state_dir: Path | None = None
    run_dir: Path | None = None
    target: str = default("target")
    gateway_url: str | None = None
    toxiproxy_url: str | None = None
    load_rps: float = default("load_rps")
    load_users: int = default("load_users")
    load_workers: int = default("load_workers")
    seed: int = default("seed")
    stack_config: Path | None = None
    load: bool = default("load")
    warmup_s: float = default("warmup_s")
    safeguard_availability: float | None = default("safeguard_availability")
    safeguard_s: float = default("safeguard_s")
    fail_fast: bool = default("fail_fast")
    timeout_s: float = default("timeout_s")
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
        return cls(**resolve_ctk(configuration, secrets, environ))

    def run_context(self, *, create: bool = False, name: str = "run") -> RunContext:
        """The run dir: configured, else opened by the control, else (create) a new one."""
        if self.run_dir is not None:
            return RunContext(self.run_dir)
        if ACTIVE.ctx is not None:
            return ACTIVE.ctx
        if create:
            return RunContext.create(self.state_dir or Path(default("state_dir")).absolute(), name)
        raise ConfigError(
            "no run dir: add the chaos_rec.controls control to the experiment "
            "or set configuration chaos_rec_run_dir"
        )


def ext_config(
    configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None = None
) -> ExtConfig:
    """The one helper every activity calls to type its configuration."""
    return ExtConfig.from_ctk(configuration, secrets)
