"""AdapterTraffic: the ``Traffic`` seam for any :class:`TrafficSpec`, over one pooled client.

The client is httpx below ``base_url``, or, for an ``oip-v2`` spec with ``"protocol": "grpc"``,
one :class:`~chaos_rec.traffic.grpc_client.OipGrpcClient` channel to the spec's ``grpc_url``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from chaos_rec.core.seams import Answer
from chaos_rec.errors import ConfigError, ProbeError
from chaos_rec.jsonhttp import call
from chaos_rec.traffic.grpc_client import OipGrpcClient
from chaos_rec.traffic.spec import TrafficSpec
from chaos_rec.traffic.wire import build_request, parse_answer

__all__ = ["AdapterTraffic"]


class AdapterTraffic:
    """Requests for users through the adapter ``spec`` names, below ``base_url``."""

    def __init__(
        self,
        base_url: str,
        spec: TrafficSpec,
        timeout_s: float,
        *,
        holdout: Path | None = None,
        user_ids: Sequence[int] = (),
        queries: Sequence[str] = (),
        secrets: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"traffic URL must start with http:// or https://, got {base_url!r}")
        if timeout_s <= 0:
            raise ConfigError(f"traffic timeout_s must be positive, got {timeout_s!r}")
        self.base_url = base_url.rstrip("/")
        self.spec = spec
        self.timeout_s = float(timeout_s)
        self.holdout = holdout
        self.user_ids = tuple(user_ids)  # load's users when there is no hold-out file
        self.queries = tuple(queries)
        self._secrets = dict(secrets or {})  # header values; never written, logged or shown
        self._transport = transport  # tests pass an httpx.MockTransport
        self._client: httpx.Client | None = None
        self._grpc: OipGrpcClient | None = None

    def start_load(
        self,
        run_dir: Path,
        *,
        rps: float,
        users: int,
        seed: int,
        timeout_s: float,
        workers: int = 0,
    ) -> Any:
        """Locust (a subprocess) sending this adapter's requests, for the hold-out's users."""
        from chaos_rec.load import LoadRunner

        holdout = self.holdout if self.holdout and self.holdout.is_file() else None
        runner = LoadRunner(
            self.base_url, run_dir, rps=rps, users=users, seed=seed, holdout=holdout,
            user_ids=self.user_ids, queries=self.queries, traffic=self.spec.to_dict(),
            secrets=self._secrets, workers=workers,
            timeout_s=timeout_s,
        )  # fmt: skip
        return runner.start()

    def recommend(self, user_id: int, k: int, query: str | None = None) -> Answer | None:
        """One request; None unless it was answered with 200 (gRPC: OK) and a readable body."""
        if self.spec.protocol == "grpc":
            if self._grpc is None:
                self._grpc = OipGrpcClient(self.spec, self.timeout_s, self._secrets)
            return self._grpc.infer(user_id, k, query).answer
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s, transport=self._transport)
        req = build_request(self.spec, user_id, k, query, self._secrets)
        try:
            reply = call(
                req.method, self.base_url + req.path, into=ProbeError, timeout=self.timeout_s,
                json=req.json_body, headers=req.headers or None, client=self._client,
                what=f"{self.spec.kind} {req.method} {self.base_url}{req.path}",
            )  # fmt: skip
        except ProbeError:
            return None
        return parse_answer(self.spec, reply.status, reply.data, k)

    def close(self) -> None:
        """Close the HTTP client and the gRPC channel."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._grpc is not None:
            self._grpc.close()
            self._grpc = None
