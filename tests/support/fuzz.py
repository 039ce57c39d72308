"""Fuzzing drivers shared by the CI tests and `benchmarks/fuzz_serving.py`.

`fuzz_openapi` runs schemathesis against a server's own `/openapi.json` (every operation,
positive and negative cases); `infer_requests` is a hypothesis strategy of hostile
`ModelInferRequest`s and `fuzz_grpc` sends them over real gRPC. Both tally cases, 5xx (or
INTERNAL/UNKNOWN) answers, check failures and crashes (the server process gone) instead of
stopping at the first failure, so a campaign can run on.
"""

from __future__ import annotations

import contextlib
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import hypothesis
import hypothesis.strategies as st
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import FailureGroup

from serving._proto import grpc_predict_v2_pb2 as pb
from serving._proto import grpc_predict_v2_pb2_grpc as pb_grpc

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
# the only answers a hostile request may get; anything else (INTERNAL, UNKNOWN, ...) is a bug
GRPC_REFUSALS = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.OUT_OF_RANGE}
)
MAX_FINDINGS = 20  # findings kept verbatim per target (all are counted)


@dataclass
class Tally:
    """What one fuzz target saw."""

    target: str
    cases: int = 0
    server_errors: int = 0  # HTTP 5xx, or a gRPC status outside GRPC_REFUSALS
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


def _settings(examples: int, seed: int) -> Callable[[Any], Any]:
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
    @_settings(examples, seed)
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
    return http.tally


def _summary(exc: BaseException) -> str:
    """Each failed check's title (`ST101 Server error`, ...) and its first detail line."""
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    titles = [x.removeprefix("- ") for x in lines if x.startswith("- ST")]
    details = [x for x in lines[1:] if not x.startswith("- ")]
    return f"{'; '.join(titles) or lines[0]}: {' | '.join(details[:3])}"


# ---------------------------------------------------------------- gRPC ModelInfer

_DATATYPES = ("INT64", "BYTES", "FP32", "INT32", "BOOL", "UINT8", "", "int64", "X" * 40)
_NAMES = ("user_id", "k", "query", "", "items", "user_id\x00")
_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_SHAPES = st.lists(
    st.one_of(st.integers(-3, 4), st.sampled_from([2**31, 2**62, -(2**63), 2**63 - 1])),
    max_size=4,
)


def _i64(values: list[int]) -> bytes:
    return b"".join(struct.pack("<q", v) for v in values)


@st.composite
def _tensor(draw: st.DrawFn) -> tuple[pb.ModelInferRequest.InferInputTensor, bytes]:
    """One input tensor, well-formed or not, and raw bytes for it (of the right length or not)."""
    name = draw(st.sampled_from(_NAMES))
    datatype = draw(st.sampled_from(_DATATYPES))
    shape = draw(_SHAPES)
    tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)
    values = draw(st.lists(_INT64, max_size=6))
    if draw(st.booleans()):
        tensor.contents.int64_contents.extend(values)
    if draw(st.booleans()):
        tensor.contents.bytes_contents.extend(draw(st.lists(st.binary(max_size=12), max_size=4)))
    raw = draw(
        st.one_of(
            st.just(_i64(values)),
            st.binary(max_size=40),
            st.lists(st.binary(max_size=8), max_size=4).map(
                lambda xs: b"".join(struct.pack("<I", len(x)) + x for x in xs)
            ),
            st.just(struct.pack("<I", 2**32 - 1) + b"abc"),  # a length far past the end
        )
    )
    return tensor, raw


def _valid_tensors(users: list[int], k: int, query: bytes | None) -> list[tuple[Any, bytes]]:
    T = pb.ModelInferRequest.InferInputTensor
    out = [
        (T(name="user_id", datatype="INT64", shape=[len(users)]), _i64(users)),
        (T(name="k", datatype="INT64", shape=[1]), _i64([k])),
    ]
    if query is not None:
        out.append((T(name="query", datatype="BYTES", shape=[len(users)]),
                    (struct.pack("<I", len(query)) + query) * len(users)))  # fmt: skip
    return out


