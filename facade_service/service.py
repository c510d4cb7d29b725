"""The facade's service layer: post a message (log and queue it) and read the merged view."""

from __future__ import annotations

import logging
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lab_common.errors import Conflict, Unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listing:
    copy: str
    url: str
    messages: list[dict]
    next: str | None = None  # the cursor of the following page, for paged reads

    def to_json(self) -> dict:
        return {"copy": self.copy, "url": self.url, "count": len(self.messages), "messages": self.messages}


class LoggingPort(Protocol):
    def log(self, uuid: str, msg: str) -> dict:
        """Store {uuid, msg} in some logging copy; answers the entry as stored (with logged_by)."""

    def messages(self) -> Listing: ...

    def page(self, limit: int, after: str | None) -> Listing: ...


class MessagesPort(Protocol):
    def messages(self) -> Listing: ...


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

    def read(self) -> dict:
        logged = self._logging.messages()
        try:
            received = self._messages.messages()
        except Unavailable as err:
            log.warning("GET without messages: %s", err.message)
            received, messages_error = None, err.message
        else:
            messages_error = None
        received_uuids = {m["uuid"] for m in received.messages} if received else set()
        merged = [
            {"uuid": m["uuid"], "msg": m["msg"], "logged_by": m.get("logged_by"),
             "received_by": received.copy if m["uuid"] in received_uuids else None}
            for m in logged.messages
        ]
        return {
            "count": len(merged),
            "merged": merged,
            "logging": logged.to_json(),
            "messages": received.to_json() if received else {"copy": None, "error": messages_error},
        }
