import json
import threading
import time

import pytest
from hazelcast.errors import TargetDisconnectedError

import hazelcast
from lab_common.contracts import ReceivedMessage, encode_queue_item
from logging_service.adapters.hazelcast import HazelcastMessageStore
from logging_service.service import MessageLog
from messages_service.adapters.hazelcast import HazelcastInbox, HazelcastRedelivery, ReceivedMap, Recorded
from messages_service.adapters.journal_file import FileJournal
from messages_service.consumer import QueueConsumer
from messages_service.redelivery import Redelivery
from messages_service.service import NotCommitted
from tests.helpers import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def names(unique_name):
    return {"queue_name": f"q-{unique_name}", "received_map": f"r-{unique_name}", "logging_map": f"l-{unique_name}"}


def offer(connection, names, items, *, logged=True):
    """What the facade does for each (uuid, msg): log it (unless told otherwise) and queue it."""
    queue = connection.client().get_queue(names["queue_name"]).blocking()
    if logged:
        log_messages(connection, names, items)
    for uuid, msg in items:
        assert queue.offer(encode_queue_item(uuid, msg))


def received_by(inbox, instance):
    """What GET /messages of that copy answers, decoded."""
    return [ReceivedMessage.from_text(text) for text in inbox.received_as_json(instance)]


def inbox_on(connection, names) -> HazelcastInbox:
    return HazelcastInbox(connection, names["queue_name"], names["received_map"])


def log_messages(connection, names, items):
    log = MessageLog(HazelcastMessageStore(connection, names["logging_map"]), "logging-1")
    for uuid, msg in items:
        log.record(uuid, msg)


def test_two_consumers_take_every_item_exactly_once_and_their_journals_together_hold_each_once(
        connect, names, tmp_path):
    producer = connect()
    offer(producer, names, [(f"u{i}", f"msg{i}") for i in range(200)])
    inboxes = [inbox_on(connect(), names) for _ in range(2)]
    journals = [FileJournal(tmp_path / f"messages-{i + 1}.jsonl") for i in range(2)]
    consumers = [QueueConsumer(inbox, f"messages-{i + 1}", journal=journals[i], batch=10, poll_seconds=0.2,
                               threads=3).start() for i, inbox in enumerate(inboxes)]
    try:
        def all_taken():  # counted by the consumers themselves: an item taken twice would count twice
            assert sum(c.counts.taken for c in consumers) >= 200
        eventually(all_taken, timeout=60)
    finally:
        for consumer in consumers:
            consumer.stop()
    counts = [c.counts for c in consumers]
    assert sum(c.taken for c in counts) == 200, counts  # every item taken by one committed transaction, once
    assert sum(c.received for c in counts) == 200, counts  # and recorded once, by one copy
    got = received_by(inboxes[0], "messages-1") + received_by(inboxes[0], "messages-2")
    assert sorted(m.uuid for m in got) == sorted(f"u{i}" for i in range(200))
    assert producer.client().get_queue(names["queue_name"]).blocking().size() == 0
    journaled = [json.loads(text) for journal in journals for text in journal.page(0, 1000)]
    assert sorted(e["uuid"] for e in journaled) == sorted(f"u{i}" for i in range(200))  # each once, in all
    holders = {m.uuid: m.received_by for m in got}
    assert all(holders[e["uuid"]] == e["copy"] for e in journaled)


def test_a_uuid_offered_twice_is_received_once(connect, names):
    connection = connect()
    offer(connection, names, [("dup", "a"), ("dup", "a"), ("other", "b")])
    inbox = inbox_on(connection, names)
    batch = inbox.receive_batch("messages-1", 10, 1.0)
    assert sorted(m.uuid for m in batch.recorded) == ["dup", "other"] and batch.taken == 3
    assert len(received_by(inbox, "messages-1")) == 2


def test_a_uuid_taken_again_by_another_copy_is_dropped_and_the_first_record_stands(connect, names):
    connection = connect()
    offer(connection, names, [("dup", "first")])
    inbox = inbox_on(connection, names)
    first = inbox.receive_batch("messages-1", 10, 1.0)
    # queued again later (as redelivery does) and with another text, so that a record written over would show
    offer(connection, names, [("dup", "second")], logged=False)
    again = inbox_on(connect(), names).receive_batch("messages-2", 10, 1.0)
    assert [m.uuid for m in first.recorded] == ["dup"]
    assert again.recorded == [] and again.taken == 1
    assert [(m.uuid, m.msg) for m in received_by(inbox, "messages-1")] == [("dup", "first")]
    assert received_by(inbox, "messages-2") == []


