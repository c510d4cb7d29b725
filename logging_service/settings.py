"""What logging-service reads: where it stores (its Hazelcast client and map, or its own memory), and whether
it also serves gRPC."""

from __future__ import annotations

from dataclasses import dataclass

from lab_common.contracts import LOGGING_STORES
from lab_common.settings import (
    GrpcServerSettings,
    HazelcastSettings,
    choice,
    consistency_setting,
    logging_map_setting,
    setting,
)


@dataclass(frozen=True)
class LoggingSettings(HazelcastSettings, GrpcServerSettings):
    logging_map: str = logging_map_setting()
    logging_store: str = setting(
        "hazelcast", "LAB_LOGGING_STORE", "--logging-store", choice(*LOGGING_STORES),
        "where messages are kept: hazelcast (the cluster's map, shared by every copy) or memory (this copy's "
        "own, no cluster, gone when it stops: the lab's Task 1)",
    )
    hz_consistency: str = consistency_setting(
        "the copy answers 503 (a message already stored is written again, to be on every backup, before it is "
        "answered as stored)")
