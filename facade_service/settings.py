"""What facade-service reads: a caller of logging and messages (over HTTP, or logging's POST over gRPC), with
a Hazelcast client for the queue (and, for the status page, the names of the two maps whose statistics it
shows)."""

from __future__ import annotations

from dataclasses import dataclass

from lab_common.contracts import LOGGING_GRPC_SERVICE, TRANSPORTS
from lab_common.settings import (
    CallerSettings,
    HazelcastSettings,
    logging_map_setting,
    messages_queue_setting,
    received_map_setting,
    setting,
)


def _transport(text: str) -> str:
    if text not in TRANSPORTS:
        raise ValueError(f"must be one of {', '.join(TRANSPORTS)}")
    return text


@dataclass(frozen=True)
class FacadeSettings(CallerSettings, HazelcastSettings):
    messages_queue: str = messages_queue_setting()
    logging_map: str = logging_map_setting()
    received_map: str = received_map_setting()
    logging_transport: str = setting(
        "http", "LAB_LOGGING_TRANSPORT", "--logging-transport", _transport,
        f"how a POST is logged: http, or grpc (the copies found as {LOGGING_GRPC_SERVICE}; reads stay on HTTP)",
    )
