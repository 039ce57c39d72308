"""One team-written shell command: placeholders checked and quoted, a timeout, secrets masked.

The ``command`` backends (``chaos_rec.backends.commands``) run every step through
:func:`run_step`. A placeholder is ``{name}`` (``${NAME}`` stays the shell's); its value is
substituted ``shlex.quote``-d, so a replica name cannot inject. A failure is one FaultError line:
the step's name, its exit code and the last line it printed, with secret values masked.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from chaos_rec.errors import ConfigError, FaultError

__all__ = ["MASK", "Outcome", "Shell", "check_placeholders", "placeholders", "substitute"]

MASK: Final = "***"
_PLACEHOLDER: Final = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SHOWN: Final = 160  # characters of a command echoed in an error line


def placeholders(template: str) -> list[str]:
    """The ``{name}`` placeholders of a command, in order (``${NAME}`` is the shell's)."""
    return _PLACEHOLDER.findall(template)


def check_placeholders(template: str, allowed: Collection[str], where: str) -> None:
    """Refuse a placeholder outside ``allowed`` with one ConfigError line naming it."""
    for name in placeholders(template):
        if name not in allowed:
            known = ", ".join("{" + a + "}" for a in sorted(allowed)) or "none"
            raise ConfigError(f"{where}: unknown placeholder {{{name}}} (known: {known})")


def substitute(template: str, values: Mapping[str, str]) -> str:
    """The command with each placeholder replaced by its shell-quoted value."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise ConfigError(f"no value for placeholder {{{name}}} in {template!r}")
        return shlex.quote(values[name])

    return _PLACEHOLDER.sub(one, template)


@dataclass(frozen=True)
class Outcome:
    """How a command ended: its exit code, what it printed, and its last line (masked)."""

    code: int
    stdout: str
    last: str


class Shell:
    """Runs a seam's commands with the environment (plus ``env``) and masks ``secret_env``."""

    def __init__(
        self, env: Mapping[str, str], secret_env: Iterable[str], default_timeout_s: float
    ) -> None:
        self.env = {**os.environ, **env}
        self.default_timeout_s = default_timeout_s
        secrets = (self.env.get(key, "") for key in secret_env)
        # longest first, so a secret that contains another is masked whole
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        """``text`` with every secret value replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def shown(self, command: str) -> str:
        """The command as an error line may echo it: one line, masked, shortened."""
        flat = " ".join(self.mask(command).split())
        return flat if len(flat) <= _SHOWN else flat[: _SHOWN - 1] + "…"

    def run(self, step: str, command: str, timeout_s: float | None = None) -> Outcome:
        """Run ``command`` in ``sh``; FaultError (one line) when it cannot start or times out."""
        timeout = self.default_timeout_s if timeout_s is None else timeout_s
        try:
            proc = subprocess.Popen(
                command, shell=True, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                errors="replace", start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise FaultError(
                f"{step} could not start `{self.shown(command)}`: {exc.strerror or exc}"
            ) from exc
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_group(proc)
            hint = " (raise timeout_s in its deployment-file section)" if timeout_s is None else ""
            raise FaultError(
                f"{step} timed out after {timeout:g}s: `{self.shown(command)}`{hint}"
            ) from exc
        return Outcome(proc.returncode, self.mask(out), self.mask(_last_line(err, out)))

    def check(self, step: str, command: str, timeout_s: float | None = None) -> Outcome:
        """Run ``command``; FaultError naming the step, exit code and last line unless it exits 0."""
        outcome = self.run(step, command, timeout_s)
        if outcome.code != 0:
            raise self.failed(step, command, outcome)
        return outcome

    def failed(self, step: str, command: str, outcome: Outcome, how: str = "") -> FaultError:
        """The one-line FaultError for a command that ended badly."""
        said = f": {outcome.last}" if outcome.last else " (printed nothing)"
        return FaultError(f"{step} exited {outcome.code}{how} `{self.shown(command)}`{said}")


def _last_line(*texts: str) -> str:
    """The last non-empty line of the first text that has one (stderr before stdout)."""
    for text in texts:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return ""


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the command's whole process group (the shell and what it started) and reap it."""
    with contextlib.suppress(ProcessLookupError):  # the group has already gone
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.communicate(timeout=5.0)
    except subprocess.TimeoutExpired:  # a child left the group and holds the pipes
        proc.kill()
        proc.wait()
