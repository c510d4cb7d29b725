"""The message log: record a message once per uuid, read them back in the order they were posted."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Protocol, TypeVar

from lab_common.contracts import LoggedMessage
from lab_common.logs import clipped

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_UUID_LENGTH = 128  # a longer uuid is refused (400 over HTTP, INVALID_ARGUMENT over gRPC)


class MessageStore(Protocol):
    def add_if_absent(self, message: LoggedMessage) -> LoggedMessage | None:
        """Store the message unless its uuid is there; answer the one already stored, if any."""

    def all_as_json(self) -> Iterator[list[str]]:
        """Every message as its JSON text ({uuid, msg, logged_by, seq}), in seq order and in pages: the
        full read, without an object per message or every message at once."""

    def page(self, after_seq: int | None, limit: int) -> list[LoggedMessage]:
        """About `limit` messages with seq > after_seq (from the first if None), in seq order; more than
        `limit` only when several share the last seq, so that a cursor on seq never skips one."""


@dataclass(frozen=True)
class RecordResult:
    message: LoggedMessage
    created: bool


class MessageLog:
    def __init__(self, store: MessageStore, instance: str, clock: Callable[[], int] = time.time_ns):
        self._store = store
        self._instance = instance
        self._clock = clock

    def _next_seq(self) -> int:
        # microseconds since the epoch: orders messages by when they were logged, and stays exact
        # where JSON numbers are read as doubles (below 2**53)
        return self._clock() // 1000

    def record(self, uuid: str, msg: str, request_id: str | None = None) -> RecordResult:
        candidate = LoggedMessage(uuid=uuid, msg=msg, logged_by=self._instance, seq=self._next_seq())
        existing = self._store.add_if_absent(candidate)
        if existing is not None:
            log.info("duplicate uuid=%s request_id=%s msg=%s (first logged by %s)", uuid, request_id, clipped(msg),
                     existing.logged_by)
            return RecordResult(existing, created=False)
        log.info("logged uuid=%s request_id=%s msg=%s", uuid, request_id, clipped(msg))
        return RecordResult(candidate, created=True)

    def messages_as_json(self) -> Iterator[list[str]]:
        return self._store.all_as_json()

    def page(self, after_seq: int | None, limit: int) -> list[LoggedMessage]:
        return self._store.page(after_seq, limit)


def cut_page(messages: list[T], limit: int, seq: Callable[[T], int] = attrgetter("seq")) -> list[T]:
    """The first `limit` of messages sorted by seq, plus any that share the last one's seq."""
    page = messages[:limit]
    for extra in messages[limit:]:
        if seq(extra) != seq(page[-1]):
            break
        page.append(extra)
    return page
