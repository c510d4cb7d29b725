"""The facade's service layer: post a message (log and queue it) and read the merged view."""

from __future__ import annotations

import io
import logging
import uuid as uuid_module
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import ijson
import orjson

from lab_common.errors import Conflict, Unavailable

log = logging.getLogger(__name__)

PIECE_BYTES = 1 << 20  # a listing passed on as it came goes out in pieces this large
MERGED_CHUNK = 1000  # merged entries per piece written


@dataclass(frozen=True)
class FullListing:
    """A service's whole listing, `{"copy", "count", "messages": [...]}`, kept as the bytes it answered
    and read piece by piece: 100k messages never become 100k objects at once."""

    url: str
    data: bytes

    def field(self, name: str):
        """A top-level value (found without reading further when it comes before "messages")."""
        return next(ijson.items(io.BytesIO(self.data), name), None)

    def messages(self) -> Iterator[dict]:
        return ijson.items(io.BytesIO(self.data), "messages.item")

    def uuids(self) -> set[str]:
        return set(ijson.items(io.BytesIO(self.data), "messages.item.uuid"))

    def with_url(self) -> Iterator[bytes]:
        """The listing as it came with "url" added in front: `{"url": ..., "copy": ..., ...}`."""
        yield b'{"url":' + orjson.dumps(self.url) + b","
        for start in range(self.data.index(b"{") + 1, len(self.data), PIECE_BYTES):
            yield self.data[start:start + PIECE_BYTES]


@dataclass(frozen=True)
class Listing:
    copy: str
    url: str
    messages: list[dict]
    next: str | None = None  # the cursor of the following page, for paged reads


class LoggingPort(Protocol):
    def log(self, uuid: str, msg: str) -> dict:
        """Store {uuid, msg} in some logging copy; answers the entry as stored (with logged_by)."""

    def messages(self) -> FullListing: ...

    def page(self, limit: int, after: str | None) -> Listing: ...


class MessagesPort(Protocol):
    def messages(self) -> FullListing: ...


class QueuePort(Protocol):
    def offer(self, uuid: str, msg: str) -> Callable[[], None]:
        """Send {uuid, msg} to the queue; answers a function that waits until the queue has it (and
        raises Unavailable if it never will)."""


@dataclass(frozen=True)
class Posted:
    uuid: str
    msg: str
    logged_by: str
    replayed: bool


class Facade:
    def __init__(self, logging: LoggingPort, messages: MessagesPort, queue: QueuePort):
        self._logging = logging
        self._messages = messages
        self._queue = queue

    def post(self, msg: str, idempotency_key: str | None = None) -> Posted:
        """Log and queue at the same time. Both must succeed before the caller hears success. A
        consumer delivers a queued message only once the log holds it (with the same text), so a POST
        whose logging fails never delivers its message. A retry with the same idempotency key reuses
        the uuid, so logging and the consumers store it once."""
        uuid = idempotency_key or str(uuid_module.uuid4())
        queued = self._queue.offer(uuid, msg)
        stored = self._logging.log(uuid, msg)
        if stored["msg"] != msg:
            raise Conflict(f"idempotency key {uuid!r} was already used for a different message")
        queued()
        return Posted(uuid=uuid, msg=msg, logged_by=stored["logged_by"], replayed=stored.get("status") == "duplicate")

    def read_page(self, limit: int, after: str | None) -> dict:
        """One page of the logged messages, for clients that must not pull everything at once."""
        logged = self._logging.page(limit, after)
        return {"count": len(logged.messages), "messages": logged.messages, "next": logged.next,
                "logging": {"copy": logged.copy, "url": logged.url}}

    def read(self) -> Iterator[bytes]:
        """Everything logged, each marked with the messages copy that received it (if the one asked
        did), then both listings as they came: `{"count", "merged", "logging", "messages"}` as JSON
        in pieces. Both services are asked before the first piece, so a failure is still a 503; the
        answer is then written out without holding it, or an object per message, in memory."""
        logged = self._logging.messages()
        try:
            received = self._messages.messages()
        except Unavailable as err:
            log.warning("GET without messages: %s", err.message)
            received, received_uuids, messages_error = None, set(), err.message
        else:
            received_uuids, messages_error = received.uuids(), None
        count = logged.field("count")
        if not isinstance(count, int):
            count = sum(1 for _ in logged.messages())
        received_copy = received.field("copy") if received else None

        def merged() -> Iterator[bytes]:
            chunk, first = [], True
            for m in logged.messages():
                chunk.append({"uuid": m["uuid"], "msg": m["msg"], "logged_by": m.get("logged_by"),
                              "received_by": received_copy if m["uuid"] in received_uuids else None})
                if len(chunk) == MERGED_CHUNK:
                    yield (b"" if first else b",") + orjson.dumps(chunk)[1:-1]
                    chunk, first = [], False
            if chunk:
                yield (b"" if first else b",") + orjson.dumps(chunk)[1:-1]

        def document() -> Iterator[bytes]:
            yield b'{"count":' + str(count).encode() + b',"merged":['
            yield from merged()
            yield b'],"logging":'
            yield from logged.with_url()
            yield b',"messages":'
            if received:
                yield from received.with_url()
            else:
                yield orjson.dumps({"copy": None, "error": messages_error})
            yield b"}"

        return document()
