"""What logging-service reads: its Hazelcast client and its map."""

from __future__ import annotations

from dataclasses import dataclass

from lab_common.settings import HazelcastSettings, logging_map_setting


@dataclass(frozen=True)
class LoggingSettings(HazelcastSettings):
    logging_map: str = logging_map_setting()
