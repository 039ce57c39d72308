"""The target allowlist: the one check a drill's target passes before chaos-rec touches it.

Every backend resolves the endpoints it reaches through :class:`TargetAllowlist` (a
:class:`~chaos_rec.core.target.Deployment` builds one from its ``allow_hosts``, loopback by
default) when it is built, before any network call, process signal or fault; a host off the list
is one :class:`~chaos_rec.errors.FaultError` line naming the deployment-file key it came from.
Kube contexts and namespaces are refused by the same :func:`refuse_unlisted` against the
``processes`` section's ``allowed_contexts`` / ``allowed_namespaces``
(``chaos_rec.backends.kubernetes``). The table of what each seam reaches is
``Deployment.targets`` (``docs/architecture.md``, "The target allowlist").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from chaos_rec.errors import FaultError

__all__ = ["FILE_FIX", "LOOPBACK", "REFERENCE_FIX", "TargetAllowlist", "host_of", "refuse_unlisted"]

LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
FILE_FIX: Final = "add it to allow_hosts in the deployment file"
REFERENCE_FIX: Final = (
    "the reference stack's targets are loopback only (drive another host through a deployment file)"
)


def host_of(url: str) -> str:
    """The host of a URL (``http://h:1/x``) or an address (``h:1``, ``[::1]:1``), lower case."""
    try:
        return urlsplit(url if "//" in url else f"//{url}").hostname or ""
    except ValueError:  # a malformed address (an unclosed "[") names no host
        return ""


def refuse_unlisted(subject: str, name: str, allowed: Iterable[str], fix: str) -> None:
    """The one refusal: FaultError ``<subject> '<name>' is not on the allowlist (…); <fix>``."""
    listed = list(allowed)
    if name not in listed:
        raise FaultError(
            f"{subject} {name!r} is not on the allowlist ({', '.join(listed) or 'empty'}); {fix}"
        )


@dataclass(frozen=True)
class TargetAllowlist:
    """The hosts faults may reach; ``fix`` says how to add one (where the list comes from)."""

    hosts: frozenset[str] = LOOPBACK
    fix: str = FILE_FIX

    def allow(self, what: str, url: str) -> str:
        """``url`` when its host is on the list, else FaultError naming ``what`` (its key)."""
        hosts = sorted({h.lower() for h in self.hosts})
        refuse_unlisted(f"{what}: host", host_of(url), hosts, self.fix)
        return url

    def allow_all(self, targets: Iterable[tuple[str, str]]) -> None:
        """Check every ``(what, url)``; the first off the list is refused."""
        for what, url in targets:
            self.allow(what, url)
