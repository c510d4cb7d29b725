"""The wire contract of the gRPC transport (logging.proto) and the modules grpcio-tools generates from it."""
