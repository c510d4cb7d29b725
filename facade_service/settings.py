"""What facade-service reads: a caller of logging and messages, with a Hazelcast client for the queue
(and, for the status page, the names of the two maps whose statistics it shows)."""

from __future__ import annotations

from dataclasses import dataclass

from lab_common.settings import (
    CallerSettings,
    HazelcastSettings,
    logging_map_setting,
    messages_queue_setting,
    received_map_setting,
)


@dataclass(frozen=True)
class FacadeSettings(CallerSettings, HazelcastSettings):
    messages_queue: str = messages_queue_setting()
    logging_map: str = logging_map_setting()
    received_map: str = received_map_setting()
