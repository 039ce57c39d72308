"""gRPC fuzzing: hostile `ModelInferRequest`s from hypothesis, sent over real gRPC.

`infer_requests` builds them; `fuzz_grpc` sends them and tallies what came back (shared by
the CI tests and `benchmarks/fuzz_serving.py`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import grpc
import hypothesis.strategies as st
from hypothesis import given

from oip_proto import grpc_predict_v2_pb2 as pb
from oip_proto import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.support.fuzz import Tally, campaign_settings

# the only answers a hostile request may get; anything else (INTERNAL, UNKNOWN, ...) is a bug
GRPC_REFUSALS = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.OUT_OF_RANGE}
)

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

        @campaign_settings(examples, seed)
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
