"""The one table of settings, and how a raw value becomes a typed, range-checked one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from chaos_rec.errors import ConfigError

Kind = Literal["int", "float", "bool", "path", "paths", "url", "target", "secret"]

ENV_PREFIX: Final = "CHAOS_REC_"
CTK_PREFIX: Final = "chaos_rec_"


@dataclass(frozen=True)
class Setting:
    """One setting and how each door spells it (None: that door does not read it)."""

    name: str
    kind: Kind
    default: Any
    meaning: str
    lo: float | None = None
    hi: float | None = None
    hi_open: bool = False  # the range is [lo, hi) instead of [lo, hi]
    nullable: bool = False  # Chaos Toolkit: null or "" turns it off (None)
    option: str | None = None
    metavar: str | None = None
    ini: str | None = None
    env: str | None = None
    ctk: str | None = None
    ctk_env: bool = False  # the Chaos Toolkit door also reads ``env``

    @property
    def dest(self) -> str:
        """The pytest option's ``dest`` (also the ini key where there is one)."""
        return self.ini or (self.option or self.name).lstrip("-").replace("-", "_")

    @property
    def in_pytest(self) -> bool:
        """Whether the pytest door resolves it (it has an option or an ini key)."""
        return self.option is not None or self.ini is not None

    def range_text(self) -> str:
        """``[lo, hi]`` (or ``[lo, hi)``), empty when unbounded."""
        if self.lo is None or self.hi is None:
            return ""
        return f"[{number_text(self.lo)}, {number_text(self.hi)}{')' if self.hi_open else ']'}"

    def default_text(self) -> str:
        """The default as a user would write it ("" when there is none)."""
        if self.default is None:
            return ""
        if isinstance(self.default, bool):
            return str(self.default).lower()
        if isinstance(self.default, tuple):
            return ", ".join(self.default)
        if isinstance(self.default, float):
            return number_text(self.default)
        return str(self.default)

    def parse(self, raw: object, spelled: str) -> Any:
        """Type and range-check ``raw`` (int, float, bool, url); ConfigError names ``spelled``."""
        if self.kind == "bool":
            return _bool(raw, spelled)
        if self.kind == "url":
            return _url(raw, spelled)
        if self.kind not in ("int", "float"):
            return raw  # paths and targets: the door resolves them against its own base
        what = "an integer" if self.kind == "int" else "a number"
        try:
            if isinstance(raw, bool) or raw is None:
                raise TypeError(raw)
            value: float = _int(raw) if self.kind == "int" else float(str(raw))
        except (TypeError, ValueError):
            raise ConfigError(f"{spelled} must be {what}, got {raw!r}") from None
        if self.lo is not None and self.hi is not None:
            below_hi = value < self.hi if self.hi_open else value <= self.hi
            if not (self.lo <= value and below_hi):
                raise ConfigError(f"{spelled} must be within {self.range_text()}, got {raw!r}")
        return value


