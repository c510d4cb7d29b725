"""messages-service's adapters, one module per technology: hazelcast (the queue, the received map and what
redelivery reads), kafka (the topic and its consumer group), journal_file (the copy's journal on disk). The
composition root (messages_service.bootstrap) chooses among them."""
