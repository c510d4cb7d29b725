"""The facade's service layer: post a message (log and queue it) and read the merged view."""

from __future__ import annotations

import logging
import uuid as uuid_module
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import ijson
import orjson

from facade_service.status import RecentPosts
from lab_common.contracts import Logged
from lab_common.errors import Conflict, Unavailable
from lab_common.logs import ERROR_PREFIX, clipped

log = logging.getLogger(__name__)

PIECE_BYTES = 1 << 16  # a listing passed on as it came goes out in pieces this large
MERGED_CHUNK = 1000  # merged entries per piece written
READERS = 8  # full reads whose messages listing can be under way at once (the default request threads)


@dataclass(frozen=True)
class FullListing:
    """A service's whole listing, `{"copy", "count", "messages": [...]}`, kept as the bytes it answered
    (in a file once large) and read piece by piece: 100k messages are never in memory at once. One
    reading at a time: each starts from the top of the file."""

    base_url: str
    file: BinaryIO

    def field(self, name: str):
        """A top-level value (found without reading further when it comes before "messages")."""
        return next(ijson.items(self._rewound(), name), None)

    def messages(self) -> Iterator[dict]:
        return ijson.items(self._rewound(), "messages.item")

    def uuids(self) -> set[str]:
        return set(ijson.items(self._rewound(), "messages.item.uuid"))

    def with_url(self) -> Iterator[bytes]:
        """The listing as it came with its base URL added in front: `{"url": ..., "copy": ..., ...}`."""
        head = self._rewound().read(PIECE_BYTES)
        yield b'{"url":' + orjson.dumps(self.base_url) + b","
        yield head[head.index(b"{") + 1:]
        while piece := self.file.read(PIECE_BYTES):
            yield piece

    def close(self) -> None:
        self.file.close()

    def _rewound(self) -> BinaryIO:
        self.file.seek(0)
        return self.file


@dataclass(frozen=True)
class Listing:
    instance: str  # the copy that answered, e.g. logging-2
    base_url: str
    messages: list[dict]
    next: str | None = None  # the cursor of the following page, for paged reads


class LoggingPort(Protocol):
    def log(self, uuid: str, msg: str, request_id: str | None = None, window: float = 0.0) -> Logged:
        """Store {uuid, msg} in some logging copy; answers the entry as stored and whether it was there
        before. Raises Unavailable when no copy took it within its attempts and `window` seconds."""

    def messages(self) -> FullListing: ...

    def page(self, limit: int, after: str | None) -> Listing: ...


class MessagesPort(Protocol):
    def messages(self) -> FullListing: ...


class QueuePort(Protocol):
    def offer(self, uuid: str, msg: str, request_id: str | None = None) -> None:
        """Put {uuid, msg} on the queue; raises Unavailable if the queue cannot take it."""


@dataclass(frozen=True)
class RetryWindow:
    """How long a POST keeps trying logging while no copy answers: `default` seconds, or what its client
    asks for, up to `most`."""

    default: float = 0.0
    most: float = 0.0

    def for_post(self, asked: float | None) -> float:
        return self.default if asked is None else min(asked, self.most)


@dataclass(frozen=True)
class Posted:
    uuid: str
    msg: str
    logged_by: str
    replayed: bool


class Facade:
    def __init__(self, logging: LoggingPort, messages: MessagesPort, queue: QueuePort,
                 recent: RecentPosts | None = None, retry_window: RetryWindow = RetryWindow()):
        self._logging = logging
        self.retry_window = retry_window
        self._messages = messages
        self._queue = queue
        self.recent = recent or RecentPosts()  # what the status page lists
        # A full read asks messages from one of these while it asks logging itself.
        self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="full-read")

    def post(self, msg: str, idempotency_key: str | None = None, request_id: str | None = None,
             wait: float | None = None) -> Posted:
        """Log, then queue: both must succeed before the caller hears success, and only what the log
        holds is ever queued (a POST whose logging fails delivers nothing). A retry with the same
        idempotency key reuses the uuid, so logging and the consumers store it once. `wait`: the seconds
        the client would rather wait for logging than hear 503 (see RetryWindow)."""
        uuid = idempotency_key or str(uuid_module.uuid4())
        logged = self._logging.log(uuid, msg, request_id, window=self.retry_window.for_post(wait))
        if logged.entry.msg != msg:
            raise Conflict(f"idempotency key {uuid!r} was already used for a different message")
        self._queue.offer(uuid, msg, request_id)
        self.recent.add(uuid, msg, logged.entry.logged_by)
        return Posted(uuid=uuid, msg=msg, logged_by=logged.entry.logged_by, replayed=logged.duplicate)

    def read_page(self, limit: int, after: str | None) -> dict:
        """One page of the logged messages, for clients that must not pull everything at once."""
        logged = self._logging.page(limit, after)
        return {"count": len(logged.messages), "messages": logged.messages, "next": logged.next,
                "logging": {"copy": logged.instance, "url": logged.base_url}}

    def read(self) -> Iterator[bytes]:
        """Everything logged, each marked with the messages copy that received it (if the one asked
        did), then both listings as they came: `{"count", "merged", "logging", "messages"}` as JSON
        in pieces. Both services are asked at once, and both have answered before the first piece,
        so a failure is still a 503; the answer is then written out without holding it, or an object
        per message, in memory."""
        asked = self._readers.submit(self._received)
        try:
            logged = self._logging.messages()
        except BaseException:
            asked.add_done_callback(_close_received)  # nobody will read it
            raise
        received = None
        try:
            received, messages_error = asked.result()
            received_uuids = received.uuids() if received else set()
            received_by = received.field("copy") if received else None
            count = logged.field("count")
        except BaseException:
            _close(logged, received)
            raise

        def merged() -> Iterator[bytes]:
            chunk, first = [], True
            for m in logged.messages():
                chunk.append({"uuid": m["uuid"], "msg": m["msg"], "logged_by": m.get("logged_by"),
                              "received_by": received_by if m["uuid"] in received_uuids else None})
                if len(chunk) == MERGED_CHUNK:
                    yield (b"" if first else b",") + orjson.dumps(chunk)[1:-1]
                    chunk, first = [], False
            if chunk:
                yield (b"" if first else b",") + orjson.dumps(chunk)[1:-1]

        def document() -> Iterator[bytes]:
            try:
                yield b'{"count":' + orjson.dumps(count) + b',"merged":['
                yield from merged()
                yield b'],"logging":'
                yield from logged.with_url()
                yield b',"messages":'
                if received:
                    yield from received.with_url()
                else:
                    yield orjson.dumps({"copy": None, "error": messages_error})
                yield b"}"
            finally:  # also when the client goes away mid-way
                _close(logged, received)

        return document()

    def _received(self) -> tuple[FullListing | None, str | None]:
        """The messages listing, or None and why when no copy answers (the GET goes on without it)."""
        try:
            return self._messages.messages(), None
        except Unavailable as err:
            log.warning("GET without messages: %s", clipped(err.message, ERROR_PREFIX))
            return None, err.message


def _close_received(done: Future) -> None:
    if done.exception() is None:
        _close(done.result()[0])


def _close(*listings: FullListing | None) -> None:
    for listing in listings:
        if listing is not None:
            listing.close()
