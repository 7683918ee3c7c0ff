"""`python -m bench`: the gateway's added latency against a fast loopback fake upstream."""

import os

# The bench spawns processes (gateways, Go load generators) while its own gRPC channels are open, and
# grpcio logs a line at INFO for each fork it cannot prepare for; those lines drowned the report.
# Errors still print (GRPC_VERBOSITY set by the caller wins).
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
