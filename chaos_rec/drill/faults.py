"""The ``fault_proxy`` fixture: context managers per link and toxic, verified and always undone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

from chaos_rec.core.seams import Links
from chaos_rec.errors import ChaosRecError, FaultError
from chaos_rec.toxiproxy.model import check_toxic


class PhaseMarker(Protocol):
    """Something that records phase marks (the ``drill`` fixture)."""

    def mark(self, phase: str, by: str = ...) -> None: ...


class FaultProxy:
    """Inject faults on fault-proxy links; each one is verified, marked and undone on exit."""

    def __init__(self, client: Links, marker: PhaseMarker | None = None) -> None:
        self.client = client
        self.marker = marker
        self._toxics: list[tuple[str, str]] = []
        self._cut: list[str] = []

    def _mark(self, phase: str, by: str) -> None:
        if self.marker is not None:
            self.marker.mark(phase, by)

    @contextlib.contextmanager
    def toxic(
        self,
        link: str,
        type: str,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        **attributes: Any,
    ) -> Iterator[dict[str, Any]]:
        """Add a toxic (e.g. ``latency=200``) on ``link`` for the ``with`` block."""
        check_toxic(f"toxic on {link}", type, attributes, stream, toxicity)  # before any call
        created = self.client.add_toxic(
            link, type, attributes, name=name, stream=stream, toxicity=toxicity
        )
        toxic_name = str(created.get("name") or name or f"{type}_{stream}")
        self._toxics.append((link, toxic_name))
        if toxic_name not in {t.get("name") for t in self.client.toxics(link)}:
            raise FaultError(f"toxic {toxic_name} on {link} was accepted but is not in effect")
        self._mark("fault", f"toxic {type} on {link}")
        try:
            yield created
        finally:
            self.client.remove_toxic(link, toxic_name)
            self._toxics.remove((link, toxic_name))
            self._mark("recovery", f"removed {type} on {link}")

    @contextlib.contextmanager
    def cut(self, link: str) -> Iterator[None]:
        """Take ``link`` down (listener and connections closed) for the ``with`` block."""
        self.client.disable(link)
        self._cut.append(link)
        if self.client.get_proxy(link).get("enabled", True):
            raise FaultError(f"link {link} was disabled but is still enabled")
        self._mark("fault", f"cut {link}")
        try:
            yield
        finally:
            self.client.enable(link)
            self._cut.remove(link)
            self._mark("recovery", f"restored {link}")

    def undo_all(self) -> list[str]:
        """Remove every toxic and restore every link this fixture still holds."""
        done: list[str] = []
        errors: list[str] = []
        for link, toxic_name in list(self._toxics):
            try:
                self.client.remove_toxic(link, toxic_name)
                done.append(f"removed {toxic_name} on {link}")
            except ChaosRecError as exc:
                errors.append(f"{link}/{toxic_name}: {exc}")
            self._toxics.remove((link, toxic_name))
        for link in list(self._cut):
            try:
                self.client.enable(link)
                done.append(f"re-enabled {link}")
            except ChaosRecError as exc:
                errors.append(f"{link}: {exc}")
            self._cut.remove(link)
        if errors:
            raise FaultError("could not undo faults: " + "; ".join(errors))
        return done
