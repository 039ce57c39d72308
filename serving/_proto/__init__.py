"""Generated OIP v2 gRPC stubs (see serving.proto_gen)."""
