"""The facade's adapters, one module per technology: http (the logging and messages copies), hazelcast
(the queue), kafka (the topic, and its view for the status page), grpc (logging's write over gRPC), none
(no queue), status (the status page's probes of the cluster and the copies). The composition root
(facade_service.bootstrap) chooses among them."""
