"""The Hazelcast adapters of messages-service's ports: the inbox (a transaction polls the queue, the batch is
recorded into the received map and journaled, then the polls are committed; uncommitted polls go back to the
queue) and what redelivery reads and writes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson
from hazelcast.core import HazelcastJsonValue
from hazelcast.errors import HazelcastError
from hazelcast.predicate import between, equal

from lab_common import metrics
from lab_common.cluster import ClusterConnection, add_index, answer_within, move_mark, refused_by_quorum
from lab_common.contracts import (
    RECEIVED_BY_INDEX,
    SCAN_MARK,
    SEQ_INDEX,
    LoggedMessage,
    QueueItem,
    ReceivedMessage,
    decode_queue_item,
    encode_queue_item,
    meta_map,
)
from lab_common.errors import NoQuorum, Unavailable
from messages_service.service import Batch, BeforeCommit, NotCommitted

TRANSACTION_TIMEOUT = 8.0  # short: a transaction stranded by a dying member holds its consumer until then
REQUEUE_CHUNK = 500  # items per add_all

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recorded:
    """What recording a batch into the received map did: the messages newly recorded as this copy's, the
    writes that got no answer (written or not, nobody knows), and the first failure, if any."""

    recorded: list[ReceivedMessage]
    unanswered: int
    failure: HazelcastError | None


class ReceivedMap:
    """The received map as every inbox uses it, whatever the channel: records a batch (a uuid received
    before is dropped) and reads back what a copy received."""

    def __init__(self, connection: ClusterConnection, received_map: str):
        self._connection = connection
        self._received_map = received_map
        self._indexed_client = None

    def record(self, instance: str, entries: list[QueueItem]) -> Recorded:
        """Each entry with put_if_absent by uuid, all sent at once; every answer is awaited (at most the
        operation timeout each), so a failure still tells what was recorded. Raises only for a lost client."""
        received = self._connection.proxy("map", self._received_map, blocking=False)
        pending = []
        for entry in entries:
            message = ReceivedMessage(entry.uuid, entry.msg, received_by=instance, seq=time.time_ns() // 1000)
            record = message.to_text()
            pending.append((message, record, received.put_if_absent(message.uuid, HazelcastJsonValue(record))))
        recorded, unanswered, failure = [], 0, None
        for message, record, answer in pending:
            try:
                found = answer_within(answer, self._connection.operation_timeout, "put_if_absent")
                # the very record this put wrote (its seq is this put's own): the member that wrote it died before
                # answering, and the put, carried out again, found it
                if found is None or found.to_string() == record:
                    recorded.append(message)
            except HazelcastError as err:
                unanswered += 1
                failure = failure or err
        return Recorded(recorded, unanswered, failure)

    def received_as_json(self, instance: str) -> list[str]:
        client = self._connection.client()
        received = self._connection.proxy("map", self._received_map)
        try:
            if self._indexed_client is not client and add_index(received, self._received_map, RECEIVED_BY_INDEX):
                self._indexed_client = client  # refused (quorum lost): the read goes on, the index comes later
            with metrics.hazelcast_operation("map.values_received_by"):
                values = received.values(equal(RECEIVED_BY_INDEX.attribute, instance))
            texts = [v.to_string() for v in values]
        except HazelcastError as err:
            raise Unavailable(f"cannot read what {instance} received: {type(err).__name__}") from err
        return _in_seq_order(texts)  # the cluster's answer is gone by now


class HazelcastInbox:
    """The consumer's port: a transaction takes from the queue; what it took is recorded into the received
    map before the take is committed."""

    def __init__(self, connection: ClusterConnection, queue_name: str, received_map: str):
        self._connection = connection
        self._queue_name = queue_name
        self._received = ReceivedMap(connection, received_map)

    def receive_batch(self, instance: str, max_items: int, wait_seconds: float,
                      before_commit: BeforeCommit | None = None) -> Batch:
        started = time.perf_counter()
        try:
            batch = self._receive_batch(instance, max_items, wait_seconds, before_commit)
        except Unavailable:
            metrics.record_hazelcast_error("queue.transaction")
            raise
        if batch.taken:  # an empty one is mostly the poll's wait
            metrics.record_hazelcast("queue.transaction", time.perf_counter() - started)
        return batch

    def _receive_batch(self, instance: str, max_items: int, wait_seconds: float,
                       before_commit: BeforeCommit | None) -> Batch:
        client = self._connection.client()
        transaction = client.new_transaction(timeout=TRANSACTION_TIMEOUT)
        entries, recorded, unanswered = [], [], 0
        try:
            transaction.begin()
            queue = transaction.get_queue(self._queue_name)
            item = queue.poll(wait_seconds)
            while item is not None:
                entries.append(decode_queue_item(item))
                if len(entries) >= max_items:
                    break
                item = queue.poll(0)
            # Recorded before the commit and outside the transaction: put_if_absent by uuid makes a record
            # idempotent (a poll that goes back to the queue is dropped when taken again), and a plain write
            # holds no key lock that a transaction stranded by a dying member could keep for good.
            outcome = self._received.record(instance, entries)
            recorded, unanswered = outcome.recorded, outcome.unanswered
            if before_commit is not None:
                before_commit(recorded)
            if outcome.failure is not None:
                raise outcome.failure
            transaction.commit()
        except HazelcastError as err:
            if not _rolled_back(transaction):
                # stranded (its coordinating member is gone): the items it took stay reserved for as long
                # as this client lives; a new client makes the members put them back
                self._connection.start_over(f"a queue transaction could not be rolled back ({type(err).__name__})")
            why = f"{type(err).__name__}: {err}"
            if refused_by_quorum(err):  # rolled back: what it took is on the queue again, for when quorum returns
                self._connection.quorum.refused()
                why = NoQuorum.text
            raise NotCommitted(f"queue transaction failed: {why}", recorded, unanswered, request_ids(entries)) from err
        except BaseException:
            _rolled_back(transaction)
            raise
        return Batch(recorded, len(entries), request_ids(entries), sum(1 for e in entries if not e.request_id))

    def received_as_json(self, instance: str) -> list[str]:
        return self._received.received_as_json(instance)


class RedeliveryMaps:
    """What redelivery reads in the cluster whatever the channel: the logging map, the received map, and its
    scan mark."""

    def __init__(self, connection: ClusterConnection, received_map: str, logging_map: str):
        self._connection = connection
        self._received_map = received_map
        self._logging_map = logging_map
        self._meta_map = meta_map(received_map)

    def logged_between(self, from_seq: int, to_seq: int) -> list[LoggedMessage]:
        """Read through the logging store's SEQ_INDEX."""
        try:
            logged_map = self._connection.proxy("map", self._logging_map)
            with metrics.hazelcast_operation("map.values_range"):
                logged = logged_map.values(between(SEQ_INDEX.attribute, from_seq, to_seq))
        except HazelcastError as err:
            raise Unavailable(f"cannot read the logging map: {type(err).__name__}") from err
        return [LoggedMessage.from_text(v.to_string()) for v in logged]

    def received_among(self, uuids: list[str]) -> set[str]:
        try:
            with metrics.hazelcast_operation("map.get_all"):
                return set(self._connection.proxy("map", self._received_map).get_all(uuids))
        except HazelcastError as err:
            raise Unavailable(f"cannot read what was received: {type(err).__name__}") from err

    def scan_mark(self) -> int | None:
        try:
            return self._connection.proxy("map", self._meta_map).get(SCAN_MARK)
        except HazelcastError as err:
            raise Unavailable(f"cannot read the redelivery mark: {type(err).__name__}") from err

    def save_scan_mark(self, seq: int) -> None:
        """Moves the shared mark forward, never back (two copies scan side by side)."""
        try:
            move_mark(self._connection.proxy("map", self._meta_map), SCAN_MARK, seq, forward=True)
        except HazelcastError as err:
            raise self._connection.unavailable(err, f"cannot save the redelivery mark: {type(err).__name__}") from err


