"""The JSON-over-HTTP call every chaos_rec client makes: a timeout always, errors translated.

A transport failure (refused, timed out, bad URL, …) raises the caller's error class through
:mod:`chaos_rec.boundary`; an HTTP error status is an answer (:class:`Reply`), which the
caller words for what it asked (its messages name the API it speaks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from chaos_rec.boundary import translating
from chaos_rec.errors import ChaosRecError

__all__ = ["Reply", "call"]


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: ``data`` is the decoded JSON, the text when it is not JSON, None if empty."""

    status: int
    data: Any
    text: str

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status < 400

    def error_message(self) -> str:
        """The ``error`` field of a JSON error body, else the body's first line."""
        if isinstance(self.data, dict) and "error" in self.data:
            return str(self.data["error"])
        text = self.text.strip()
        return text.splitlines()[0][:200] if text else "(empty body)"


def call(
    method: str,
    url: str,
    *,
    into: type[ChaosRecError],
    timeout: float,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    what: str | None = None,
    client: httpx.Client | None = None,
) -> Reply:
    """Send one request (``json`` as the body) and read the answer; ``into`` when none came.

    ``what`` names the call in the error (default ``"<method> <url>"``); ``client`` reuses a
    pooled ``httpx.Client`` (keeps its connections), else each call has its own connection.
    """
    with translating(what or f"{method} {url}", into):
        if client is not None:
            resp = client.request(method, url, json=json, headers=headers, timeout=timeout)
        else:
            resp = httpx.request(method, url, json=json, headers=headers, timeout=timeout)
    data: Any = None
    if resp.content:
        try:
            data = resp.json()
        except ValueError:
            data = resp.text
    return Reply(resp.status_code, data, resp.text)
