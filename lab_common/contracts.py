"""What crosses processes, stated once: the queue item, the entries of the logging and received maps, the
Hazelcast object names and the indexes their readers rely on. Writers and readers import it from here.

The JSON field names are part of the contract: entries written by an older copy must still read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

# Default names of the Hazelcast objects; settings (and Consul KV) may name others.
LOGGING_MAP = "messages"  # the logging service's map: uuid -> LoggedMessage
MESSAGES_QUEUE = "messages-queue"  # QueueItem texts: the facade (and redelivery) -> the messages copies
RECEIVED_MAP = "received"  # uuid -> ReceivedMessage, for every messages copy
# In Kafka mode (docs/kafka.md) the QueueItem texts go through a topic instead, keyed by uuid, and the messages
# copies consume it as one consumer group.
MESSAGES_TOPIC = "messages"
MESSAGES_GROUP = "messages-service"
QUEUES = ("hazelcast", "kafka")  # the channel facade -> messages
LOGGING_STORES = ("hazelcast", "memory")  # where logging copies keep messages: the cluster's map, or each its own
NO_QUEUE = "none"  # the facade's choice in the lab's Tasks 1 and 3: it logs, and offers to no queue

# Quorum mode: members refuse writes unless this many of them are in touch (hazelcast/member.yaml's
# minimum-cluster-size, which the launcher turns on); a refusal costs a write nothing but a 503.
QUORUM = 2
CONSISTENCIES = ("available", "quorum")  # the members' split-brain protection: off, or QUORUM in touch
QUORUM_PROBE_MAP = "lab-quorum-probe"  # a service's /health deletes an absent key here to learn if writes pass again

FIRST_SEQ_MARK = "first-seq"  # in the logging map's meta map: no logged entry has a smaller seq
SCAN_MARK = "redelivery-scanned-to"  # in the received map's meta map: how far redelivery has scanned the log


# The gRPC transport (lab_common/proto/logging.proto): logging copies started with a gRPC port are found
# under this service name as host:port targets; in Consul they carry the tag.
GRPC_TAG = "grpc"


def grpc_service(service: str) -> str:
    """The name a service's gRPC face is found under, beside the service's own (its HTTP face)."""
    return f"{service}-grpc"


LOGGING_GRPC_SERVICE = grpc_service("logging-service")
TRANSPORTS = ("http", "grpc")  # how the facade may call logging's POST

REQUEST_ID_HEADER = "X-Request-Id"  # a POST's id: the facade passes it to logging and puts it in the queue item
MEMBER_METRICS_PORT_SHIFT = 4000  # member host:5701 answers /metrics (its JMX exporter) on host:9701


def member_metrics_address(member: str) -> str:
    """Where a member (host:port) serves its own statistics: the launcher starts its exporter there."""
    host, _, port = member.rpartition(":")
    return f"{host}:{int(port) + MEMBER_METRICS_PORT_SHIFT}"


def meta_map(map_name: str) -> str:
    """The map of marks kept beside a map."""
    return f"{map_name}-meta"


@dataclass(frozen=True)
class Index:
    """An index a map's readers query by; whoever writes the map creates it."""

    attribute: str
    sorted: bool  # sorted (range scans) or hash (equality)
    suffix: str

    def name(self, map_name: str) -> str:
        return f"{map_name}-{self.suffix}"


# On the logging map, created by the logging store: pages and redelivery read ranges of seq through it.
SEQ_INDEX = Index("seq", sorted=True, suffix="seq")
# On the received map, created by the messages copies: each copy reads what it received through it.
RECEIVED_BY_INDEX = Index("received_by", sorted=False, suffix="received-by")


@dataclass(frozen=True)
class QueueItem:
    """A message on its way to the messages copies. `at` is when it was offered (µs since the epoch):
    the queue is FIFO, so the head's `at` says that everything offered before it has left the queue."""

    uuid: str
    msg: str
    at: int = 0  # 0: written without a time
    request_id: str | None = None  # the X-Request-Id of the POST that queued it (none when offered again)


def encode_queue_item(uuid: str, msg: str, at: int | None = None, request_id: str | None = None) -> str:
    """The item's text, stamped with now unless `at` is given."""
    item = {"uuid": uuid, "msg": msg, "at": time.time_ns() // 1000 if at is None else at}
    if request_id is not None:
        item["request_id"] = request_id
    return orjson.dumps(item).decode()


def decode_queue_item(text: str) -> QueueItem:
    data = orjson.loads(text)
    return QueueItem(data["uuid"], data["msg"], data.get("at", 0), data.get("request_id"))


@dataclass(frozen=True)
class LoggedMessage:
    """An entry of the logging map. `seq` (µs since the epoch, exact below 2**53) orders the log."""

    uuid: str
    msg: str
    logged_by: str
    seq: int

    def to_json(self) -> dict:
        return {"uuid": self.uuid, "msg": self.msg, "logged_by": self.logged_by, "seq": self.seq}

    def to_text(self) -> str:
        return orjson.dumps(self.to_json()).decode()

    @classmethod
    def from_text(cls, text: str) -> LoggedMessage:
        return cls.from_json(orjson.loads(text))

    @classmethod
    def from_json(cls, data: dict) -> LoggedMessage:
        return cls(data["uuid"], data["msg"], data["logged_by"], data["seq"])


# The JSON Schema of LoggedMessage.to_json(), for the OpenAPI documents of every service that answers it
LOGGED_SCHEMA = {"type": "object", "required": ["uuid", "msg", "logged_by", "seq"],
                 "properties": {"uuid": {"type": "string"}, "msg": {"type": "string"},
                                "logged_by": {"type": "string"}, "seq": {"type": "integer"}}}


@dataclass(frozen=True)
class Logged:
    """What logging answers a write, over HTTP (POST /logging's JSON) and over gRPC (LogReply) alike: the entry
    as the map holds it, whether it was there already (the uuid logged before: a duplicate) and the copy that
    answered."""

    entry: LoggedMessage
    duplicate: bool
    copy: str

    def to_json(self) -> dict:
        return {"status": "duplicate" if self.duplicate else "stored", "copy": self.copy, **self.entry.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> Logged:
        """Raises KeyError, TypeError or ValueError for an answer that is not one."""
        if data["status"] not in ("stored", "duplicate"):
            raise ValueError(f"status {data['status']!r} is neither stored nor duplicate")
        return cls(LoggedMessage.from_json(data), data["status"] == "duplicate", data["copy"])


LOGGED_ANSWER_SCHEMA = {"type": "object", "required": ["status", "copy", *LOGGED_SCHEMA["required"]],
                        "properties": {"status": {"enum": ["stored", "duplicate"]}, "copy": {"type": "string"},
                                       **LOGGED_SCHEMA["properties"]}}


@dataclass(frozen=True)
class ReceivedMessage:
    """An entry of the received map: which messages copy received the message."""

    uuid: str
    msg: str
    received_by: str
    seq: int

    def to_json(self) -> dict:
        return {"uuid": self.uuid, "msg": self.msg, "received_by": self.received_by, "seq": self.seq}

    def to_text(self) -> str:
        return orjson.dumps(self.to_json()).decode()

    @classmethod
    def from_text(cls, text: str) -> ReceivedMessage:
        data = orjson.loads(text)
        return cls(data["uuid"], data["msg"], data["received_by"], data["seq"])
