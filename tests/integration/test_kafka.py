"""Kafka mode's adapters against a real broker (and, where the received and logging maps are involved, real
Hazelcast members): the acknowledged offer, one consumer group taking every message once, what a consumer that
dies before its commit leaves, redelivery on the topic, and the /health checks."""

import dataclasses
import json
import time
import uuid

import confluent_kafka
import pytest

from facade_service.adapters.kafka import KafkaQueue
from lab_common.contracts import ReceivedMessage, decode_queue_item, encode_queue_item
from lab_common.errors import Unavailable
from lab_common.kafka import (
    HEALTH_TIMEOUT,
    AcknowledgedProducer,
    broker_check,
    client_config,
    inspector_config,
    metadata_client,
    producer_config,
)
from lab_common.settings import QueueSettings
from logging_service.adapters.hazelcast import HazelcastMessageStore
from logging_service.service import MessageLog
from messages_service.adapters.hazelcast import ReceivedMap
from messages_service.adapters.journal_file import FileJournal
from messages_service.adapters.kafka import KafkaInbox, KafkaRedelivery, consumer_config
from messages_service.consumer import QueueConsumer
from messages_service.redelivery import Redelivery
from tests.helpers import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka_settings(kafka_broker) -> QueueSettings:
    return QueueSettings.load("integration-test", default_port=1, argv=[], instance="it-copy",
                              environ={"LAB_QUEUE": "kafka", "LAB_KAFKA_BOOTSTRAP": kafka_broker,
                                       "LAB_KAFKA_TIMEOUT": "3"})


@pytest.fixture
def clients(kafka_settings):
    """Makes the Kafka clients a test asks for and closes them after it (consumers leave their group)."""
    made = []

    class Clients:
        def producer(self, **changes) -> AcknowledgedProducer:
            settings = dataclasses.replace(kafka_settings, **changes)
            made.append(AcknowledgedProducer(producer_config(settings), timeout=settings.kafka_timeout))
            return made[-1]

        def inbox(self, topic: str, group: str, received: ReceivedMap) -> KafkaInbox:
            made.append(KafkaInbox(consumer_config(client_config(kafka_settings), group), topic, received))
            return made[-1]

        def inspector(self, group: str):
            made.append(confluent_kafka.Consumer(inspector_config(client_config(kafka_settings), group)))
            return made[-1]

    yield Clients()
    for client in reversed(made):
        client.close()


@pytest.fixture
def names(unique_name):
    return {"received_map": f"r-{unique_name}", "logging_map": f"l-{unique_name}", "group": f"g-{unique_name}"}


def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 15.0) -> list:
    """`count` records of the topic, read from its start by a consumer of no group's."""
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    records, deadline = [], time.monotonic() + timeout
    try:
        while len(records) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                records.append(message)
    finally:
        consumer.close()
    return records


def received_by(received: ReceivedMap, instance: str) -> list[ReceivedMessage]:
    return [ReceivedMessage.from_text(text) for text in received.received_as_json(instance)]


def test_an_offer_returns_once_the_broker_acknowledged_it_and_it_is_on_the_topic_keyed_by_uuid(
        clients, kafka_broker, kafka_topic):
    queue = KafkaQueue(clients.producer(), kafka_topic)
    for i in range(5):
        queue.offer(f"u{i}", f"msg{i}", f"trace-{i}")
    records = read_topic(kafka_broker, kafka_topic, 5)
    assert sorted((r.key().decode(), decode_queue_item(r.value().decode()).msg) for r in records) == \
        [(f"u{i}", f"msg{i}") for i in range(5)]
    assert len({r.partition() for r in records if r.key() == b"u0"}) == 1


def test_an_offer_the_brokers_cannot_take_is_unavailable(clients, unique_name):
    """Unavailable, not a hang (the test's own limit would stop one); the bound itself is the client's
    message.timeout.ms and the wait's margin: tests/unit/test_kafka_adapters.py."""
    queue = KafkaQueue(clients.producer(kafka_timeout=1.0), f"no-such-topic-{unique_name}")  # nothing creates it
    with pytest.raises(Unavailable, match="acknowledge"):
        queue.offer("u1", "msg1")


