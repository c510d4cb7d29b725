"""In-memory fakes of the services' ports, for unit tests only."""

from __future__ import annotations

import io
import itertools
import time
from collections import deque
from collections.abc import Iterator

import orjson

from facade_service.service import FullListing, Listing
from lab_common.contracts import LoggedMessage, ReceivedMessage
from lab_common.errors import Unavailable
from logging_service.service import MessageLog, cut_page
from messages_service.service import Batch


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
    `fail_next` makes the next N batches raise like a lost cluster."""

    def __init__(self, cluster: FakeMessagesCluster | None = None):
        self.cluster = cluster or FakeMessagesCluster()
        self.fail_next = 0
        self._seq = 0

    def receive_batch(self, instance: str, max_items: int, wait_seconds: float) -> Batch:
        if self.fail_next:
            self.fail_next -= 1
            raise Unavailable("fake cluster is down")
        queue = self.cluster.queue
        taken = [queue.popleft() for _ in range(min(max_items, len(queue)))]
        recorded = []
        for item in taken:
            self._seq += 1
            recorded.append(ReceivedMessage(item["uuid"], item["msg"], instance, self._seq))
            self.cluster.received[item["uuid"]] = recorded[-1]
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

    def receive_batch(self, instance: str, max_items: int, wait_seconds: float) -> Batch:
        batch = self.batches.pop(0) if self.batches else Batch([], 0)
        if isinstance(batch, Exception):
            raise batch
        return batch

    def received_as_json(self, instance: str) -> list[str]:
        return []


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

    def log(self, uuid: str, msg: str, request_id: str | None = None, window: float = 0.0) -> dict:
        self.request_ids.append(request_id)
        self.windows.append(window)
        self._check()
        result = self._log.record(uuid, msg, request_id)
        return {"status": "stored" if result.created else "duplicate", "copy": "logging-1",
                **result.message.to_json()}

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
