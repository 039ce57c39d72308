"""HTTP fuzzing drivers shared by the CI tests and `benchmarks/fuzz_serving.py`.

`fuzz_openapi` runs schemathesis against a server's own `/openapi.json` (every operation,
positive and negative cases). `fuzz_bodies` posts hypothesis-built hostile JSON that a
schema-driven generator does not write (lone surrogates, integers past 64 bits, deep
nesting, huge batches). gRPC: `tests/support/fuzz_grpc.py`. Every driver tallies cases, 5xx,
check failures and crashes (the server process gone) instead of stopping at the first
failure, so a campaign can run on.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.strategies as st
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import FailureGroup

# what a case's answer must satisfy; positive_data_acceptance is left out on purpose: a case
# can fit the schema and still be refused (user id -1, a shape that does not match its data)
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "ignored_auth",
    "missing_required_header",
    "unsupported_method",
)
MAX_FINDINGS = 20  # findings kept verbatim per target (all are counted)


@dataclass
class Tally:
    """What one fuzz target saw."""

    target: str
    cases: int = 0
    server_errors: int = 0  # HTTP 5xx, or a gRPC status other than a refusal
    check_failures: int = 0  # schemathesis checks failed (5xx included)
    crashes: int = 0  # the server process was gone after a case
    answers: Counter[str] = field(default_factory=Counter)  # HTTP status / gRPC code -> cases
    findings: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        """Keep a finding (the first MAX_FINDINGS distinct ones)."""
        if len(self.findings) < MAX_FINDINGS and text not in self.findings:
            self.findings.append(text)

    def add(self, other: Tally) -> None:
        """Fold another run on the same target into this one."""
        self.cases += other.cases
        self.server_errors += other.server_errors
        self.check_failures += other.check_failures
        self.crashes += other.crashes
        self.answers.update(other.answers)
        for finding in other.findings:
            self.note(finding)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready figures."""
        return {
            "target": self.target,
            "cases": self.cases,
            "5xx": self.server_errors,
            "check_failures": self.check_failures,
            "crashes": self.crashes,
            "answers": dict(sorted(self.answers.items())),
            "findings": self.findings,
        }


def campaign_settings(examples: int, seed: int) -> Callable[[Any], Any]:
    """hypothesis settings of a campaign: `examples` cases from `seed`, no shrinking, no database."""
    common = {
        "max_examples": examples,
        "deadline": None,
        "database": None,
        "phases": [Phase.generate],  # a campaign counts cases: no shrinking of findings
        "suppress_health_check": list(HealthCheck),
    }
    configure = settings(**common)  # type: ignore[arg-type]
    return lambda test: configure(hypothesis.seed(seed)(test))


def _checks() -> list[Any]:
    load_all_checks()
    return [CHECKS.get_one(n) for n in CHECK_NAMES]


@dataclass(frozen=True)
class _HttpTarget:
    """Where and how one schemathesis campaign sends its cases."""

    base_url: str
    session: requests.Session
    checks: list[Any]
    alive: Callable[[], bool]
    tally: Tally


def _send(
    target: _HttpTarget, case: schemathesis.Case, headers: dict[str, str] | None, label: str
) -> None:
    """One case: send it, count its answer, run the checks, see that the server lives."""
    tally = target.tally
    tally.cases += 1
    try:
        response = case.call(
            base_url=target.base_url, session=target.session, headers=headers, timeout=30
        )
    except requests.RequestException as exc:
        tally.note(f"{label}: no answer: {exc}")
        tally.server_errors += 1
        tally.crashes += 0 if target.alive() else 1
        return
    tally.answers[str(response.status_code)] += 1
    if response.status_code >= 500:
        tally.server_errors += 1
    try:
        case.validate_response(response, checks=target.checks, headers=headers)
    except (AssertionError, FailureGroup) as exc:
        tally.check_failures += 1
        tally.note(f"{label}: {_summary(exc)}")
    if not target.alive():
        tally.crashes += 1


def _campaign(
    target: _HttpTarget,
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    headers: dict[str, str] | None,
    examples: int,
    seed: int,
) -> None:
    @campaign_settings(examples, seed)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        _send(target, case, headers, f"{operation.label} [{mode.value}]")

    with contextlib.suppress(Unsatisfiable):  # nothing to make invalid (no parameters, no body)
        run()


def fuzz_openapi(
    target: str,
    base_url: str,
    *,
    token: str,
    examples: int,
    alive: Callable[[], bool],
    seed: int = 0,
) -> Tally:
    """schemathesis against `base_url`/openapi.json: every operation, positive and negative
    cases (`examples` of each); the admin token goes with operations that need one."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=30)
    with requests.Session() as session:
        http = _HttpTarget(base_url, session, _checks(), alive, Tally(target))
        for result in schema.get_all_operations():
            operation = result.ok()
            secured = bool(operation.definition.raw.get("security"))
            headers = {"Authorization": f"Bearer {token}"} if secured else None
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _campaign(http, operation, mode, headers, examples, seed)
        if "/admin/resilience" in schema.raw_schema.get("paths", {}):
            _switches_on(session, base_url, token)
    return http.tally


def _switches_on(session: requests.Session, base_url: str, token: str) -> None:
    """Turn every resilience switch back on (the fuzzer flips them through the admin API)."""
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{base_url}/admin/resilience"
    switches = session.get(url, headers=auth, timeout=30).json()
    session.post(
        url, json=dict.fromkeys(switches, True), headers=auth, timeout=30
    ).raise_for_status()


def _summary(exc: BaseException) -> str:
    """Each failed check's title (`ST101 Server error`, ...) and its first detail line."""
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    titles = [x.removeprefix("- ") for x in lines if x.startswith("- ST")]
    details = [x for x in lines[1:] if not x.startswith("- ")]
    return f"{'; '.join(titles) or lines[0]}: {' | '.join(details[:3])}"


