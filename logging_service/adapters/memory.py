"""The in-memory adapter of the message log (the lab's Task 1): one copy keeps its messages in its own
memory, with no cluster. Same contract as the Hazelcast store: a uuid stored once, reads in seq order, pages
that never split a seq. What it holds is gone when the copy stops."""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator

from lab_common.contracts import LoggedMessage

FULL_READ_PAGE = 5000  # texts per piece of a full read: the lock is never held over the whole log


class MemoryMessageStore:
    def __init__(self):
        self._lock = threading.Lock()
        self._by_uuid: dict[str, LoggedMessage] = {}
        # (seq, JSON text), sorted: messages sharing a seq in the order the Hazelcast store reads them
        self._ordered: list[tuple[int, str]] = []

    def add_if_absent(self, message: LoggedMessage) -> LoggedMessage | None:
        with self._lock:
            existing = self._by_uuid.get(message.uuid)
            if existing is not None:
                return existing
            self._by_uuid[message.uuid] = message
            insort(self._ordered, (message.seq, message.to_text()))
        return None

    def count(self) -> int:
        return len(self._by_uuid)

    def all_as_json(self) -> Iterator[list[str]]:
        """Pieces of FULL_READ_PAGE texts, each read under the lock from where the last one ended: a message
        stored during the read is either in it or after it, never read twice."""
        last: tuple[int, str] | None = None
        while True:
            with self._lock:
                start = 0 if last is None else bisect_right(self._ordered, last)
                piece = self._ordered[start:start + FULL_READ_PAGE]
            yield [text for _, text in piece]
            if len(piece) < FULL_READ_PAGE:
                return
            last = piece[-1]

    def page(self, after_seq: int | None, limit: int) -> list[LoggedMessage]:
        with self._lock:
            start = 0 if after_seq is None else bisect_left(self._ordered, (after_seq + 1,))
            end = min(start + limit, len(self._ordered))
            if end > start:  # and every message sharing the last one's seq: a cursor on seq skips none
                end = max(end, bisect_left(self._ordered, (self._ordered[end - 1][0] + 1,)))
            page = self._ordered[start:end]
        return [LoggedMessage.from_text(text) for _, text in page]
