"""What logging-service reads: where it stores (its Hazelcast client and map, or its own memory), and whether
it also serves gRPC."""

from __future__ import annotations

from dataclasses import dataclass

from lab_common.contracts import LOGGING_STORES
from lab_common.settings import GrpcServerSettings, HazelcastSettings, choice, logging_map_setting, setting


@dataclass(frozen=True)
class LoggingSettings(HazelcastSettings, GrpcServerSettings):
    logging_map: str = logging_map_setting()
    logging_store: str = setting(
        "hazelcast", "LAB_LOGGING_STORE", "--logging-store", choice(*LOGGING_STORES),
        "where messages are kept: hazelcast (the cluster's map, shared by every copy) or memory (this copy's "
        "own, no cluster, gone when it stops: the lab's Task 1)",
    )
