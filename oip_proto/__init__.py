"""The one copy of KServe's Open Inference Protocol v2 gRPC contract and its Python stubs.

``grpc_predict_v2.proto`` (package ``inference``, service ``GRPCInferenceService``, field numbers
as in the KServe repository, so that tritonclient and other real clients work) and the modules
generated from it, ``grpc_predict_v2_pb2`` (messages: needs only ``protobuf``) and
``grpc_predict_v2_pb2_grpc`` (the service's stubs: needs ``grpcio``). ``python -m
oip_proto.generate`` regenerates them. Both the reference stack (``serving``) and the drills'
traffic adapter (``chaos_rec``) import them from here; neither may import the other
(shared/DESIGN.md), so the contract lives in this package of its own, which imports nothing.
"""
