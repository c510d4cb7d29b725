"""messages-service: consumes the Hazelcast queue and serves what this copy received."""