class HazelcastRedelivery(RedeliveryMaps):
    """Redelivery's port in Hazelcast mode: the maps, and the queue (its head, and offers made again)."""

    def __init__(self, connection: ClusterConnection, queue_name: str, received_map: str, logging_map: str):
        super().__init__(connection, received_map, logging_map)
        self._queue_name = queue_name

    def requeue(self, messages: list[tuple[str, str]]) -> None:
        queue = self._connection.proxy("queue", self._queue_name)
        try:
            for start in range(0, len(messages), REQUEUE_CHUNK):
                with metrics.hazelcast_operation("queue.add_all"):
                    queue.add_all([encode_queue_item(uuid, msg) for uuid, msg in messages[start:start + REQUEUE_CHUNK]])
        except HazelcastError as err:
            raise self._connection.unavailable(
                err, f"cannot queue {len(messages)} message(s) again: {type(err).__name__}") from err

    def queue_cleared_to(self) -> int:
        try:
            head = self._connection.proxy("queue", self._queue_name).peek()
        except HazelcastError as err:
            raise Unavailable(f"cannot look at the queue's head: {type(err).__name__}") from err
        now = time.time_ns() // 1000
        if head is None:
            return now
        return decode_queue_item(head).at  # an item without a time (0): assume nothing has left


def request_ids(entries: list[QueueItem]) -> dict[str, str]:
    """uuid -> the id of the POST that queued it, for the entries that carry one."""
    return {e.uuid: e.request_id for e in entries if e.request_id}


def _rolled_back(transaction) -> bool:
    try:
        transaction.rollback()
    except Exception:  # gone with its connection or its coordinating member
        return False
    return True


def _in_seq_order(texts: list[str]) -> list[str]:
    """JSON entries as stored (each with a "seq"), sorted by seq and kept as text: sorting 100k of them
    this way holds one int per entry, not a decoded object."""
    return sorted(texts, key=lambda text: orjson.loads(text)[SEQ_INDEX.attribute])
