"""Kafka mode's adapters on fakes of confluent-kafka's clients: the facade's acknowledged offer, the messages
copies' inbox (record, then commit; what is not committed comes again) and redelivery's view of the topic.
Against a real broker: tests/integration/test_kafka.py."""

import threading
import time

import orjson
import pytest
from confluent_kafka import KafkaError

from facade_service.adapters.kafka import KafkaQueue
from lab_common.contracts import decode_queue_item, encode_queue_item
from lab_common.errors import Unavailable
from lab_common.kafka import AcknowledgedProducer, broker_check
from messages_service.adapters.kafka import KafkaInbox, KafkaRedelivery
from messages_service.service import JournalUnavailable, NotCommitted
from tests.unit.fakes import FakeKafkaConsumer, FakeKafkaProducer, FakeReceivedMap

TOPIC = "messages"


@pytest.fixture
def producers():
    """Builds AcknowledgedProducers over fakes and closes them after the test."""
    made = []

    def make(*fakes: FakeKafkaProducer, timeout: float = 0.5) -> AcknowledgedProducer:
        given = iter(fakes)
        producer = AcknowledgedProducer({}, timeout=timeout, factory=lambda config: next(given))
        made.append(producer)
        return producer

    yield make
    for producer in made:
        producer.close(0.1)


def test_an_offer_returns_once_the_brokers_acknowledged_it_keyed_by_its_uuid(producers):
    fake = FakeKafkaProducer()
    KafkaQueue(producers(fake), TOPIC).offer("u-1", "msg1", "trace-1")
    [(topic, key, value)] = fake.produced
    item = decode_queue_item(value.decode())
    assert (topic, key, item.uuid, item.msg, item.request_id) == (TOPIC, b"u-1", "u-1", "msg1", "trace-1")
    assert item.at > 0  # the time it was offered: redelivery reads it (queue_cleared_to)


def test_an_offer_the_brokers_refused_is_unavailable(producers):
    fake = FakeKafkaProducer(outcome=KafkaError(KafkaError.NOT_ENOUGH_REPLICAS, "fewer in sync than min.insync"))
    with pytest.raises(Unavailable, match="not acknowledged"):
        KafkaQueue(producers(fake), TOPIC).offer("u-1", "msg1")


def test_an_offer_never_reported_on_is_unavailable_after_the_timeout_and_a_margin(producers):
    """Given up (the raise: no hang) after waiting the timeout and the margin (1 s), and not before; how soon
    after is not a unit test's business on a busy machine."""
    queue = KafkaQueue(producers(FakeKafkaProducer(outcome="silent"), timeout=0.2), TOPIC)
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"no acknowledgement from the brokers within 1\.2s"):
        queue.offer("u-1", "msg1")
    assert time.monotonic() - started >= 1.2


def test_an_offer_the_client_cannot_even_queue_is_unavailable_at_once(producers):
    fake = FakeKafkaProducer()
    fake.full = True
    with pytest.raises(Unavailable, match="BufferError"):
        KafkaQueue(producers(fake), TOPIC).offer("u-1", "msg1")


def test_after_a_fatal_error_the_producer_starts_over_with_a_new_client(producers):
    broken = FakeKafkaProducer(outcome=KafkaError(KafkaError._FATAL, "out of order sequence", fatal=True))
    fresh = FakeKafkaProducer()
    queue = KafkaQueue(producers(broken, fresh), TOPIC)
    with pytest.raises(Unavailable):
        queue.offer("u-1", "msg1")
    queue.offer("u-1", "msg1")  # the retry goes through the new client
    assert [key for _, key, _ in fresh.produced] == [b"u-1"] and broken.flushed


