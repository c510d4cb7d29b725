"""In-memory fakes of the services' ports, for unit tests only."""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from types import SimpleNamespace

import orjson
from hazelcast.errors import HazelcastError

from facade_service.service import FullListing, Listing
from lab_common.contracts import Logged, LoggedMessage, ReceivedMessage
from lab_common.errors import Unavailable
from logging_service.service import MessageLog, cut_page
from messages_service.adapters.hazelcast import Recorded
from messages_service.service import Batch, BeforeCommit, JournalEntry, NotCommitted


class FakeMessageStore:
    def __init__(self):
        self.entries: dict[str, LoggedMessage] = {}
        self.available = True

    def _check(self):
        if not self.available:
            raise Unavailable("fake store is down")

    def add_if_absent(self, message: LoggedMessage) -> LoggedMessage | None:
        self._check()
        if message.uuid in self.entries:
            return self.entries[message.uuid]
        self.entries[message.uuid] = message
        return None

    def all_messages(self) -> list[LoggedMessage]:
        self._check()
        return sorted(self.entries.values(), key=lambda m: m.seq)

    def all_as_json(self) -> Iterator[list[str]]:
        texts = [m.to_text() for m in self.all_messages()]
        yield from (texts[start:start + 2] for start in range(0, len(texts), 2))  # in small pages

    def page(self, after_seq: int | None, limit: int) -> list[LoggedMessage]:
        return cut_page([m for m in self.all_messages() if after_seq is None or m.seq > after_seq], limit)


