"""facade-service: the lab's entry point; logs each message and queues it for the messages service."""