def test_offers_from_many_threads_each_wait_for_their_own_acknowledgement(producers):
    fake = FakeKafkaProducer()
    queue = KafkaQueue(producers(fake), TOPIC)
    threads = [threading.Thread(target=queue.offer, args=(f"u-{i}", f"m{i}")) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(key for _, key, _ in fake.produced) == sorted(f"u-{i}".encode() for i in range(20))


# --- the inbox ---------------------------------------------------------------------------------------------


def items(*uuids: str, request_id: str | None = "trace") -> list[str]:
    return [encode_queue_item(u, f"text of {u}", request_id=request_id) for u in uuids]


def inbox_over(partitions: dict[int, list[str]]):
    consumer = FakeKafkaConsumer(TOPIC, partitions)
    received = FakeReceivedMap(consumer.events)
    return KafkaInbox({}, TOPIC, received, factory=lambda config: consumer), consumer, received


def test_a_batch_is_recorded_and_only_then_its_offsets_are_committed():
    inbox, consumer, received = inbox_over({0: items("a", "b"), 1: items("c")})
    batch = inbox.receive_batch("messages-1", 10, 0.1)
    assert sorted(m.uuid for m in batch.recorded) == ["a", "b", "c"] and batch.taken == 3
    assert consumer.events == ["record 3", "commit"]
    assert consumer.committed_offsets == {0: 2, 1: 1}  # the offset after each partition's last record
    assert consumer.subscribed == [TOPIC]


def test_a_uuid_recorded_before_is_taken_committed_and_dropped():
    inbox, consumer, received = inbox_over({0: items("a", "a"), 1: []})
    batch = inbox.receive_batch("messages-1", 10, 0.1)
    assert [m.uuid for m in batch.recorded] == ["a"] and batch.taken == 2
    assert consumer.committed_offsets == {0: 2}


def test_a_batch_not_wholly_recorded_is_not_committed_and_comes_again():
    inbox, consumer, received = inbox_over({0: items("a", "b", "c"), 1: []})
    received.fail_after = 1
    with pytest.raises(NotCommitted) as failed:
        inbox.receive_batch("messages-1", 10, 0.1)
    assert [m.uuid for m in failed.value.recorded] == ["a"] and failed.value.unanswered == 2
    assert "commit" not in consumer.events and consumer.events[-1] == "seek 0@0"
    received.fail_after = None
    again = inbox.receive_batch("messages-1", 10, 0.1)  # all three again: "a" is dropped, b and c recorded
    assert [m.uuid for m in again.recorded] == ["b", "c"] and again.taken == 3
    assert consumer.committed_offsets == {0: 3}


def test_a_failed_commit_behaves_as_not_committed_the_records_stand_and_the_messages_come_again():
    inbox, consumer, received = inbox_over({0: items("a"), 1: items("b")})
    consumer.commit_error = KafkaError(KafkaError.REBALANCE_IN_PROGRESS, "rebalancing")
    with pytest.raises(NotCommitted) as failed:
        inbox.receive_batch("messages-1", 10, 0.1)
    assert sorted(m.uuid for m in failed.value.recorded) == ["a", "b"]
    assert failed.value.request_ids == {"a": "trace", "b": "trace"}
    assert consumer.events[:2] == ["record 2", "commit"] and set(consumer.events[2:]) == {"seek 0@0", "seek 1@0"}
    consumer.commit_error = None
    again = inbox.receive_batch("messages-1", 10, 0.1)
    assert again.recorded == [] and again.taken == 2  # both dropped as received before
    assert consumer.committed_offsets == {0: 1, 1: 1}


def test_an_empty_poll_is_an_empty_batch_and_commits_nothing():
    inbox, consumer, _ = inbox_over({0: [], 1: []})
    batch = inbox.receive_batch("messages-1", 10, 0.1)
    assert (batch.recorded, batch.taken, consumer.events) == ([], 0, [])


def test_a_poll_that_answers_only_errors_is_unavailable():
    inbox, consumer, _ = inbox_over({0: [], 1: []})
    consumer.poll = lambda timeout=None: __import__("tests.unit.fakes", fromlist=["x"]).FakeKafkaMessage(
        TOPIC, 0, 0, error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "no such topic"))
    with pytest.raises(Unavailable, match="no such topic"):
        inbox.receive_batch("messages-1", 10, 0.1)


def test_the_inbox_counts_what_redelivery_offered_again_they_carry_no_request_id():
    inbox, _, _ = inbox_over({0: items("a") + items("b", request_id=None), 1: []})
    batch = inbox.receive_batch("messages-1", 10, 0.1)
    assert batch.redelivered == 1 and batch.request_ids == {"a": "trace"}


def test_health_shows_the_partitions_this_copy_owns_and_their_lag():
    inbox, consumer, _ = inbox_over({0: items("a", "b", "c"), 1: items("d")})
    assert inbox.health()[0] is False  # not in the group before its first poll
    inbox.receive_batch("messages-1", 2, 0.1)  # a and b of partition 0
    ok, detail = inbox.health()
    assert ok and detail["partitions"] == [0, 1]
    assert detail["lag_by_partition"] == {"0": 1, "1": 1} and detail["lag"] == 2


def test_closing_the_inbox_leaves_the_group():
    inbox, consumer, _ = inbox_over({0: [], 1: []})
    inbox.receive_batch("messages-1", 10, 0.1)
    inbox.close()
    assert consumer.closed


# --- redelivery's view of the topic --------------------------------------------------------------------------


def redelivery_over(partitions: dict[int, list[str]]):
    inspector = FakeKafkaConsumer(TOPIC, partitions)
    return KafkaRedelivery(None, None, inspector, TOPIC, "received", "messages"), inspector