class FakeClock:
    """Seconds since the epoch, as the test sets them."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeMessagesCluster:
    """The queue, the received map and the logging map as messages-service sees them, shared by the fakes
    of both its ports. Queue items are dicts; offers made again are timed by `clock`."""

    def __init__(self):
        self.queue: deque[dict] = deque()
        self.received: dict[str, ReceivedMessage] = {}
        self.logged: list[LoggedMessage] = []
        self.mark: int | None = None  # the shared redelivery scan mark
        self.clock = time.time

    def offer_logged(self, uuid: str, msg: str, seq: int = 0) -> None:
        """What a successful POST leaves: the message in the log and on the queue."""
        self.logged.append(LoggedMessage(uuid, msg, "logging-1", seq))
        self.queue.append({"uuid": uuid, "msg": msg})


class FakeInbox:
    """The consumer's port over FakeMessagesCluster: every item it takes is written to the received map and
    answered as recorded. Dropping a uuid received before is HazelcastInbox's rule (`put_if_absent`),
    tested against real members in tests/integration/test_queue_consumer.py: this fake does not carry it.
    `fail_next` makes the next N batches raise like a lost cluster, `down` every batch until it is cleared;
    `failed` counts the batches that raised; `fail_commit_next` makes the next N record their items, call
    `before_commit`, then fail to commit (the items go back to the queue's head)."""

    def __init__(self, cluster: FakeMessagesCluster | None = None):
        self.cluster = cluster or FakeMessagesCluster()
        self.fail_next = 0
        self.down = False
        self.failed = 0
        self.fail_commit_next = 0
        self._seq = 0

    def receive_batch(self, instance: str, max_items: int, wait_seconds: float,
                      before_commit: BeforeCommit | None = None) -> Batch:
        if self.down or self.fail_next:
            self.fail_next = max(0, self.fail_next - 1)
            self.failed += 1
            raise Unavailable("fake cluster is down")
        queue = self.cluster.queue
        taken = [queue.popleft() for _ in range(min(max_items, len(queue)))]
        recorded = []
        for item in taken:
            self._seq += 1
            recorded.append(ReceivedMessage(item["uuid"], item["msg"], instance, self._seq))
            self.cluster.received[item["uuid"]] = recorded[-1]
        if before_commit is not None:
            try:
                before_commit(recorded)
            except Exception:  # not committed: the items go back
                queue.extendleft(reversed(taken))
                raise
        if self.fail_commit_next:
            self.fail_commit_next -= 1
            queue.extendleft(reversed(taken))
            raise NotCommitted("fake commit failed", recorded)
        return Batch(recorded, len(taken), {item["uuid"]: item["request_id"] for item in taken
                                            if item.get("request_id")},
                     redelivered=sum(1 for item in taken if not item.get("request_id")))

    def received_by(self, instance: str) -> list[ReceivedMessage]:
        return sorted((m for m in self.cluster.received.values() if m.received_by == instance), key=lambda m: m.seq)

    def received_as_json(self, instance: str) -> list[str]:
        return [m.to_text() for m in self.received_by(instance)]


class BatchesInbox:
    """The consumer's port answering the batches it was given, one per call (raising those that are errors),
    then empty ones."""

    def __init__(self, *batches: Batch | Exception):
        self.batches = list(batches)

    def receive_batch(self, instance: str, max_items: int, wait_seconds: float,
                      before_commit: BeforeCommit | None = None) -> Batch:
        batch = self.batches.pop(0) if self.batches else Batch([], 0)
        if isinstance(batch, Exception):
            raise batch
        return batch

    def received_as_json(self, instance: str) -> list[str]:
        return []


class FakeJournal:
    """The journal in a list (its file adapter, messages_service.adapters.journal_file, has tests of its own);
    `fail` makes every append raise as a full disk would."""

    def __init__(self):
        self.entries: list[JournalEntry] = []
        self.fail = False

    def append(self, entries: Sequence[JournalEntry]) -> None:
        if self.fail:
            from messages_service.service import JournalUnavailable

            raise JournalUnavailable("fake disk is full")
        self.entries.extend(entries)

    def page(self, after: int, limit: int) -> list[str]:
        return [orjson.dumps(e.to_json()).decode() for e in self.entries[after:after + limit]]

    def pages(self) -> Iterator[list[str]]:
        yield self.page(0, len(self.entries))

    def uuids(self) -> list[str]:
        return [e.uuid for e in self.entries]


class FakeRedeliveryPort:
    def __init__(self, cluster: FakeMessagesCluster):
        self.cluster = cluster

    def logged_between(self, from_seq: int, to_seq: int) -> list[LoggedMessage]:
        return [e for e in self.cluster.logged if from_seq <= e.seq <= to_seq]

    def received_among(self, uuids: list[str]) -> set[str]:
        return {u for u in uuids if u in self.cluster.received}

    def requeue(self, messages: list[tuple[str, str]]) -> None:
        for uuid, msg in messages:
            self.cluster.queue.append({"uuid": uuid, "msg": msg, "at": int(self.cluster.clock() * 1e6)})

    def queue_cleared_to(self) -> int:
        queue = self.cluster.queue
        return queue[0].get("at", 0) if queue else int(self.cluster.clock() * 1e6)

    def scan_mark(self) -> int | None:
        return self.cluster.mark

    def save_scan_mark(self, seq: int) -> None:
        self.cluster.mark = max(seq, self.cluster.mark or 0)


def full_listing(instance: str, base_url: str, messages: list[dict]) -> FullListing:
    """A listing as a service answers it."""
    body = {"copy": instance, "count": len(messages), "messages": messages}
    return FullListing(base_url, io.BytesIO(orjson.dumps(body)))


class FakeLogging:
    """logging-service as the facade's client sees it: the real MessageLog (which answers a repeated uuid
    with the entry stored first) on an in-memory store, its answer shaped as POST /logging shapes it;
    `available = False` is no copy answering."""

    def __init__(self):
        self.store = FakeMessageStore()
        self.available = True
        self.request_ids: list[str | None] = []
        self.windows: list[float] = []
        self._log = MessageLog(self.store, "logging-1", clock=itertools.count(1_000, 1_000).__next__)

    def _check(self) -> None:
        if not self.available:
            raise Unavailable("no copy of logging-service answered")

    def log(self, uuid: str, msg: str, request_id: str | None = None, window: float = 0.0) -> Logged:
        self.request_ids.append(request_id)
        self.windows.append(window)
        self._check()
        result = self._log.record(uuid, msg, request_id)
        return Logged(result.message, duplicate=not result.created, copy="logging-1")

    def messages(self) -> FullListing:
        self._check()
        return full_listing("logging-1", "http://fake-logging", [m.to_json() for m in self.store.all_messages()])

    def page(self, limit: int, after: str | None) -> Listing:
        page = self._log.page(int(after) if after else None, limit)
        return Listing("logging-1", "http://fake-logging", [m.to_json() for m in page],
                       str(page[-1].seq) if len(page) >= limit else None)


class FakeQueue:
    def __init__(self):
        self.items: list[dict] = []
        self.available = True
        self.request_ids: list[str | None] = []

    def offer(self, uuid: str, msg: str, request_id: str | None = None) -> None:
        if not self.available:
            raise Unavailable("fake queue is down")
        self.items.append({"uuid": uuid, "msg": msg})
        self.request_ids.append(request_id)


class FakeMessages:
    """One messages copy's listing: `received`, as the test sets it (what a copy receives is the consumer's
    business, not the facade's)."""

    def __init__(self):
        self.received: list[dict] = []
        self.available = True

    def messages(self) -> FullListing:
        if not self.available:
            raise Unavailable("no copy of messages-service answered")
        return full_listing("messages-1", "http://fake-messages", self.received)


class FakeDiscovery:
    def __init__(self, addresses: dict[str, list[str]]):
        self.addresses_by_service = addresses
        self.invalidated: list[str] = []

    def addresses(self, service: str) -> list[str]:
        if service not in self.addresses_by_service:
            raise Unavailable(f"no copies of {service}")
        return self.addresses_by_service[service]

    def invalidate(self, service: str) -> None:
        self.invalidated.append(service)

    def status(self) -> dict:
        return {"source": "fake", "reachable": True}


# --- Kafka: confluent-kafka's clients as the adapters use them -------------------------------------------


class FakeKafkaProducer:
    """confluent_kafka.Producer as AcknowledgedProducer drives it: `produce` keeps the message; `poll` answers
    the delivery reports of what was produced with `outcome`: None (acknowledged), a KafkaError, or "silent"
    (no report ever: a client that hangs). `full` makes produce raise BufferError (its own queue is full)."""

    def __init__(self, outcome=None):
        self.outcome = outcome
        self.full = False
        self.produced: list[tuple[str, bytes, bytes]] = []
        self.flushed = False
        self._waiting: list = []
        self._lock = threading.Lock()

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery) -> None:
        if self.full:
            raise BufferError("Local: Queue full")
        with self._lock:
            self.produced.append((topic, key, value))
            self._waiting.append(on_delivery)

    def poll(self, timeout: float) -> int:
        with self._lock:
            waiting = []
            if not isinstance(self.outcome, str):  # KafkaError compares itself to error codes, not to text
                waiting, self._waiting = self._waiting, []
        for report in waiting:
            report(self.outcome, None)
        if not waiting:
            time.sleep(min(timeout, 0.01))
        return len(waiting)

    def flush(self, timeout: float = 0) -> int:
        self.flushed = True
        return 0

    def list_topics(self, topic=None, timeout=-1):
        raise NotImplementedError


