"""What logging-service reads: its Hazelcast client, its map, and whether it also serves gRPC."""

from __future__ import annotations

from dataclasses import dataclass

from lab_common.settings import GrpcServerSettings, HazelcastSettings, logging_map_setting


@dataclass(frozen=True)
class LoggingSettings(HazelcastSettings, GrpcServerSettings):
    logging_map: str = logging_map_setting()
