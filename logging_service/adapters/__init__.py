"""logging-service's adapters, one module per technology: hazelcast (the store in the cluster's map),
memory (each copy's own store, the lab's Task 1), grpc (the gRPC server beside HTTP). The composition root
(logging_service.bootstrap) chooses among them."""
