"""Exceptions of chaos_rec.

ChaosRecError
 ├── ConfigError          bad configuration, SLO spec or CLI input
 ├── StackError           the reference stack could not be started/stopped/read
 │    └── StackNotRunning no stack state file, or its processes are gone
 ├── ProxyError           the fault proxy (Toxiproxy API) refused or failed a request
 │    └── ProxyRequestError  our fault proxy refuses an API request (carries the HTTP status)
 ├── FaultError           a fault could not be injected, verified or rolled back
 ├── LoadError            the load generator (Locust subprocess) failed
 ├── ProbeError           a probe could not measure
 ├── DrillError           a drill's run could not be judged (journal missing, …)
 └── CapabilityError      the target lacks a capability the drill needs (nothing was injected)

Errors of httpx, gRPC, Redis, Chaos Toolkit and the OS become these in one place,
``chaos_rec.boundary`` (``translating(what, into)``): "<what> failed: <reason> (<Type>: …)".
A command-line usage error is one line too (:class:`OneLineParser`, exit status 2).
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from typing import NoReturn

__all__ = [
    "INTERRUPTED_EXIT",
    "CapabilityError",
    "ChaosRecError",
    "ConfigError",
    "DrillError",
    "FaultError",
    "LoadError",
    "OneLineParser",
    "ProbeError",
    "ProxyError",
    "ProxyRequestError",
    "StackError",
    "StackNotRunning",
    "is_ctrl_c",
    "settle_interrupt",
]


INTERRUPTED_EXIT = 130
"""Exit status of a command stopped by Ctrl-C (128 + SIGINT), the shell's convention."""


class ChaosRecError(Exception):
    """Root of every error chaos_rec raises on purpose."""


class ConfigError(ChaosRecError):
    """Bad configuration, SLO spec or command-line input."""


class StackError(ChaosRecError):
    """The reference stack could not be started, stopped or read."""


class StackNotRunning(StackError):
    """No live stack was found."""


class ProxyError(ChaosRecError):
    """The fault proxy refused or failed a request."""


class ProxyRequestError(ProxyError):
    """Our fault proxy refuses an API request; ``status`` is the HTTP status it answers."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class FaultError(ChaosRecError):
    """A fault could not be injected, verified or rolled back."""


class LoadError(ChaosRecError):
    """The load generator failed."""


class ProbeError(ChaosRecError):
    """A probe could not measure."""


class DrillError(ChaosRecError):
    """A drill's run could not be judged."""


class CapabilityError(ChaosRecError):
    """The target lacks a capability the drill needs; nothing was injected."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (no usage dump), exit status 2.

    Every command line of chaos_rec uses it (``chaos-rec …`` and ``python -m
    chaos_rec.toxiproxy``); sub-parsers inherit it.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def is_ctrl_c(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C, also one Python re-raised as another error: 3.11 turns one
    that lands while a class is being created (an Enum of a lazily imported module, say) into
    ``RuntimeError("Error calling __set_name__ …")`` with the interrupt as its cause."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, KeyboardInterrupt):
            return True
        cause = cause.__cause__
    return False


def settle_interrupt() -> int:
    """Mark a Ctrl-C as handled and return :data:`INTERRUPTED_EXIT`, the status to exit with.

    CPython (3.11+) sets a process-wide flag whenever code run from a *string* (``exec`` or
    ``eval`` of source: namedtuple's ``__new__``, a ``.pth`` line of ``site``) ends in
    KeyboardInterrupt, even one the program catches later; ``python -m …`` then ends by
    killing itself with SIGINT (status -2) whatever ``main`` returned. A SIGINT landing in
    such a call during ``stack up`` did that. Running any string resets the flag first.
    """
    if sys.implementation.name == "cpython":
        ctypes.pythonapi.PyRun_SimpleString(b"pass")
    return INTERRUPTED_EXIT