def test_a_topic_consumed_to_its_end_is_cleared_to_now():
    port, inspector = redelivery_over({0: items("a"), 1: []})
    inspector.committed_offsets = {0: 1}
    before = time.time_ns() // 1000
    assert before <= port.queue_cleared_to() <= time.time_ns() // 1000


def test_the_topic_is_cleared_to_the_offer_time_of_the_first_message_the_group_has_not_committed():
    old, older = 1_000_000, 500_000
    port, inspector = redelivery_over({0: [encode_queue_item("a", "x", at=100), encode_queue_item("b", "y", at=old)],
                                       1: [encode_queue_item("c", "z", at=older)]})
    inspector.committed_offsets = {0: 1}  # "a" received; "b" not yet; partition 1 never committed: from its start
    assert port.queue_cleared_to() == older
    inspector.committed_offsets = {0: 1, 1: 1}
    assert port.queue_cleared_to() == old
    assert inspector.assigned == []  # it read by hand and let go: it never joins the group


def test_a_partition_whose_committed_offset_fell_below_its_retention_starts_at_its_low_watermark():
    port, inspector = redelivery_over({0: [encode_queue_item("a", "x", at=1), encode_queue_item("b", "y", at=7)],
                                       1: []})
    inspector.committed_offsets = {0: 0}
    inspector.low[0] = 1  # "a" was deleted by retention
    assert port.queue_cleared_to() == 7


def test_offers_made_again_are_produced_to_the_topic_acknowledged(producers):
    fake = FakeKafkaProducer()
    port = KafkaRedelivery(None, producers(fake), FakeKafkaConsumer(TOPIC), TOPIC, "received", "messages")
    port.requeue([("a", "x"), ("b", "y")])
    assert [(key, orjson.loads(value)["msg"]) for _, key, value in fake.produced] == [(b"a", "x"), (b"b", "y")]
    assert all("request_id" not in orjson.loads(value) for _, _, value in fake.produced)


def test_the_broker_check_passes_when_a_broker_answers_with_the_topic_and_fails_otherwise():
    consumer = FakeKafkaConsumer(TOPIC)
    ok, detail = broker_check(consumer, TOPIC)()
    assert ok and detail == {"state": "reachable", "brokers": 1, "topic": TOPIC, "partitions": 2}
    ok, detail = broker_check(consumer, "other")()
    assert not ok and "other not found" in detail["state"]

    class Unreachable:
        def list_topics(self, topic=None, timeout=-1):
            from confluent_kafka import KafkaException

            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "all brokers down"))

    ok, detail = broker_check(Unreachable(), TOPIC)()
    assert not ok and "all brokers down" in detail["state"]


# --- the facade on the Kafka queue ---------------------------------------------------------------------------


def test_a_post_is_201_only_once_the_brokers_acknowledged_it_and_503_when_they_did_not(settings, producers):
    from facade_service.app import create_app
    from facade_service.service import Facade
    from tests.unit.fakes import FakeLogging, FakeMessages

    logging = FakeLogging()
    fake = FakeKafkaProducer()
    client = create_app(settings, facade=Facade(logging, FakeMessages(), KafkaQueue(producers(fake), TOPIC))
                        ).test_client()
    answer = client.post("/facade", data={"msg": "msg1"})
    assert answer.status_code == 201 and fake.produced[0][1] == answer.json["uuid"].encode()
    fake.outcome = KafkaError(KafkaError.NOT_ENOUGH_REPLICAS, "fewer in sync than min.insync.replicas")
    refused = client.post("/facade", data={"msg": "msg2"})
    assert refused.status_code == 503 and "min.insync" in refused.json["message"]
    assert {m.msg for m in logging.store.entries.values()} == {"msg1", "msg2"}  # logged: redelivery's to offer


def test_a_batch_is_journaled_after_it_is_recorded_and_before_its_offsets_are_committed():
    inbox, consumer, _ = inbox_over({0: items("a", "b"), 1: []})
    inbox.receive_batch("messages-1", 10, 0.1, lambda recorded: consumer.events.append(f"journal {len(recorded)}"))
    assert consumer.events == ["record 2", "journal 2", "commit"]


def test_a_batch_that_cannot_be_journaled_is_not_committed_and_comes_again():
    inbox, consumer, _ = inbox_over({0: items("a"), 1: []})

    def full_disk(recorded):
        raise JournalUnavailable("fake disk is full")

    with pytest.raises(JournalUnavailable):
        inbox.receive_batch("messages-1", 10, 0.1, full_disk)
    assert "commit" not in consumer.events and consumer.events[-1] == "seek 0@0"