def test_a_poll_not_committed_goes_back_when_the_consumer_dies(cluster_settings, connect, names):
    producer = connect()
    offer(producer, names, [("u1", "survives")])
    polled = []

    def consumer_that_dies_before_commit():
        dying = hazelcast.HazelcastClient(cluster_name=cluster_settings.hz_cluster_name,
                                          cluster_members=list(cluster_settings.hz_members),
                                          cluster_connect_timeout=10, invocation_timeout=5)
        transaction = dying.new_transaction(timeout=60)
        transaction.begin()
        polled.append(json.loads(transaction.get_queue(names["queue_name"]).poll(1))["uuid"])
        dying.shutdown()  # gone between poll and commit

    # a transaction belongs to its thread: run the doomed consumer in one of its own
    thread = threading.Thread(target=consumer_that_dies_before_commit)
    thread.start()
    thread.join(30)
    assert polled == ["u1"]

    inbox = inbox_on(producer, names)

    def taken_again():
        batch = inbox.receive_batch("messages-2", 10, 0.5)
        assert [m.msg for m in batch.recorded] == ["survives"]
    eventually(taken_again, timeout=30)


def test_a_batch_not_yet_committed_holds_no_lock_on_what_it_recorded(connect, names):
    """A consumer transaction stranded between recording and committing (its members killed) must not keep
    the received map's keys locked: redelivered copies of those messages could never be recorded."""
    connection = connect()
    offer(connection, names, [("u1", "held")])
    inbox = inbox_on(connection, names)
    at_commit, release = threading.Event(), threading.Event()
    real_new_transaction = connection.client().new_transaction

    def transaction_that_waits_at_commit(**options):
        transaction = real_new_transaction(**options)
        commit = transaction.commit

        def waiting_commit():
            at_commit.set()
            release.wait(30)
            commit()
        transaction.commit = waiting_commit
        return transaction

    connection.client().new_transaction = transaction_that_waits_at_commit
    batches = []
    consumer = threading.Thread(target=lambda: batches.append(inbox.receive_batch("messages-1", 10, 1.0)))
    consumer.start()
    try:
        assert at_commit.wait(30)
        received = connection.client().get_map(names["received_map"]).blocking()
        assert not received.is_locked("u1")
        assert ReceivedMessage.from_text(received.get("u1").to_string()).received_by == "messages-1"
    finally:
        release.set()
        consumer.join(30)
        connection.client().new_transaction = real_new_transaction
    assert [m.uuid for m in batches[0].recorded] == ["u1"]


def test_a_failed_commit_names_what_was_recorded_before_it_and_the_items_come_back(connect, names):
    connection = connect()
    offer(connection, names, [("u1", "kept")])
    inbox = inbox_on(connection, names)
    real_new_transaction = connection.client().new_transaction

    def transaction_whose_commit_fails(**options):
        transaction = real_new_transaction(**options)

        def commit():
            raise TargetDisconnectedError("its member left at the commit")
        transaction.commit = commit
        return transaction

    connection.client().new_transaction = transaction_whose_commit_fails
    try:
        with pytest.raises(NotCommitted) as failed:
            inbox.receive_batch("messages-1", 10, 1.0)
    finally:
        connection.client().new_transaction = real_new_transaction
    assert [m.uuid for m in failed.value.recorded] == ["u1"] and failed.value.unanswered == 0
    assert [m.msg for m in received_by(inbox, "messages-1")] == ["kept"]
    again = inbox.receive_batch("messages-2", 10, 5.0)
    assert (again.recorded, again.taken) == ([], 1)  # back on the queue, and dropped: received already


def test_a_batch_whose_recording_failed_is_not_committed_and_its_items_come_back(connect, names, monkeypatch):
    connection = connect()
    offer(connection, names, [("u1", "kept"), ("u2", "also kept")])
    inbox = inbox_on(connection, names)
    real_record = ReceivedMap.record

    def record_failing_on_u2(self, instance, entries):  # u1 recorded, u2's write lost with its member
        done = real_record(self, instance, [e for e in entries if e.uuid != "u2"])
        return Recorded(done.recorded, 1, TargetDisconnectedError("its member left before answering"))

    monkeypatch.setattr(ReceivedMap, "record", record_failing_on_u2)
    with pytest.raises(NotCommitted) as failed:
        inbox.receive_batch("messages-1", 10, 1.0)
    monkeypatch.undo()
    assert [m.uuid for m in failed.value.recorded] == ["u1"] and failed.value.unanswered == 1
    again = inbox.receive_batch("messages-2", 10, 5.0)  # both back on the queue: u1 dropped, u2 recorded now
    assert (again.taken, [m.uuid for m in again.recorded]) == (2, ["u2"])
    assert [m.uuid for m in received_by(inbox, "messages-2")] == ["u2"]


