"""What facade-service reads: a caller of logging and messages (over HTTP, or logging's POST over gRPC), with
a Hazelcast client for the queue (or a Kafka producer, queue=kafka; and, for the status page, the names of the
two maps whose statistics it shows and, with Kafka, the consumer group whose progress it shows), a circuit
breaker per logging copy, and how long a POST may keep trying logging. With queue=none it only logs; with
hazelcast=false (a system without members) it has no Hazelcast client at all."""

from __future__ import annotations

from dataclasses import dataclass

from lab_common.contracts import LOGGING_GRPC_SERVICE, MESSAGES_GROUP, NO_QUEUE, TRANSPORTS
from lab_common.settings import (
    CallerSettings,
    HazelcastSettings,
    QueueSettings,
    SettingsError,
    bool_setting,
    logging_map_setting,
    messages_queue_setting,
    non_negative_float,
    positive_float,
    positive_int,
    queue_setting,
    received_map_setting,
    setting,
)


def _transport(text: str) -> str:
    if text not in TRANSPORTS:
        raise ValueError(f"must be one of {', '.join(TRANSPORTS)}")
    return text


@dataclass(frozen=True)
class FacadeSettings(CallerSettings, HazelcastSettings, QueueSettings):
    queue: str = queue_setting(NO_QUEUE, more_help=" or none (no queue: a POST is only logged)")
    hazelcast: bool = bool_setting(
        True, "LAB_HAZELCAST", "--hazelcast",
        "have a Hazelcast client (the queue's, and the status page's view of the cluster); false: a system "
        "without members, with queue none or kafka",
    )
    messages_queue: str = messages_queue_setting()
    logging_map: str = logging_map_setting()
    received_map: str = received_map_setting()
    breaker_fail_max: int = setting(
        5, "LAB_BREAKER_FAIL_MAX", "--breaker-fail-max", positive_int,
        "failed calls in a row that open a logging copy's circuit breaker: the copy is then skipped",
    )
    breaker_reset_timeout: float = setting(
        10.0, "LAB_BREAKER_RESET_TIMEOUT", "--breaker-reset-timeout", positive_float,
        "seconds an open breaker skips its logging copy before one call probes it (half-open)",
    )
    retry_window: float = setting(
        0.0, "LAB_RETRY_WINDOW", "--retry-window", non_negative_float,
        "seconds a POST keeps trying logging copies while none answers (0: a 503 once its attempts fail)",
    )
    retry_window_max: float = setting(
        30.0, "LAB_RETRY_WINDOW_MAX", "--retry-window-max", non_negative_float,
        "the longest window a client may ask for with the header Prefer: wait=N (0: the header is ignored)",
    )
    kafka_group: str = setting(
        MESSAGES_GROUP, "LAB_KAFKA_GROUP", "--kafka-group", str,
        "the messages copies' consumer group, whose progress the status page shows (queue=kafka)",
    )
    logging_transport: str = setting(
        "http", "LAB_LOGGING_TRANSPORT", "--logging-transport", _transport,
        f"how a POST is logged: http, or grpc (the copies found as {LOGGING_GRPC_SERVICE}; reads stay on HTTP)",
    )

    def __post_init__(self):
        if not self.hazelcast and self.queue == "hazelcast":
            raise SettingsError("invalid settings: LAB_HAZELCAST=false needs LAB_QUEUE none or kafka: the queue "
                                "is the cluster's")
