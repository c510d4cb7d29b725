"""What facade-service reads: a caller of logging and messages, with a Hazelcast client for the queue."""

from __future__ import annotations

from dataclasses import dataclass

from lab_common.settings import CallerSettings, HazelcastSettings, messages_queue_setting


@dataclass(frozen=True)
class FacadeSettings(CallerSettings, HazelcastSettings):
    messages_queue: str = messages_queue_setting()
