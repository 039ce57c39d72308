"""Rollout through Triton's model-repository API (``rollout.kind: triton-repository``).

A push loads the bundle into each replica's Triton as a new version of the model, the way
Triton's repository extension allows from the request itself: ``POST
/v2/repository/models/{model}/load`` with every file of the bundle as a ``file:<version>/<path>``
parameter (base64) and, when the section names one, the model ``config`` (JSON). Triton answers
200 when the model loaded and 400 with ``{"error": …}`` when it refused it: accepted or refused,
like the other rollout backends. ``version`` reads the model's metadata (``GET
/v2/models/{model}``: the last of its ``versions``). Section keys: ``model`` (required),
``version`` (the version folder a push writes, default ``"1"``), ``config`` (an object),
``reference_bundle``, ``headers`` (strings, ``${secret:NAME}`` allowed), ``timeout_s``.

Triton must run with ``--model-control-mode=explicit``. PyTriton's servers do not take this
(they token-protect the repository API and their models call back into a Python binding, so a
loaded file cannot change what they serve); deploy/triton therefore uses the ``command``
backend, and this one is checked against Triton's documented protocol with fakes at the HTTP
seam only.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import httpx

from chaos_rec.core.target import Deployment
from chaos_rec.errors import ConfigError, FaultError
from chaos_rec.jsonhttp import call

__all__ = ["KIND", "TritonRepositoryRollout"]

KIND: Final = "triton-repository"
_KEYS: Final = frozenset({"kind", "model", "version", "config", "reference_bundle", "headers",
                          "timeout_s"})  # fmt: skip
MAX_BUNDLE_BYTES: Final = 512 * 1024 * 1024  # a request body Triton accepts (its default limit)


class TritonRepositoryRollout:
    """Model versions through each replica's Triton repository API."""

    def __init__(
        self,
        section: Mapping[str, Any],
        dep: Deployment,
        timeout_s: float,
        *,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        where = f"deployment file {dep.source}: rollout"
        unknown = sorted(set(section) - _KEYS)
        if unknown:
            raise ConfigError(
                f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(_KEYS))})"
            )
        model = section.get("model")
        if not isinstance(model, str) or not model:
            raise ConfigError(f"{where}.model: required, the model name Triton serves")
        version = str(section.get("version", "1"))
        if not version.isdigit():
            raise ConfigError(f"{where}.version: a version number, got {version!r}")
        config = section.get("config")
        if config is not None and not isinstance(config, Mapping):
            raise ConfigError(f"{where}.config: must be an object (Triton's model config as JSON)")
        self.dep, self.model, self.version_dir, self.config = dep, model, version, config
        self.timeout_s = float(section.get("timeout_s", timeout_s))
        ref = section.get("reference_bundle")
        self._reference = Path(ref).absolute() if isinstance(ref, str) and ref else None
        self._headers = dict(headers or {})  # may hold secrets: never shown
        self._client = httpx.Client(timeout=self.timeout_s, transport=transport)

    def _base(self, replica: str) -> str:
        return self.dep.replica_url(replica).rstrip("/")

    def version(self, replica: str) -> str | None:
        """The last version Triton lists for the model on ``replica`` (None when it lists none)."""
        reply = call("GET", f"{self._base(replica)}/v2/models/{self.model}", into=FaultError,
                     timeout=self.timeout_s, headers=self._headers or None, client=self._client,
                     what=f"Triton model metadata of {replica}")  # fmt: skip
        if not reply.ok:
            raise FaultError(f"Triton model metadata of {replica} answered {reply.status}")
        versions = reply.data.get("versions") if isinstance(reply.data, dict) else None
        return str(versions[-1]) if isinstance(versions, list) and versions else None

    def load_body(self, bundle: Path) -> dict[str, Any]:
        """The load request: each file of ``bundle`` as ``file:<version>/<path>`` (base64)."""
        if not bundle.is_dir():
            raise FaultError(f"bundle {bundle} is not a folder")
        files = sorted(p for p in bundle.rglob("*") if p.is_file())
        if sum(p.stat().st_size for p in files) > MAX_BUNDLE_BYTES:
            raise FaultError(f"bundle {bundle} is larger than a load request may carry")
        params: dict[str, Any] = {
            f"file:{self.version_dir}/{p.relative_to(bundle).as_posix()}":
                base64.b64encode(p.read_bytes()).decode("ascii")
            for p in files
        }  # fmt: skip
        if self.config is not None:
            params["config"] = json.dumps(self.config)
        return {"parameters": params}

    def push(self, replica: str, bundle: Path) -> tuple[bool, Mapping[str, Any] | str]:
        """Load ``bundle`` on ``replica``: (True, answer) on 200, (False, Triton's error) on 400."""
        url = f"{self._base(replica)}/v2/repository/models/{self.model}/load"
        reply = call("POST", url, into=FaultError, timeout=self.timeout_s,
                     json=self.load_body(bundle), headers=self._headers or None,
                     client=self._client, what=f"Triton load on {replica}")  # fmt: skip
        if reply.status == 200:
            return True, reply.data if isinstance(reply.data, dict) else {"answer": reply.data}
        if reply.status == 400:
            error = reply.data.get("error") if isinstance(reply.data, dict) else reply.data
            return False, str(error or "refused")
        raise FaultError(f"Triton load on {replica} answered {reply.status}: {reply.data}")

    def reference_bundle(self) -> Path | None:
        """The bundle to restore after a bad push (``reference_bundle``), if named."""
        return self._reference