def test_two_copies_in_one_group_split_the_partitions_and_receive_every_message_exactly_once(
        clients, connect, names, kafka_topic, tmp_path):
    received = ReceivedMap(connect(), names["received_map"])
    inboxes = [clients.inbox(kafka_topic, names["group"], received) for _ in range(2)]
    journals = [FileJournal(tmp_path / f"messages-{i + 1}.jsonl") for i in range(2)]
    consumers = [QueueConsumer(inbox, f"messages-{i + 1}", journal=journals[i], batch=10, poll_seconds=0.2).start()
                 for i, inbox in enumerate(inboxes)]
    try:
        eventually(lambda: all(inbox.assigned() for inbox in inboxes), timeout=30)  # one partition each
        queue = KafkaQueue(clients.producer(), kafka_topic)
        for i in range(200):
            queue.offer(f"u{i}", f"msg{i}")

        def all_received():
            got = received_by(received, "messages-1") + received_by(received, "messages-2")
            assert len(got) == 200
            return got

        got = eventually(all_received, timeout=30)
    finally:
        for consumer in consumers:
            consumer.stop()
    assert sorted(m.uuid for m in got) == sorted(f"u{i}" for i in range(200))
    assert {m.received_by for m in got} == {"messages-1", "messages-2"}
    assert sorted(p for inbox in inboxes for p in inbox.assigned()) == [0, 1]
    assert all(consumer.counts.dropped == 0 for consumer in consumers)
    journaled = [json.loads(text) for journal in journals for text in journal.page(0, 1000)]
    assert sorted(e["uuid"] for e in journaled) == sorted(f"u{i}" for i in range(200))  # each once, in all
    holders = {m.uuid: m.received_by for m in got}
    assert all(holders[e["uuid"]] == e["copy"] for e in journaled)


def test_what_a_copy_recorded_but_never_committed_comes_to_the_next_owner_and_is_dropped_there(
        clients, connect, names, kafka_topic, kafka_settings):
    queue = KafkaQueue(clients.producer(), kafka_topic)
    for i in range(20):
        queue.offer(f"u{i}", f"msg{i}")
    received = ReceivedMap(connect(), names["received_map"])
    # a copy that dies between recording and committing: its consumer polls and records, then is gone
    dying = confluent_kafka.Consumer(consumer_config(client_config(kafka_settings), names["group"]))
    dying.subscribe([kafka_topic])
    taken, deadline = [], time.monotonic() + 20
    while len(taken) < 20 and time.monotonic() < deadline:
        taken += [m for m in dying.consume(20, 0.5) if not m.error()]
    outcome = received.record("messages-1", [decode_queue_item(m.value().decode()) for m in taken])
    assert len(outcome.recorded) == 20
    dying.close()  # leaves the group without a commit: its partitions restart at the committed offsets (none)

    survivor = clients.inbox(kafka_topic, names["group"], received)
    batches = []
    eventually(lambda: batches.append(survivor.receive_batch("messages-2", 50, 0.5)) or
               sum(b.taken for b in batches) >= 20, timeout=30)
    assert sum(b.taken for b in batches) == 20 and not any(b.recorded for b in batches)  # all 20 again, dropped
    assert sorted(m.uuid for m in received_by(received, "messages-1")) == sorted(f"u{i}" for i in range(20))
    assert received_by(received, "messages-2") == []
    assert survivor.health()[1]["lag"] == 0  # committed this time


def test_what_was_logged_but_never_produced_is_offered_again_until_a_copy_receives_it(
        clients, connect, names, kafka_topic):
    connection = connect()
    log = MessageLog(HazelcastMessageStore(connection, names["logging_map"]), "logging-1")
    for i in range(5):
        log.record(f"u{i}", f"msg{i}")
    queue = KafkaQueue(clients.producer(), kafka_topic)
    queue.offer("u0", "msg0")  # only u0 and u1 reached the topic: the produce of the others failed
    queue.offer("u1", "msg1")
    received = ReceivedMap(connection, names["received_map"])
    inbox = clients.inbox(kafka_topic, names["group"], received)
    eventually(lambda: inbox.receive_batch("messages-1", 10, 0.5).taken and
               len(received_by(received, "messages-1")) == 2, timeout=30)

    port = KafkaRedelivery(connection, clients.producer(), clients.inspector(names["group"]), kafka_topic,
                           names["received_map"], names["logging_map"])
    redelivery = Redelivery(port, grace=0, horizon=60)
    assert eventually(lambda: redelivery.step() == 3, timeout=10)  # its first look may meet a coordinator loading
    eventually(lambda: inbox.receive_batch("messages-2", 10, 0.5) and
               len(received_by(received, "messages-2")) == 3, timeout=30)
    assert redelivery.step() == 0 and redelivery.outstanding == 0
    assert sorted(m.uuid for m in received_by(received, "messages-1") + received_by(received, "messages-2")) == \
        [f"u{i}" for i in range(5)]


