"""The Kafka adapters of messages-service's ports (queue=kafka, docs/kafka.md): the inbox (a consumer of the
topic in the copies' one group records each batch into the received map, then commits its offsets) and the
redelivery port (the maps as HazelcastRedelivery reads them, the topic in place of the queue).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import confluent_kafka
from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, TopicPartition

from lab_common.cluster import ClusterConnection
from lab_common.contracts import decode_queue_item, encode_queue_item
from lab_common.errors import Unavailable
from lab_common.kafka import HEALTH_TIMEOUT, AcknowledgedProducer
from messages_service.adapters.hazelcast import ReceivedMap, RedeliveryMaps, request_ids
from messages_service.service import Batch, BeforeCommit, NotCommitted

log = logging.getLogger(__name__)

READ_TIMEOUT = 2.0  # seconds to read one message of a partition, for its time
ConsumerFactory = Callable[[dict[str, Any]], Any]


def consumer_config(base: dict[str, Any], group: str) -> dict[str, Any]:
    """One group for every copy; offsets committed by hand, only once a batch is recorded; a new group starts
    at the topic's beginning. A copy that stops heartbeating (killed, frozen) loses its partitions after
    10 s (the client's default is 45 s), and a rebalance moves only the partitions that change owner."""
    return {**base, "group.id": group, "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000}


class KafkaInbox:
    """The consumer's port on a Kafka topic: each calling thread has a consumer of its own in the group; a batch
    is polled, recorded into the received map (ReceivedMap, as HazelcastInbox records it) and journaled, and
    only then are its offsets committed, synchronously. A batch not wholly recorded, or whose commit fails, raises
    NotCommitted: what was recorded stands, the consumer is moved back to the batch's first offsets so that
    the messages come again (from this copy, or from the next owner of their partition after a rebalance),
    and the received map's put_if_absent drops a uuid recorded before."""

    def __init__(self, config: dict[str, Any], topic: str, received: ReceivedMap, *,
                 factory: ConsumerFactory = confluent_kafka.Consumer):
        self._config = config
        self._topic = topic
        self._received = received
        self._factory = factory
        self._local = threading.local()
        self._consumers: list[Any] = []
        self._assigned: dict[int, set[int]] = {}  # id(consumer) -> its partitions
        self._lag: dict[int, dict[int, int]] = {}  # id(consumer) -> partition -> messages behind
        self._lock = threading.Lock()

    def _consumer(self):
        consumer = getattr(self._local, "consumer", None)
        if consumer is None:
            consumer = self._factory(self._config)
            key = id(consumer)
            with self._lock:
                self._consumers.append(consumer)
                self._assigned[key] = set()

            def assigned(_consumer, partitions):
                with self._lock:
                    self._assigned[key] |= {p.partition for p in partitions}

            def revoked(_consumer, partitions):
                with self._lock:
                    self._assigned[key] -= {p.partition for p in partitions}

            consumer.subscribe([self._topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
            self._local.consumer = consumer
        return consumer

    def receive_batch(self, instance: str, max_items: int, wait_seconds: float,
                      before_commit: BeforeCommit | None = None) -> Batch:
        consumer = self._consumer()
        try:
            return self._receive_batch(consumer, instance, max_items, wait_seconds, before_commit)
        finally:
            self._note_lag(consumer)

    def _receive_batch(self, consumer, instance: str, max_items: int, wait_seconds: float,
                       before_commit: BeforeCommit | None) -> Batch:
        try:  # the first message waits up to wait_seconds; the rest are what the client has fetched already
            first = consumer.poll(wait_seconds)
            messages = [first] if first is not None else []
            if messages and max_items > 1:
                messages += consumer.consume(max_items - 1, 0)
        except KafkaException as err:
            raise Unavailable(f"cannot poll {self._topic}: {err}") from err
        records, errors = [], []
        for message in messages:
            (errors if message.error() else records).append(message)
        if not records:
            if errors:
                raise Unavailable(f"polling {self._topic} failed: {errors[0].error().str()}")
            return Batch([], 0)
        entries = [decode_queue_item(m.value().decode()) for m in records]
        ids = request_ids(entries)
        outcome = self._received.record(instance, entries)
        if before_commit is not None:
            try:
                before_commit(outcome.recorded)
            except BaseException:
                self._rewind(consumer, records)
                raise
        if outcome.failure is not None:
            self._rewind(consumer, records)
            raise NotCommitted(f"recording failed: {type(outcome.failure).__name__}: {outcome.failure}",
                               outcome.recorded, outcome.unanswered, ids) from outcome.failure
        try:
            committed = consumer.commit(offsets=_next_offsets(records), asynchronous=False)
            failed = [tp for tp in committed or () if tp.error is not None]
            if failed:
                raise KafkaException(failed[0].error)
        except KafkaException as err:
            self._rewind(consumer, records)
            raise NotCommitted(f"offset commit failed: {err}", outcome.recorded, 0, ids) from err
        return Batch(outcome.recorded, len(entries), ids, sum(1 for e in entries if not e.request_id))

    def _rewind(self, consumer, records) -> None:
        """Back to the first offset of the batch in each partition, so that what was not committed comes again
        (a partition no longer assigned is the next owner's: it starts from the committed offset anyway)."""
        first: dict[int, int] = {}
        for m in records:
            first[m.partition()] = min(first.get(m.partition(), m.offset()), m.offset())
        for partition, offset in first.items():
            try:
                consumer.seek(TopicPartition(self._topic, partition, offset))
            except KafkaException as err:
                log.info("not rewinding partition %d to %d: %s", partition, offset, err)

    def received_as_json(self, instance: str) -> list[str]:
        return self._received.received_as_json(instance)

    def assigned(self) -> list[int]:
        """The partitions this copy's consumers own now."""
        with self._lock:
            return sorted(set().union(*self._assigned.values()))

    def _note_lag(self, consumer) -> None:
        """How far behind this consumer's partitions are, from what the client holds (its position, the high
        watermark of its last fetch): asked in the thread that polls it, for /health to read. Another thread's
        call on a consumer that is being polled can block for good (seen with confluent-kafka 2.16)."""
        with self._lock:
            partitions = sorted(self._assigned[id(consumer)])
        lag = {}
        if partitions:
            for tp in consumer.position([TopicPartition(self._topic, p) for p in partitions]):
                _, high = consumer.get_watermark_offsets(TopicPartition(self._topic, tp.partition), cached=True)
                if tp.offset >= 0 and high >= 0:
                    lag[tp.partition] = max(0, high - tp.offset)
        with self._lock:
            self._lag[id(consumer)] = lag

    def lag(self) -> dict[int, int]:
        """Per partition this copy owns: messages on it past its consumer's position when last polled. Each
        batch is committed as soon as it is recorded, so this is the group's lag but for the batch under way."""
        with self._lock:
            return {p: n for c in self._consumers for p, n in self._lag.get(id(c), {}).items()
                    if p in self._assigned[id(c)]}

    def health(self) -> tuple[bool, dict]:
        """The group's view from this copy: its partitions and how far behind they are. Passing once each
        consumer has joined the group; a copy may own no partition (more copies than partitions)."""
        with self._lock:
            joined = bool(self._consumers)
        if not joined:
            return False, {"state": "not in the group yet"}
        lag = self.lag()
        return True, {"state": "in the group", "partitions": self.assigned(), "lag": sum(lag.values()),
                      "lag_by_partition": {str(p): n for p, n in sorted(lag.items())}}

    def close(self) -> None:
        """Leave the group at once (its partitions move to the other copies now, not after the session)."""
        with self._lock:
            consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            try:
                consumer.close()
            except (KafkaException, RuntimeError) as err:
                log.info("closing a Kafka consumer: %s", err)


class KafkaRedelivery(RedeliveryMaps):
    """Redelivery's port with the topic in place of the queue: the maps are read as in Hazelcast mode; offers
    made again are produced to the topic (keyed by uuid, acknowledged by the brokers); and a message has
    left the queue once the group's committed offset on its partition is past it.

    `queue_cleared_to` on Kafka: for each partition, the group's committed offset (the partition's low
    watermark when the group has none) is where the messages not yet received begin; the time the first of
    them was offered (its item's `at`) bounds what has surely left. A partition consumed to its end is
    cleared to now. Redelivery then looks only at messages logged `grace` seconds before the earliest of
    these, so it offers again only what the topic does not hold unconsumed: a message whose produce failed
    or was never made."""

    def __init__(self, connection: ClusterConnection, producer: AcknowledgedProducer, inspector, topic: str,
                 received_map: str, logging_map: str):
        super().__init__(connection, received_map, logging_map)
        self._producer = producer
        self._inspector = inspector  # a consumer with the group's id that never joins it: reads its offsets
        self._topic = topic

    def requeue(self, messages: list[tuple[str, str]]) -> None:
        self._producer.send(self._topic, [(uuid, encode_queue_item(uuid, msg)) for uuid, msg in messages])

    def queue_cleared_to(self) -> int:
        now = time.time_ns() // 1000
        try:
            metadata = self._inspector.list_topics(self._topic, timeout=HEALTH_TIMEOUT)
            topic = metadata.topics.get(self._topic)
            if topic is None or topic.error is not None:
                raise Unavailable(f"topic {self._topic} not found")
            partitions = [TopicPartition(self._topic, p) for p in sorted(topic.partitions)]
            cleared = now
            for tp in self._inspector.committed(partitions, timeout=HEALTH_TIMEOUT):
                if tp.error is not None:
                    raise Unavailable(f"cannot read the group's offset on partition {tp.partition}: {tp.error}")
                low, high = self._inspector.get_watermark_offsets(TopicPartition(self._topic, tp.partition),
                                                                  timeout=HEALTH_TIMEOUT, cached=False)
                first = max(tp.offset, low) if tp.offset != OFFSET_INVALID else low
                if first < high:
                    cleared = min(cleared, self._offered_at(tp.partition, first))
        except KafkaException as err:
            raise Unavailable(f"cannot see how far the group has consumed {self._topic}: {err}") from err
        return cleared

    def _offered_at(self, partition: int, offset: int) -> int:
        """The `at` of the message at this offset (µs), read without joining the group or committing."""
        self._inspector.assign([TopicPartition(self._topic, partition, offset)])
        try:
            deadline = time.monotonic() + READ_TIMEOUT
            while time.monotonic() < deadline:
                message = self._inspector.poll(max(0.0, deadline - time.monotonic()))
                if message is None:
                    continue
                if message.error():
                    if message.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise Unavailable(f"cannot read partition {partition}: {message.error().str()}")
                if message.partition() == partition and message.offset() >= offset:
                    item = decode_queue_item(message.value().decode())
                    # an item without a time: the time the broker has for it (ms)
                    return item.at or message.timestamp()[1] * 1000
            raise Unavailable(f"no answer for partition {partition} at offset {offset} in {READ_TIMEOUT:g}s")
        finally:
            self._inspector.unassign()


def _next_offsets(records) -> list[TopicPartition]:
    """What to commit: per partition, the offset after the last message of the batch."""
    last: dict[tuple[str, int], int] = {}
    for m in records:
        key = (m.topic(), m.partition())
        last[key] = max(last.get(key, -1), m.offset())
    return [TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()]