# The one table. Order is the order of docs/configuration.md.
TABLE: Final = (
    Setting("paths", "paths", ("experiments",),
             "folders or files of Chaos Toolkit experiments collected as drills "
             "(the option is repeatable)",
             option="--drill-path", metavar="PATH", ini="drill_paths"),
    Setting("target", "target", "reference",
             "what the drills drive: the reference stack, or a deployment file "
             "(`chaos_rec.targets` shape)",  # DrillConfig.stack, ExtConfig.target
             option="--drill-stack", metavar="reference|FILE", ini="drill_stack",
             env="CHAOS_REC_DRILL_STACK", ctk="chaos_rec_target"),
    Setting("report_dir", "path", None,
             "write journals, timelines and one HTML report into this folder",
             option="--drill-report", metavar="DIR", ini="drill_report",
             env="CHAOS_REC_DRILL_REPORT"),
    Setting("seed", "int", 1234, "seed for load and fault randomness",
             lo=0, hi=2**31, option="--drill-seed", metavar="N", ini="drill_seed",
             env="CHAOS_REC_SEED", ctk="chaos_rec_seed"),
    Setting("dry", "bool", False, "validate the drills and show their plans; inject nothing",
             option="--drill-dry", env="CHAOS_REC_DRILL_DRY"),
    Setting("slo", "path", None,
             "SLO spec (JSON/TOML) for drills without their own "
             "(else `[tool.chaos_rec.slo]` of `pyproject.toml`)",
             option="--drill-slo", metavar="FILE", ini="drill_slo", env="CHAOS_REC_DRILL_SLO"),
    Setting("baseline_dir", "path", None,
             "a previous report folder: fail drills whose figures regressed beyond the "
             "tolerance",
             option="--drill-baseline", metavar="DIR", ini="drill_baseline",
             env="CHAOS_REC_DRILL_BASELINE"),
    Setting("ctk_settings", "path", None,
             "Chaos Toolkit settings file the drills run with, as `chaos run --settings` does "
             "(global controls, notifications; default `~/.chaostoolkit/settings.yaml`)",
             option="--drill-ctk-settings", metavar="FILE", ini="drill_ctk_settings",
             env="CHAOS_REC_CTK_SETTINGS"),
    Setting("tolerance", "float", 0.10,
             "relative regression tolerance against the baseline (0.1 = 10%)",
             lo=0, hi=10, hi_open=True, ini="drill_baseline_tolerance"),
    Setting("state_dir", "path", ".chaos-rec",
             "the reference stack's state folder (`stack.json`, logs, `runs/`)",
             ini="drill_state_dir", env="CHAOS_REC_STATE_DIR", ctk="chaos_rec_state_dir",
             ctk_env=True),
    Setting("run_dir", "path", None,
             "the run folder activities write into (default: the one the control or the "
             "plugin opened, `<state_dir>/runs/<UTC stamp>`)",
             env="CHAOS_REC_RUN_DIR", ctk="chaos_rec_run_dir", ctk_env=True),
    Setting("load_rps", "float", 20.0,
             "load: requests per second (Python drills, the control's Locust load)",
             lo=0.1, hi=10_000, ini="drill_load_rps", ctk="chaos_rec_load_rps"),
    Setting("load_users", "int", 8, "load: concurrent users", lo=1, hi=1000,
             ini="drill_load_users", ctk="chaos_rec_load_users"),
    Setting("load_workers", "int", 0,
             "load: Locust worker processes under one master (0: one process); more than one "
             "core for a spike", lo=0, hi=16, ini="drill_load_workers", ctk="chaos_rec_load_workers"),
    Setting("load", "bool", True, "the control runs Locust load for the whole run",
             ctk="chaos_rec_load"),
    Setting("warmup_s", "float", 5.0, "seconds of load before the steady phase begins",
             lo=0, hi=600, ctk="chaos_rec_warmup_s"),
    Setting("safeguard_availability", "float", 0.5,
             "availability floor below which the control aborts the run (null disables)",
             lo=0, hi=1, nullable=True, ctk="chaos_rec_safeguard_availability"),
    Setting("safeguard_s", "float", 10.0,
             "window (seconds) whose availability the safeguard compares with the floor",
             lo=1, hi=3600, ctk="chaos_rec_safeguard_s"),
    Setting("fail_fast", "bool", False,
             "stop a drill, rolling back, at the end of the first phase that missed a load SLO "
             "(its later phases are not judged); the drill fails sooner, for the same reason",
             option="--drill-fail-fast", env="CHAOS_REC_FAIL_FAST", ctk="chaos_rec_fail_fast",
             ctk_env=True),
    Setting("timeout_s", "float", 5.0, "network timeout of every activity's call",
             lo=0.1, hi=120, ctk="chaos_rec_timeout_s"),
    Setting("gateway_url", "url", None,
             "gateway URL (default: from the target)", ctk="chaos_rec_gateway_url"),
    Setting("toxiproxy_url", "url", None,
             "fault-proxy (Toxiproxy API) URL (default: from the target)",
             ctk="chaos_rec_toxiproxy_url"),
    Setting("stack_config", "path", None,
             "StackConfig file for the control's `stack up`", ctk="chaos_rec_stack_config"),
    Setting("admin_token", "secret", None,
             "admin token of the stack's components, in `secrets` (top level or any scope; "
             "default: `<state_dir>/admin_token`)",
             ctk="chaos_rec_admin_token"),
)  # fmt: skip

SETTINGS: Final[Mapping[str, Setting]] = {s.name: s for s in TABLE}
CTK_KEYS: Final[frozenset[str]] = frozenset(
    s.ctk for s in TABLE if s.ctk is not None and s.kind != "secret"
)


def default(name: str) -> Any:
    """The default of one setting (what a dataclass field defaults to)."""
    return SETTINGS[name].default


# ---- values -----------------------------------------------------------------------------


def number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _int(raw: object) -> int:
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    try:
        return int(text)
    except ValueError:
        f = float(text)
        if not f.is_integer():
            raise
        return int(f)


def _bool(raw: object, spelled: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{spelled} must be true or false, got {raw!r}")


def _url(raw: object, spelled: str) -> str:
    text = str(raw).strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise ConfigError(f"{spelled} must be an http:// URL, got {raw!r}")
    return text
