"""One recommend call across replicas: deadline, retry on another replica, hedging."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass

import grpc
import numpy as np

from oip_proto import grpc_predict_v2_pb2 as pb
from serving.errors import BadRequest, DeadlineExceeded, NoReplicaAvailable, ServingError
from serving.gateway.pool import Replica, ReplicaPool
from serving.metrics import GatewayMetrics
from serving.settings import Switches

NO_DEADLINE_S = 30.0  # with `deadlines` off a call still ends eventually (every call has a timeout)


@dataclass(frozen=True)
class Answer:
    """A replica's answer to one recommend call."""

    item_ids: list[int]
    scores: list[float]
    fallback: str
    model_version: str
    replica: str


def build_request(user_id: int, k: int, query: str | None) -> pb.ModelInferRequest:
    """OIP v2 ModelInfer request for one user (raw_input_contents, like tritonclient)."""
    T = pb.ModelInferRequest.InferInputTensor
    inputs = [
        T(name="user_id", datatype="INT64", shape=[1]),
        T(name="k", datatype="INT64", shape=[1]),
    ]
    raw = [struct.pack("<q", user_id), struct.pack("<q", k)]
    if query is not None:
        q = query.encode("utf-8")
        inputs.append(T(name="query", datatype="BYTES", shape=[1]))
        raw.append(struct.pack("<I", len(q)) + q)
    return pb.ModelInferRequest(model_name="recommender", inputs=inputs, raw_input_contents=raw)


def parse_response(resp: pb.ModelInferResponse, replica: str) -> Answer:
    """Decode item_ids, scores and fallback from raw_output_contents."""
    by_name = {o.name: i for i, o in enumerate(resp.outputs)}
    try:
        ids = np.frombuffer(resp.raw_output_contents[by_name["item_ids"]], dtype="<i8")
        scores = np.frombuffer(resp.raw_output_contents[by_name["scores"]], dtype="<f4")
        fb = resp.raw_output_contents[by_name["fallback"]]
        (n,) = struct.unpack_from("<I", fb, 0)
        tier = fb[4 : 4 + n].decode()
    except (KeyError, IndexError, struct.error, ValueError) as exc:
        raise NoReplicaAvailable(f"replica {replica} sent a malformed response: {exc}") from exc
    keep = ids >= 0
    params = resp.parameters
    version = (
        params["model_version"].string_param if "model_version" in params else resp.model_version
    )
    name = params["replica"].string_param if "replica" in params else replica
    return Answer(
        ids[keep].astype(np.int64).tolist(),
        [round(float(s), 6) for s in scores[keep]],
        tier,
        version,
        name,
    )


class _Failed(Exception):
    def __init__(self, replica: Replica, code: grpc.StatusCode | None, message: str) -> None:
        super().__init__(message)
        self.replica = replica
        self.code = code


class Router:
    """Sends a call to one replica, hedges after a delay, retries once elsewhere on failure."""

    def __init__(self, pool: ReplicaPool, switches: Switches, metrics: GatewayMetrics) -> None:
        self.pool = pool
        self.switches = switches
        self.metrics = metrics

    async def _attempt(self, r: Replica, req: pb.ModelInferRequest, timeout: float) -> Answer:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r.inflight += 1
        try:
            resp = await r.stub.ModelInfer(req, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            stall = code == grpc.StatusCode.DEADLINE_EXCEEDED
            if code != grpc.StatusCode.INVALID_ARGUMENT:
                result = "shed" if code == grpc.StatusCode.RESOURCE_EXHAUSTED else code.name.lower()
                if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    self.metrics.attempt(r.name, result)
                else:
                    self.pool.failure(r, stall=stall, result=result)
            raise _Failed(r, code, f"{r.name}: {code.name}: {exc.details()}") from exc
        finally:
            r.inflight -= 1
        self.pool.success(r, loop.time() - t0)
        return parse_response(resp, r.name)

    async def recommend(self, user_id: int, k: int, query: str | None, budget_s: float) -> Answer:
        """Answer from the first replica that succeeds within the deadline."""
        loop = asyncio.get_running_loop()
        use_deadline = self.switches["deadlines"]
        deadline = loop.time() + (budget_s if use_deadline else NO_DEADLINE_S)
        req = build_request(user_id, k, query)
        cands = self.pool.candidates(user_id)
        retries_left = 1 if self.switches["retries"] else 0
        hedges_left = 1 if self.switches["hedging"] else 0
        hedge_at = loop.time() + self.pool.hedge_delay_s()
        pending: dict[asyncio.Task[Answer], Replica] = {}
        nxt = 0
        last: _Failed | None = None

        def launch() -> None:
            nonlocal nxt
            r = cands[nxt]
            nxt += 1
            timeout = max(0.001, deadline - loop.time())
            pending[asyncio.create_task(self._attempt(r, req, timeout))] = r

        launch()
        try:
            while pending:
                now = loop.time()
                if now >= deadline:
                    for r in pending.values():
                        self.pool.failure(r, stall=True, result="stall")
                    break
                wake = deadline
                if hedges_left and nxt < len(cands):
                    wake = min(wake, hedge_at)
                done, _ = await asyncio.wait(
                    pending, timeout=max(0.0, wake - now), return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    if hedges_left and nxt < len(cands) and loop.time() >= hedge_at:
                        hedges_left = 0
                        self.metrics.hedges.inc()
                        launch()
                    continue
                for task in done:
                    pending.pop(task)
                    exc = task.exception()
                    if exc is None:
                        return task.result()
                    if not isinstance(exc, _Failed):
                        raise exc
                    if exc.code == grpc.StatusCode.INVALID_ARGUMENT:
                        raise BadRequest(str(exc).split(": ", 2)[-1])
                    last = exc
                if not pending and retries_left and nxt < len(cands) and loop.time() < deadline:
                    retries_left -= 1
                    self.metrics.retries.inc()
                    launch()
        finally:
            for task in pending:
                task.cancel()
            for task in list(pending):
                with contextlib.suppress(asyncio.CancelledError, _Failed, ServingError):
                    await task
        if loop.time() >= deadline or (
            last is not None and last.code == grpc.StatusCode.DEADLINE_EXCEEDED
        ):
            stalled = [r.name for r in pending.values()]
            raise DeadlineExceeded(
                f"no replica answered within {budget_s * 1000:.0f} ms"
                + (f" (waiting on {', '.join(stalled)})" if stalled else "")
            )
        raise NoReplicaAvailable(f"no replica could answer: {last}")
