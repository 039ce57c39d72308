"""Fuzz a running fault proxy's API with schemathesis, from the document it serves.

Cases are drawn from ``GET /openapi.json`` (valid and invalid requests alike) and sent to the
live server; each answer is judged by status code: a 5xx is a bug, except the documented 500 of
a listener that cannot bind (as the real server answers it), which is counted on its own; and
against the document (status code, content type, headers, body schema, invalid data
rejected). A crash is a request the server never answered, or a server that stops answering.

So that fuzzing never takes a port somebody else uses, a listen address in a request body keeps
its host but gets port 0. Half the cases are aimed: at a proxy and a toxic that exist, and
with an allowed upstream, so the update, toxic and create paths are reached with fuzzed bodies,
not only their 404s and 400s.

Needs the ``[dev]`` extra (schemathesis); imported only by the fuzz test and campaign script.
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import hypothesis
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi import checks

from chaos_rec.errors import ProxyRequestError
from chaos_rec.toxiproxy.allowlist import split_hostport
from chaos_rec.toxiproxy.openapi import OPENAPI_PATH

__all__ = ["FuzzReport", "fuzz_api"]

TARGET_PROXY = "fuzz-target"
TARGET_TOXIC = "fuzz-latency"
_MAX_PROXIES = 20  # delete everything beyond this many proxies (fuzzed creations pile up)
_CHECKS = [
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


@dataclass
class FuzzReport:
    """What a fuzzing run found; ``ok`` when no 5xx, no crash and every answer conformed."""

    cases: int = 0
    seconds: float = 0.0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    server_errors: list[str] = field(default_factory=list)  # 5xx other than bind failures
    bind_failures: int = 0  # the documented 500 `listen tcp …: bind: …`
    nonconforming: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No 5xx, no crash, no answer outside the document."""
        return not (self.server_errors or self.crashes or self.nonconforming)

    def to_json(self) -> dict[str, Any]:
        """The figures, for the final JSON line."""
        return {
            "cases": self.cases,
            "seconds": round(self.seconds, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": len(self.server_errors),
            "bind_failures": self.bind_failures,
            "nonconforming": len(self.nonconforming),
            "crashes": len(self.crashes),
            "examples": (self.server_errors + self.nonconforming + self.crashes)[:5],
        }


def _confine_listen(body: Any) -> Any:
    """Port 0 for every parseable listen address in a body (a proxy, or a populate list)."""
    if isinstance(body, list):
        return [_confine_listen(item) for item in body]
    if isinstance(body, dict) and isinstance(body.get("listen"), str):
        try:
            host, _ = split_hostport(body["listen"], "listen")
        except ProxyRequestError:
            return body  # unparseable: left to the server to refuse
        return {**body, "listen": f"[{host}]:0" if ":" in host else f"{host}:0"}
    return body


def _aim_upstream(body: Any, upstream: str) -> Any:
    """A reachable, allowed upstream wherever a body names one as a string."""
    if isinstance(body, list):
        return [_aim_upstream(item, upstream) for item in body]
    if isinstance(body, dict) and isinstance(body.get("upstream"), str):
        return {**body, "upstream": upstream}
    return body


class _Session:
    """The live server, its baseline proxy and toxic, and the running tally."""

    def __init__(self, api_url: str, upstream: str, report: FuzzReport) -> None:
        self.url = api_url
        self.upstream = upstream
        self.report = report
        self.http = requests.Session()

    def restore(self, created: bool = True) -> None:
        """Bring back the aimed-at proxy and toxic; drop the proxies fuzzing piled up."""
        if created:
            proxies = self.http.get(self.url + "/proxies", timeout=10).json()
            if len(proxies) > _MAX_PROXIES:
                for name in proxies:
                    if name != TARGET_PROXY:
                        self.http.delete(f"{self.url}/proxies/{quote(name, safe='')}", timeout=10)
        target = {"name": TARGET_PROXY, "listen": "127.0.0.1:0", "upstream": self.upstream}
        self.http.post(self.url + "/populate", json=[target], timeout=10)
        self.http.post(
            f"{self.url}/proxies/{TARGET_PROXY}/toxics",
            json={"name": TARGET_TOXIC, "type": "latency", "attributes": {"latency": 1}},
            timeout=10,
        )  # 409 when it is still there

    def run(self, case: schemathesis.Case[Any], aim: bool) -> None:
        """Send one case and judge the answer."""
        if aim:
            for key, value in (("proxy", TARGET_PROXY), ("toxic", TARGET_TOXIC)):
                if case.path_parameters and key in case.path_parameters:
                    case.path_parameters[key] = value
        body = _confine_listen(_aim_upstream(case.body, self.upstream) if aim else case.body)
        if body is not case.body:  # an assignment makes schemathesis re-judge the case
            case.body = body
        label = f"{case.method} {case.formatted_path}"
        self.report.cases += 1
        try:
            response = case.call(base_url=self.url, session=self.http, timeout=30)
        except requests.RequestException as exc:
            self.report.crashes.append(f"{label}: no answer: {type(exc).__name__}: {exc}")
            return
        status = response.status_code
        self.report.statuses[status] += 1
        if status >= 500:
            if status == 500 and _is_bind_failure(response.text):
                self.report.bind_failures += 1
            else:
                self.report.server_errors.append(f"{label}: {status} {response.text[:200]!r}")
        try:
            case.validate_response(response, checks=_CHECKS)
        except (Failure, FailureGroup) as exc:
            found = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
            what = "; ".join(f"{f.title}: {f.message}".replace("\n", " ")[:300] for f in found)
            sent = json.dumps(case.body, default=str)[:200]
            self.report.nonconforming.append(f"{label} {sent} → {status}: {what}")
        if case.method != "GET":  # only a change can have removed the target
            self.restore(created=case.path in ("/proxies", "/populate"))


def _is_bind_failure(text: str) -> bool:
    try:
        error = json.loads(text).get("error", "")
    except (ValueError, AttributeError):
        return False
    return isinstance(error, str) and error.startswith("listen tcp ") and ": bind: " in error


def fuzz_api(api_url: str, upstream: str, *, max_examples: int, seed: int = 0) -> FuzzReport:
    """Fuzz the fault proxy at ``api_url`` with ``max_examples`` cases (reproducible by seed).

    ``upstream`` is a loopback host:port the aimed-at proxy points to (never connected to).
    """
    report = FuzzReport()
    started = time.monotonic()
    session = _Session(api_url, upstream, report)
    try:
        schema = schemathesis.openapi.from_url(api_url + OPENAPI_PATH)
        session.restore()
    except (requests.RequestException, schemathesis.errors.LoaderError) as exc:
        report.crashes.append(f"the server did not serve its API: {exc}")
        return report
    cases = st.one_of(
        schema.as_strategy(schemathesis.GenerationMode.POSITIVE),
        schema.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=cases, aim=st.booleans())
    def one(case: schemathesis.Case[Any], aim: bool) -> None:
        session.run(case, aim)

    try:
        one()
    except requests.RequestException as exc:  # restore() found the server gone
        report.crashes.append(f"the server stopped answering: {exc}")
    try:
        if session.http.get(api_url + "/version", timeout=10).status_code != 200:
            report.crashes.append("GET /version does not answer 200 after the run")
    except requests.RequestException as exc:
        report.crashes.append(f"the server is gone after the run: {exc}")
    report.seconds = time.monotonic() - started
    return report