def test_a_batch_tells_the_items_redelivery_offered_again_by_their_missing_request_id(connect, names):
    connection = connect()
    queue = connection.client().get_queue(names["queue_name"]).blocking()
    queue.offer(encode_queue_item("posted", "1", request_id="trace-1"))
    queue.offer(encode_queue_item("offered-again", "2"))
    batch = inbox_on(connection, names).receive_batch("messages-1", 10, 1.0)
    assert (batch.taken, batch.redelivered, batch.request_ids) == (2, 1, {"posted": "trace-1"})


def test_what_a_copy_received_survives_its_restart(connect, names):
    first_life = connect()
    offer(first_life, names, [("u1", "kept")])
    inbox_on(first_life, names).receive_batch("messages-1", 10, 1.0)
    first_life.close()
    second_life = inbox_on(connect(), names)
    assert [m.msg for m in received_by(second_life, "messages-1")] == ["kept"]


def test_consumers_of_other_copies_see_only_their_own_messages(connect, names):
    connection = connect()
    offer(connection, names, [("a", "1")])
    inbox = inbox_on(connection, names)
    inbox.receive_batch("messages-1", 10, 1.0)
    assert received_by(inbox, "messages-2") == []


def test_concurrent_producers_and_a_consumer_lose_nothing(connect, names, tmp_path):
    producers = [connect() for _ in range(2)]
    threads = [threading.Thread(target=offer, args=(p, names, [(f"p{k}-{i}", "m") for i in range(100)]))
               for k, p in enumerate(producers)]
    for t in threads:
        t.start()
    inbox = inbox_on(connect(), names)
    consumer = QueueConsumer(inbox, "messages-1", journal=FileJournal(tmp_path / "messages-1.jsonl"), batch=20,
                             poll_seconds=0.2).start()
    try:
        for t in threads:
            t.join(30)
        eventually(lambda: len(received_by(inbox, "messages-1")) == 200, timeout=60)
    finally:
        consumer.stop()


def test_what_was_logged_but_never_queued_is_offered_again_until_a_copy_receives_it(connect, names):
    connection = connect()
    log_messages(connection, names, [(f"u{i}", f"msg{i}") for i in range(5)])  # only u0 and u1 are queued
    offer(connection, names, [("u0", "msg0"), ("u1", "msg1")], logged=False)
    inbox = inbox_on(connection, names)
    assert len(inbox.receive_batch("messages-1", 10, 1.0).recorded) == 2

    redelivery = Redelivery(HazelcastRedelivery(connection, **names), grace=0, horizon=60)
    assert redelivery.step() == 3
    received = inbox.receive_batch("messages-2", 10, 1.0).recorded
    assert sorted(m.uuid for m in received) == ["u2", "u3", "u4"]
    assert redelivery.step() == 0
    assert redelivery.outstanding == 0
    assert sorted(m.uuid for m in received_by(inbox, "messages-1") + received_by(inbox, "messages-2")) == \
        [f"u{i}" for i in range(5)]


def test_the_redelivery_mark_is_shared_and_only_moves_forward(connect, names):
    first, second = (HazelcastRedelivery(connect(), **names) for _ in range(2))
    assert first.scan_mark() is None
    first.save_scan_mark(2_000)
    second.save_scan_mark(1_000)  # a copy that is behind does not pull the mark back
    assert second.scan_mark() == 2_000
    second.save_scan_mark(3_000)
    assert first.scan_mark() == 3_000


def test_the_queue_is_cleared_to_its_head_items_offer_time_or_to_now_when_empty(connect, names):
    connection = connect()
    inbox, redelivery = inbox_on(connection, names), HazelcastRedelivery(connection, **names)
    before = time.time_ns() // 1000
    assert before <= redelivery.queue_cleared_to() <= time.time_ns() // 1000
    queue = connection.client().get_queue(names["queue_name"]).blocking()
    queue.offer(encode_queue_item("a", "1", at=1_000))
    queue.offer(encode_queue_item("b", "2", at=2_000))
    assert redelivery.queue_cleared_to() == 1_000
    inbox.receive_batch("messages-1", 1, 1.0)
    assert redelivery.queue_cleared_to() == 2_000