class FakeKafkaMessage:
    """A record as a consumer's poll answers it."""

    def __init__(self, topic: str, partition: int, offset: int, value: str | None = None, error=None,
                 timestamp_ms: int = 0):
        self._topic, self._partition, self._offset = topic, partition, offset
        self._value = value.encode() if value is not None else None
        self._error = error
        self._timestamp_ms = timestamp_ms

    def topic(self): return self._topic  # noqa: E704
    def partition(self): return self._partition  # noqa: E704
    def offset(self): return self._offset  # noqa: E704
    def value(self): return self._value  # noqa: E704
    def error(self): return self._error  # noqa: E704
    def timestamp(self): return (1, self._timestamp_ms)  # noqa: E704


class FakeKafkaConsumer:
    """confluent_kafka.Consumer as KafkaInbox and KafkaRedelivery drive it: the topic's partitions are lists of
    item texts; `poll`/`consume` hand out records from each partition's position; `commit` keeps the
    committed offsets (or raises `commit_error`); `seek` moves a position back. Every call is appended to
    `events` so a test can tell what happened first."""

    def __init__(self, topic: str, partitions: dict[int, list[str]] | None = None):
        self.topic = topic
        self.partitions = partitions if partitions is not None else {0: [], 1: []}
        self.positions = dict.fromkeys(self.partitions, 0)
        self.committed_offsets: dict[int, int] = {}
        self.commit_error = None
        self.low = dict.fromkeys(self.partitions, 0)
        self.events: list[str] = []
        self.assigned: list = []
        self.subscribed: list[str] = []
        self.closed = False
        self._only: set[int] | None = None  # the partitions assigned by hand (assign), if any

    def subscribe(self, topics, on_assign=None, on_revoke=None, on_lost=None):
        from confluent_kafka import TopicPartition

        self.subscribed = list(topics)
        if on_assign:
            on_assign(self, [TopicPartition(self.topic, p) for p in self.partitions])

    def _next(self):
        for partition, items in self.partitions.items():
            if self._only is not None and partition not in self._only:
                continue
            offset = max(self.positions[partition], self.low[partition])
            if offset < len(items):
                self.positions[partition] = offset + 1
                return FakeKafkaMessage(self.topic, partition, offset, items[offset])
        return None

    def poll(self, timeout=None):
        return self._next()

    def consume(self, num_messages=1, timeout=-1):
        taken = []
        while len(taken) < num_messages and (message := self._next()) is not None:
            taken.append(message)
        return taken

    def commit(self, offsets=None, asynchronous=True):
        self.events.append("commit")
        if self.commit_error is not None:
            from confluent_kafka import KafkaException

            raise KafkaException(self.commit_error)
        for tp in offsets:
            self.committed_offsets[tp.partition] = tp.offset
        return offsets

    def seek(self, partition):
        self.events.append(f"seek {partition.partition}@{partition.offset}")
        self.positions[partition.partition] = partition.offset

    def committed(self, partitions, timeout=None):
        from confluent_kafka import OFFSET_INVALID, TopicPartition

        return [TopicPartition(self.topic, tp.partition, self.committed_offsets.get(tp.partition, OFFSET_INVALID))
                for tp in partitions]

    def position(self, partitions):
        from confluent_kafka import TopicPartition

        return [TopicPartition(self.topic, tp.partition, self.positions[tp.partition]) for tp in partitions]

    def get_watermark_offsets(self, partition, timeout=None, cached=False):
        return self.low[partition.partition], len(self.partitions[partition.partition])

    def list_topics(self, topic=None, timeout=-1):
        partitions = {p: SimpleNamespace(id=p, leader=1) for p in self.partitions}
        return SimpleNamespace(brokers={1: "127.0.0.1:9092"},
                               topics={self.topic: SimpleNamespace(partitions=partitions, error=None)})

    def assign(self, partitions):
        self.assigned = list(partitions)
        for tp in partitions:
            self.positions[tp.partition] = tp.offset
        self._only = {tp.partition for tp in partitions}

    def unassign(self):
        self.assigned = []
        self._only = None

    def close(self):
        self.closed = True