def test_the_topic_is_cleared_to_the_first_uncommitted_messages_offer_time_or_to_now(
        clients, connect, names, kafka_topic, kafka_broker):
    connection = connect()
    port = KafkaRedelivery(connection, clients.producer(), clients.inspector(names["group"]), kafka_topic,
                           names["received_map"], names["logging_map"])
    before = time.time_ns() // 1000
    assert before <= eventually(port.queue_cleared_to, timeout=10) <= time.time_ns() // 1000
    producer = clients.producer()
    producer.send(kafka_topic, [("a", encode_queue_item("a", "1", at=1_000))])
    producer.send(kafka_topic, [("a", encode_queue_item("a", "1", at=2_000))])  # same key: same partition
    assert port.queue_cleared_to() == 1_000
    inbox = clients.inbox(kafka_topic, names["group"], ReceivedMap(connection, names["received_map"]))
    eventually(lambda: inbox.receive_batch("messages-1", 1, 0.5).taken, timeout=30)
    assert port.queue_cleared_to() == 2_000


def test_the_broker_check_passes_on_a_live_broker_and_fails_fast_where_none_answers(kafka_settings, kafka_topic):
    ok, detail = broker_check(metadata_client(kafka_settings), kafka_topic)()
    assert ok and detail["partitions"] == 2 and detail["brokers"] == 1
    nowhere = RecordingTimeouts(metadata_client(dataclasses.replace(kafka_settings, kafka_bootstrap=("127.0.0.1:1",))))
    ok, detail = broker_check(nowhere, kafka_topic)()
    assert not ok and "no broker answers" in detail["state"]
    assert nowhere.timeouts == [HEALTH_TIMEOUT]  # the call was bounded (by the client's own timeout), not a clock


class RecordingTimeouts:
    """A real metadata client, with the timeout of each list_topics call recorded."""

    def __init__(self, client):
        self._client = client
        self.timeouts: list[float] = []

    def list_topics(self, *args, timeout=-1, **kwargs):
        self.timeouts.append(timeout)
        return self._client.list_topics(*args, timeout=timeout, **kwargs)


def test_the_status_pages_topic_view_reads_each_partitions_leader_end_and_the_groups_commits(
        kafka_settings, kafka_broker, kafka_topic, unique_name, clients):
    from facade_service.adapters.kafka import KafkaTopicView

    producer = confluent_kafka.Producer(client_config(kafka_settings))
    for partition, count in ((0, 3), (1, 2)):
        for i in range(count):
            producer.produce(kafka_topic, value=f"m{i}".encode(), partition=partition)
    assert producer.flush(10) == 0
    group = f"g-{unique_name}".replace("[", "-").replace("]", "-")
    admin = metadata_client(kafka_settings)

    def commit_two_on_partition_0():  # the group's coordinator may not be ready at once (NOT_COORDINATOR)
        asked = confluent_kafka.ConsumerGroupTopicPartitions(
            group, [confluent_kafka.TopicPartition(kafka_topic, 0, 2)])
        try:
            admin.alter_consumer_group_offsets([asked], request_timeout=5)[group].result()
        except confluent_kafka.KafkaException as err:
            raise AssertionError(f"the commit failed: {err}") from err

    eventually(commit_two_on_partition_0, timeout=30)
    view = KafkaTopicView(clients.inspector(group), kafka_topic, group).view()
    assert view.error is None and view.brokers == [kafka_broker]
    assert [(p.partition, p.leader, p.in_sync, p.end_offset, p.committed, p.lag) for p in view.partitions] == [
        (0, kafka_broker, [kafka_broker], 3, 2, 1),
        (1, kafka_broker, [kafka_broker], 2, None, 2),  # never committed: all of it still to take
    ]
    nowhere = confluent_kafka.Consumer(inspector_config({"bootstrap.servers": "127.0.0.1:1"}, group))
    try:
        gone = KafkaTopicView(nowhere, kafka_topic, group).view()
    finally:
        nowhere.close()
    assert gone.partitions == [] and "no broker answers" in gone.error
