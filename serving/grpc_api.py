"""gRPC adapter: inference.GRPCInferenceService + grpc.health.v1 (decode → core → encode)."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from oip_proto import grpc_predict_v2_pb2 as pb
from oip_proto import grpc_predict_v2_pb2_grpc as pb_grpc
from serving import codec
from serving.core import InferenceCore
from serving.errors import (
    BadRequest,
    BundleRefused,
    DeadlineExceeded,
    FeatureStoreError,
    ModelNotReady,
    Overloaded,
    ServingError,
)

log = logging.getLogger("serving.grpc")

# The one error → gRPC status table of this adapter.
CODES: dict[type[ServingError], grpc.StatusCode] = {
    BadRequest: grpc.StatusCode.INVALID_ARGUMENT,
    BundleRefused: grpc.StatusCode.FAILED_PRECONDITION,
    ModelNotReady: grpc.StatusCode.UNAVAILABLE,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    FeatureStoreError: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def code_of(exc: ServingError) -> grpc.StatusCode:
    """gRPC status for a domain error (INTERNAL for anything not in the table)."""
    for cls in type(exc).__mro__:
        if cls in CODES:
            return CODES[cls]
    return grpc.StatusCode.INTERNAL


def _inputs(request: pb.ModelInferRequest) -> dict[str, codec.Tensor]:
    tensors: dict[str, codec.Tensor] = {}
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise BadRequest(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    for i, t in enumerate(request.inputs):
        if t.name in tensors:
            raise BadRequest(f"input {t.name!r} given twice")
        shape = list(t.shape)
        if raw:
            tensors[t.name] = codec.parse_raw(t.name, t.datatype, shape, raw[i])
        elif t.datatype == "INT64":
            data: list[int] = list(t.contents.int64_contents)
            tensors[t.name] = codec.parse_json_data(t.name, t.datatype, shape, data)
        elif t.datatype == "BYTES":
            items = list(t.contents.bytes_contents)
            if len(items) != codec.element_count(t.name, shape):
                raise BadRequest(f"input {t.name!r}: {len(items)} values for shape {shape}")
            tensors[t.name] = codec.Tensor(t.name, t.datatype, shape, items)
        else:
            raise BadRequest(f"input {t.name!r}: datatype {t.datatype} not supported")
    return tensors


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """OIP v2 gRPC service over one InferenceCore."""

    def __init__(self, core: InferenceCore, name: str, max_body: int) -> None:
        self.core = core
        self.name = name
        self.max_body = max_body

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        """Liveness."""
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        """Readiness (bundle loaded and warm)."""
        return pb.ServerReadyResponse(ready=self.core.ready)

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        """Model readiness."""
        if request.name != codec.MODEL_NAME:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {request.name!r}")
        return pb.ModelReadyResponse(ready=self.core.ready)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        """Server metadata."""
        return pb.ServerMetadataResponse(
            name="chaos-rec-model-server", version="0.1.0", extensions=["binary_tensor_data"]
        )

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        """Model metadata (tensor names, datatypes, shapes)."""
        if request.name != codec.MODEL_NAME:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {request.name!r}")
        meta = codec.model_metadata(self.core.model_version)
        T = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=codec.MODEL_NAME,
            versions=meta["versions"],  # type: ignore[arg-type]
            platform=str(meta["platform"]),
            inputs=[T(name=n, datatype=d, shape=s) for n, d, s in codec.INPUTS],
            outputs=[T(name=n, datatype=d, shape=s) for n, d, s in codec.OUTPUTS],
        )

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        """Inference; errors map through CODES."""
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            if request.model_name != codec.MODEL_NAME:  # NOT_FOUND, as ModelReady/REST's 404
                code = grpc.StatusCode.NOT_FOUND
                await context.abort(code, f"unknown model {request.model_name!r}")
            if request.ByteSize() > self.max_body:
                raise BadRequest(f"request too large (limit {self.max_body} bytes)")
            reqs = codec.to_requests(_inputs(request))
            loop = asyncio.get_running_loop()
            budget = self.core.settings.request_timeout_ms / 1000
            remaining = context.time_remaining()
            if remaining is not None:
                budget = min(budget, remaining)
            results = await self.core.recommend_many(reqs, loop.time() + budget)
            outs = codec.to_outputs(results, reqs[0].k)
            version = self.core.model_version
            return pb.ModelInferResponse(
                model_name=codec.MODEL_NAME,
                model_version=version,
                id=request.id,
                parameters={
                    "model_version": pb.InferParameter(string_param=version),
                    "replica": pb.InferParameter(string_param=self.name),
                },
                outputs=[
                    pb.ModelInferResponse.InferOutputTensor(
                        name=o.name, datatype=o.datatype, shape=o.shape
                    )
                    for o in outs
                ],
                raw_output_contents=[o.raw() for o in outs],
            )
        except ServingError as exc:
            code = code_of(exc)
            await context.abort(code, str(exc))
            raise  # unreachable: abort raises
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # a bug or a failed forward pass: INTERNAL, the server lives on
            code = grpc.StatusCode.INTERNAL
            log.exception("ModelInfer failed")
            await context.abort(code, f"internal error: {type(exc).__name__}: {exc}")
            raise
        finally:
            self.core.metrics.request_done("grpc", code.name, time.perf_counter() - started)


def build_server(
    core: InferenceCore, name: str, host: str, port: int, max_body: int
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A grpc.aio server with the inference and health services (health starts NOT_SERVING)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_body + 1024),
            ("grpc.keepalive_time_ms", 20_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        InferenceServicer(core, name, max_body), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"{host}:{port}")
    return server, health_servicer


async def set_health(servicer: health.aio.HealthServicer, ready: bool) -> None:
    """Publish readiness on grpc.health.v1 (overall and for the service)."""
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if ready
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for service in ("", "inference.GRPCInferenceService"):
        await servicer.set(service, status)
