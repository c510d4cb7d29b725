"""What messages-service reads: its Hazelcast client, the queue it consumes (or the Kafka topic and its consumer
group, queue=kafka), its received map, and the logging map redelivery reads; or that it runs as the lab's
Task 1 stub."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab_common.contracts import MESSAGES_GROUP
from lab_common.settings import (
    HazelcastSettings,
    QueueSettings,
    bool_setting,
    consistency_setting,
    logging_map_setting,
    messages_queue_setting,
    positive_int,
    received_map_setting,
    setting,
)

DEFAULT_JOURNAL = "var/journal/{instance}.jsonl"  # relative to the working directory


@dataclass(frozen=True)
class MessagesSettings(HazelcastSettings, QueueSettings):
    messages_queue: str = messages_queue_setting()
    received_map: str = received_map_setting()
    consumer_batch: int = setting(
        50, "LAB_CONSUMER_BATCH", "--consumer-batch", positive_int, "queue items per consumer transaction"
    )
    consumer_threads: int = setting(
        1, "LAB_CONSUMER_THREADS", "--consumer-threads", positive_int,
        "consumer threads, each with its own transactions (more take smaller batches and cost more CPU)"
    )
    logging_map: str = logging_map_setting()
    kafka_group: str = setting(MESSAGES_GROUP, "LAB_KAFKA_GROUP", "--kafka-group", str,
                               "the consumer group every messages copy joins (queue=kafka)")
    hz_consistency: str = consistency_setting("the record counts as not made: its batch goes back to the queue")
    journal: str = setting("", "LAB_JOURNAL", "--journal", str,
                           "the file this copy appends every message it processes to (default: "
                           "var/journal/<instance>.jsonl in the working directory; labctl: <run dir>/journal/)")

    @property
    def journal_path(self) -> Path:
        return Path(self.journal or DEFAULT_JOURNAL.format(instance=self.instance))
    messages_stub: bool = bool_setting(
        False, "LAB_MESSAGES_STUB", "--messages-stub",
        "run as the lab's Task 1 stub: GET /messages answers 'not implemented yet'; no queue, no cluster",
    )