@st.composite
def infer_requests(draw: st.DrawFn) -> pb.ModelInferRequest:
    """Hostile ModelInferRequests: malformed shapes and datatypes, raw contents of the wrong
    length, huge or negative k and user ids, unknown models, and near-valid mixtures."""

    def rarely(hostile: st.SearchStrategy[Any], usual: st.SearchStrategy[Any]) -> Any:
        return draw(hostile if draw(st.integers(0, 4)) == 0 else usual)

    model = rarely(st.sampled_from(["", "nope", "recommender\x00", "Recommender"]),
                   st.just("recommender"))  # fmt: skip
    if draw(st.booleans()):  # near-valid: the right tensors, values hostile now and then
        users = rarely(
            st.lists(_INT64, max_size=5), st.lists(st.integers(0, 5000), min_size=1, max_size=5)
        )
        k = rarely(st.one_of(st.integers(-2, 102), _INT64), st.integers(1, 100))
        query = rarely(
            st.binary(max_size=16), st.one_of(st.none(), st.text(max_size=12).map(str.encode))
        )
        tensors = _valid_tensors(users, k, query)
    else:
        tensors = draw(st.lists(_tensor(), max_size=4))
    request = pb.ModelInferRequest(
        model_name=model,
        model_version=draw(st.sampled_from(["", "1", "x" * 300])),
        id=draw(st.text(max_size=8)),
        inputs=[t for t, _ in tensors],
    )
    how = rarely(st.sampled_from(["typed", "short", "long"]), st.just("raw"))
    raws = [r for _, r in tensors]
    if how == "short":
        raws = raws[:-1]
    elif how == "long":
        raws = [*raws, b"\x00" * 8]
    if how != "typed":
        request.raw_input_contents.extend(raws)
    return request


def valid_request(user_id: int = 1, k: int = 5) -> pb.ModelInferRequest:
    """A request the server must answer with k items."""
    tensors = _valid_tensors([user_id], k, None)
    return pb.ModelInferRequest(
        model_name="recommender",
        inputs=[t for t, _ in tensors],
        raw_input_contents=[r for _, r in tensors],
    )


def answers_k_items(stub: pb_grpc.GRPCInferenceServiceStub, k: int = 5) -> bool:
    """True when a valid request gets `k` item ids back."""
    resp = stub.ModelInfer(valid_request(k=k), timeout=30)
    by_name = {o.name: i for i, o in enumerate(resp.outputs)}
    return len(resp.raw_output_contents[by_name["item_ids"]]) == 8 * k


def fuzz_grpc(
    target: str,
    address: str,
    *,
    examples: int,
    alive: Callable[[], bool],
    seed: int = 0,
    probe_every: int = 50,
) -> Tally:
    """`examples` hostile ModelInferRequests over real gRPC; every `probe_every` cases (and at
    the end) a valid request must still be answered."""
    tally = Tally(target)
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]

        def probe() -> None:
            try:
                if not answers_k_items(stub):
                    tally.server_errors += 1
                    tally.note("a valid request got the wrong number of items")
            except grpc.RpcError as exc:
                tally.server_errors += 1
                tally.note(f"a valid request failed: {exc.code()}: {exc.details()}")

        @_settings(examples, seed)
        @given(request=infer_requests())
        def run(request: pb.ModelInferRequest) -> None:
            tally.cases += 1
            try:
                stub.ModelInfer(request, timeout=30)
                tally.answers["OK"] += 1
            except grpc.RpcError as exc:
                tally.answers[exc.code().name] += 1
                if exc.code() not in GRPC_REFUSALS:
                    tally.server_errors += 1
                    tally.note(f"{exc.code()}: {exc.details()} for {_short(request)}")
            if not alive():
                tally.crashes += 1
            elif tally.cases % probe_every == 0:
                probe()

        run()
        if alive():
            probe()
    return tally


def _short(request: pb.ModelInferRequest) -> str:
    text = str(request).replace("\n", " ")
    return text if len(text) < 300 else text[:300] + "..."


def iter_findings(tallies: list[Tally]) -> Iterator[str]:
    """Every kept finding, prefixed by its target."""
    for t in tallies:
        for f in t.findings:
            yield f"{t.target}: {f}"