class FakeReceivedMap:
    """ReceivedMap's record on a dict: put_if_absent by uuid (a uuid recorded before is dropped); `fail_after`
    makes the write after that many fail, as a member going away mid-batch does."""

    def __init__(self, events: list[str] | None = None):
        self.entries: dict[str, ReceivedMessage] = {}
        self.fail_after: int | None = None
        self.events = events if events is not None else []
        self._seq = 0

    def record(self, instance: str, entries: list) -> Recorded:
        self.events.append(f"record {len(entries)}")
        recorded, unanswered, failure = [], 0, None
        for i, entry in enumerate(entries):
            if self.fail_after is not None and i >= self.fail_after:
                unanswered += 1
                failure = failure or HazelcastError("fake member went away")
                continue
            if entry.uuid in self.entries:
                continue
            self._seq += 1
            self.entries[entry.uuid] = ReceivedMessage(entry.uuid, entry.msg, instance, self._seq)
            recorded.append(self.entries[entry.uuid])
        return Recorded(recorded, unanswered, failure)

    def received_as_json(self, instance: str) -> list[str]:
        return [m.to_text() for m in self.entries.values() if m.received_by == instance]


class FakeStubMessages:
    """The messages copy of the lab's Task 1 as the facade's client sees it: the stub's own answer."""

    def messages(self) -> FullListing:
        from messages_service.stub import stub_answer

        return FullListing("http://fake-stub", io.BytesIO(orjson.dumps(stub_answer("messages-1"))))
