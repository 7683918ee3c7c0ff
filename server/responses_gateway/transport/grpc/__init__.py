"""The gRPC transport (grpc.aio)."""
