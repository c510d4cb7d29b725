"""logging-service: stores every message in a Hazelcast distributed map, each uuid once."""
