"""The facade's Kafka adapters (queue=kafka, imported only then): the topic it produces to, and the status
page's view of it: each partition's leader, replicas and in-sync replicas, how far it has been written (its end
offset) and how far the messages copies' group has committed, read from the brokers by a consumer that never
joins the group (lab_common.kafka.inspector_config). Not the admin client's group-offsets call: in
confluent-kafka 2.16.1 `list_consumer_group_offsets` crashes the process (a segmentation fault, every form of
it tried)."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import OFFSET_INVALID, KafkaException, TopicPartition

from facade_service.status import PartitionStatus, TopicStatus
from lab_common.contracts import encode_queue_item
from lab_common.kafka import AcknowledgedProducer

ADMIN_TIMEOUT = 1.0  # seconds each request to the brokers may take: the page shows what came back
READ_SECONDS = 1.0  # the brokers are asked at most this often however many pages are open


class KafkaTopicView:
    def __init__(self, inspector, topic: str, group: str, *, clock: Callable[[], float] = time.monotonic):
        self._inspector = inspector
        self._topic = topic
        self._group = group
        self._clock = clock
        self._read: tuple[float, TopicStatus] | None = None

    def view(self) -> TopicStatus:
        now = self._clock()
        if self._read is None or now - self._read[0] >= READ_SECONDS:
            self._read = (now, self._look(now))
        return self._read[1]

    def _look(self, now: float) -> TopicStatus:
        try:
            metadata = self._inspector.list_topics(self._topic, timeout=ADMIN_TIMEOUT)
        except KafkaException as err:
            return TopicStatus(self._topic, self._group, partitions=[], read_at=now,
                               error=f"no broker answers: {err}")
        brokers = {broker_id: f"{b.host}:{b.port}" for broker_id, b in metadata.brokers.items()}
        found = metadata.topics.get(self._topic)
        if found is None or found.error is not None:
            return TopicStatus(self._topic, self._group, partitions=[], brokers=sorted(brokers.values()),
                               read_at=now, error=f"topic {self._topic} not found")
        numbers = sorted(found.partitions)
        errors: list[str] = []
        committed = self._committed_offsets(numbers, errors)
        partitions = []
        for number in numbers:
            meta = found.partitions[number]
            end, done = self._end_offset(number, errors), committed.get(number)
            partitions.append(PartitionStatus(
                partition=number, leader=brokers.get(meta.leader),  # None: no leader (-1) while one is elected
                replicas=[brokers.get(r, str(r)) for r in meta.replicas],
                in_sync=[brokers.get(r, str(r)) for r in meta.isrs],
                end_offset=end, committed=done, lag=_lag(end, done)))
        return TopicStatus(self._topic, self._group, partitions=partitions, brokers=sorted(brokers.values()),
                           read_at=now, error="; ".join(errors) or None)

    def _end_offset(self, number: int, errors: list[str]) -> int | None:
        try:
            _, high = self._inspector.get_watermark_offsets(TopicPartition(self._topic, number),
                                                            timeout=ADMIN_TIMEOUT, cached=False)
        except KafkaException as err:
            errors.append(f"partition {number}'s end: {err}")
            return None
        return high

    def _committed_offsets(self, numbers: list[int], errors: list[str]) -> dict[int, int]:
        asked = [TopicPartition(self._topic, n) for n in numbers]
        try:
            answers = self._inspector.committed(asked, timeout=ADMIN_TIMEOUT)
        except KafkaException as err:
            errors.append(f"the group's offsets: {err}")
            return {}
        return {tp.partition: tp.offset for tp in answers
                if tp.error is None and tp.offset != OFFSET_INVALID}  # OFFSET_INVALID: nothing committed yet


def _lag(end: int | None, committed: int | None) -> int | None:
    """Messages written to the partition that the group has not committed: all of them before its first commit."""
    if end is None:
        return None
    return max(0, end - (committed or 0))


class KafkaQueue:
    """Produces {uuid, msg} to the topic keyed by uuid (so a uuid always goes to the same partition) with an
    idempotent producer and acks=all: `offer` returns once every in-sync replica has it, and raises
    Unavailable when the brokers did not acknowledge it within the producer's timeout. Such a message may
    still land; the consumers drop a repeat by uuid, and redelivery offers it again if it never does."""

    def __init__(self, producer: AcknowledgedProducer, topic: str):
        self._producer = producer
        self._topic = topic

    def offer(self, uuid: str, msg: str, request_id: str | None = None) -> None:
        self._producer.send(self._topic, [(uuid, encode_queue_item(uuid, msg, request_id=request_id))])
