"""The domain layer: one service shared by the gRPC servicer and the REST shim."""
