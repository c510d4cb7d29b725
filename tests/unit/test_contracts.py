"""Both sides of every cross-process contract go through lab_common.contracts: what one adapter writes to a
(fake) Hazelcast object, the other side's adapter reads back, through the index the writer created."""

from __future__ import annotations

import orjson
from hazelcast.core import HazelcastJsonValue
from hazelcast.predicate import _BetweenPredicate, _EqualPredicate

from facade_service.adapters.hazelcast import HazelcastQueue
from lab_common.contracts import (
    LOGGED_ANSWER_SCHEMA,
    LOGGED_SCHEMA,
    RECEIVED_BY_INDEX,
    SEQ_INDEX,
    Logged,
    LoggedMessage,
    ReceivedMessage,
    decode_queue_item,
    encode_queue_item,
)
from logging_service.adapters.hazelcast import HazelcastMessageStore
from logging_service.service import MessageLog
from messages_service.adapters.hazelcast import HazelcastInbox, HazelcastRedelivery


class FakeMap:
    """A blocking map proxy that answers queries only on indexed attributes."""

    def __init__(self):
        self.entries: dict = {}
        self.indexes: dict[str, tuple[str, ...]] = {}  # index name -> attributes

    def add_index(self, attributes, index_type, name):
        self.indexes[name] = tuple(attributes)

    def put_if_absent(self, key, value):
        if key in self.entries:
            return self.entries[key]
        self.entries[key] = value
        return None

    def get(self, key):
        return self.entries.get(key)

    def replace_if_same(self, key, old, new):
        if self.entries.get(key) != old:
            return False
        self.entries[key] = new
        return True

    def values(self, predicate):
        attribute = predicate.attribute
        assert (attribute,) in self.indexes.values(), f"a query on {attribute!r}, which no index covers"
        if isinstance(predicate, _BetweenPredicate):
            def matches(value):
                return predicate.from_ <= value <= predicate.to
        else:
            assert isinstance(predicate, _EqualPredicate)

            def matches(value):
                return value == predicate.value
        return [v for v in self.entries.values() if matches(orjson.loads(v.to_string())[attribute])]


class FakeQueue:
    def __init__(self):
        self.items: list[str] = []

    def offer(self, item):
        self.items.append(item)
        return True

    def add_all(self, items):
        self.items.extend(items)

    def peek(self):
        return self.items[0] if self.items else None


class FakeConnection:
    """Both services' connections to one fake cluster."""

    def __init__(self):
        self.objects: dict[tuple[str, str], object] = {}

    def client(self):
        return self

    def proxy(self, kind, name, *, blocking=True):
        return self.objects.setdefault((kind, name), FakeMap() if kind == "map" else FakeQueue())


def test_what_the_logging_store_writes_redelivery_reads_through_the_seq_index_the_store_created():
    cluster = FakeConnection()
    MessageLog(HazelcastMessageStore(cluster, "log"), "logging-2", clock=lambda: 5_000_000_000).record("u1", "Привіт")
    assert cluster.objects[("map", "log")].indexes == {SEQ_INDEX.name("log"): (SEQ_INDEX.attribute,)}
    redelivery = HazelcastRedelivery(cluster, "queue", "received", "log")
    assert redelivery.logged_between(0, 10**7) == [LoggedMessage("u1", "Привіт", "logging-2", 5_000_000)]
    assert redelivery.logged_between(5_000_001, 10**7) == []


def test_a_queue_item_the_facade_offers_is_what_the_messages_side_reads():
    cluster = FakeConnection()
    HazelcastQueue(cluster, "queue").offer("u1", "m")
    item = decode_queue_item(cluster.objects[("queue", "queue")].items[0])
    assert (item.uuid, item.msg) == ("u1", "m") and item.at > 0
    assert HazelcastRedelivery(cluster, "queue", "received", "log").queue_cleared_to() == item.at


def test_a_queue_item_without_a_time_says_nothing_has_left_the_queue():
    assert decode_queue_item('{"uuid": "u1", "msg": "m"}').at == 0
    assert decode_queue_item(encode_queue_item("u1", "m", at=7)).at == 7


def test_received_entries_are_read_back_per_copy_through_the_received_by_index():
    cluster = FakeConnection()
    inbox = HazelcastInbox(cluster, "queue", "received")
    received = cluster.proxy("map", "received")
    mine, theirs = ReceivedMessage("u1", "m", "messages-1", 2), ReceivedMessage("u2", "n", "messages-2", 1)
    for entry in (mine, theirs):
        received.put_if_absent(entry.uuid, HazelcastJsonValue(entry.to_text()))
    assert [ReceivedMessage.from_text(t) for t in inbox.received_as_json("messages-1")] == [mine]
    assert received.indexes == {RECEIVED_BY_INDEX.name("received"): (RECEIVED_BY_INDEX.attribute,)}


def test_entries_keep_their_json_field_names():
    assert LoggedMessage("u", "m", "logging-1", 1).to_json() == {"uuid": "u", "msg": "m", "logged_by": "logging-1",
                                                                "seq": 1}
    assert ReceivedMessage.from_text('{"uuid": "u", "msg": "m", "received_by": "messages-1", "seq": 1}') == \
        ReceivedMessage("u", "m", "messages-1", 1)


def test_a_queue_item_carries_the_request_id_when_it_has_one_and_reads_without_one():
    from lab_common.contracts import decode_queue_item, encode_queue_item

    with_id = decode_queue_item(encode_queue_item("u1", "m", at=5, request_id="r-1"))
    assert (with_id.uuid, with_id.at, with_id.request_id) == ("u1", 5, "r-1")
    assert decode_queue_item(encode_queue_item("u2", "m", at=5)).request_id is None
    assert decode_queue_item('{"uuid": "u3", "msg": "m"}').request_id is None  # an item from before


def test_logging_s_answer_is_one_typed_contract_over_http_and_grpc():
    """Logged is what POST /logging answers as JSON and what the gRPC Log reply carries; the facade's two
    clients build the same value from either."""
    from facade_service.adapters.grpc import logged
    from lab_common.proto import logging_pb2

    answer = Logged(LoggedMessage("u", "m", "logging-2", 7), duplicate=True, copy="logging-3")
    assert answer.to_json() == {"status": "duplicate", "copy": "logging-3", "uuid": "u", "msg": "m",
                                "logged_by": "logging-2", "seq": 7}
    assert Logged.from_json(answer.to_json()) == answer
    reply = logging_pb2.LogReply(uuid="u", msg="m", logged_by="logging-2", seq=7, duplicate=True, copy="logging-3")
    assert logged(reply) == answer
    assert sorted(LOGGED_ANSWER_SCHEMA["required"]) == sorted(answer.to_json())
    assert sorted(LOGGED_SCHEMA["required"]) == sorted(answer.entry.to_json())