# ---------------------------------------------------------------- hostile JSON bodies

_INT = st.one_of(
    st.integers(-5, 5000),
    st.integers(min_value=2**63 - 2, max_value=2**66),  # at and past the INT64 edge
    st.integers(min_value=-(2**66), max_value=-(2**63) + 1),
)
_TEXT = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),  # lone surrogates
    st.just("\x00"),
)
_SCALAR = st.one_of(st.none(), st.booleans(), _INT, st.floats(), _TEXT)  # NaN, inf included
_VALUE = st.recursive(
    _SCALAR, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(_TEXT, c, max_size=3))
)
_DEPTHS = st.sampled_from([0, 0, 0, 0, 5, 900, 990, 3000])  # json.loads gives up near 1000
_HOLE = "__hole__"  # a value _dumps replaces with raw JSON text (deep nesting json.dumps refuses)


def _dumps(doc: object, hole: str = "") -> bytes:
    return json.dumps(doc).replace(json.dumps(_HOLE), hole, 1).encode()


def _nest(depth: int, inner: str) -> str:
    return "[" * depth + inner + "]" * depth


@st.composite
def recommend_bodies(draw: st.DrawFn) -> bytes:
    """Bodies for POST /v1/recommend: each field right, wrong or hostile, maybe deep inside."""
    doc: dict[str, object] = {}
    for name, usual in (("user_id", _INT), ("k", st.integers(0, 101)), ("query", _TEXT)):
        if draw(st.integers(0, 5)):
            doc[name] = draw(usual if draw(st.integers(0, 3)) else _VALUE)
    depth = draw(_DEPTHS)
    return _dumps(_HOLE, _nest(depth, json.dumps(doc))) if depth else _dumps(doc)


@st.composite
def infer_bodies(draw: st.DrawFn) -> bytes:
    """OIP v2 infer bodies: hostile names, datatypes, shapes, data (deep, huge, wrong type)."""
    inputs = []
    for name in draw(st.lists(st.sampled_from(["user_id", "k", "query", "x"]), max_size=4)):
        rows = draw(st.sampled_from([1, 1, 2, 300, 3000]))  # past the queue's 256 too
        data = draw(st.one_of(
            st.lists(_INT, min_size=min(rows, 2), max_size=min(rows, 2)),
            _INT.map(lambda v, n=rows: [v] * n),  # type: ignore[misc]
            st.lists(_TEXT, max_size=3), _VALUE, st.just(list(range(rows))),
        ))  # fmt: skip
        inputs.append({
            "name": name,
            "datatype": draw(st.sampled_from(["INT64", "BYTES", "FP32", "", "int64"])),
            "shape": draw(st.one_of(st.just([len(data)] if isinstance(data, list) else [1]),
                                    st.lists(_INT, max_size=3))),
            "data": _HOLE if draw(st.integers(0, 5)) == 0 else data,
        })  # fmt: skip
    doc: dict[str, object] = {"inputs": inputs}
    if draw(st.booleans()):
        doc["id"] = draw(_VALUE)
    return _dumps(doc, _nest(draw(_DEPTHS), json.dumps(draw(st.lists(_INT, max_size=2)))))


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    """Any JSON value, hostile scalars included, maybe nested deeper than json.loads allows."""
    return _nest(draw(_DEPTHS), json.dumps(draw(_VALUE))).encode()


def fuzz_bodies(
    target: str,
    url: str,
    bodies: st.SearchStrategy[bytes],
    *,
    examples: int,
    alive: Callable[[], bool],
    token: str | None = None,
    seed: int = 0,
) -> Tally:
    """POST each body to `url` (with the admin token, if given): the answer must be < 500,
    and a 4xx must be {"error": str}."""
    tally = Tally(target)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with requests.Session() as session:

        @campaign_settings(examples, seed)
        @given(body=bodies)
        def run(body: bytes) -> None:
            tally.cases += 1
            try:
                resp = session.post(url, data=body, headers=headers, timeout=30)
            except requests.RequestException as exc:
                tally.server_errors += 1
                tally.note(f"no answer: {exc} to {body[:120]!r}")
            else:
                tally.answers[str(resp.status_code)] += 1
                if resp.status_code >= 500:
                    tally.server_errors += 1
                    tally.note(f"{resp.status_code} {resp.text[:160]} to {body[:120]!r}")
                elif resp.status_code >= 400 and not _is_error_body(resp):
                    tally.check_failures += 1
                    tally.note(f"{resp.status_code} without an error body to {body[:120]!r}")
            if not alive():
                tally.crashes += 1

        run()
    return tally


def _is_error_body(resp: requests.Response) -> bool:
    try:
        body = resp.json()
    except ValueError:
        return False
    return isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], str)


def iter_findings(tallies: list[Tally]) -> Iterator[str]:
    """Every kept finding, prefixed by its target."""
    for t in tallies:
        for f in t.findings:
            yield f"{t.target}: {f}"
