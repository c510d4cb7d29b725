"""messages-service's types and ports: what a consumer transaction answers, the ports its workers use, and the
journal of what this copy processed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lab_common.contracts import LoggedMessage, ReceivedMessage
from lab_common.errors import Unavailable


@dataclass(frozen=True)
class Batch:
    recorded: list[ReceivedMessage]  # newly recorded as received by this copy
    taken: int  # items taken off the queue (a uuid received before is taken and dropped)
    request_ids: dict[str, str] = field(default_factory=dict)  # uuid -> the id of the POST that queued it
    redelivered: int = 0  # items taken that redelivery had offered again (they carry no POST's request id)


class NotCommitted(Unavailable):
    """A consumer transaction failed after recording: what it recorded stays recorded as received by this copy
    (its items go back to the queue and are dropped when taken again); `unanswered` records got no answer
    and may or may not have been written."""

    def __init__(self, message: str, recorded: list[ReceivedMessage], unanswered: int = 0,
                 request_ids: dict[str, str] | None = None):
        super().__init__(message)
        self.recorded = recorded
        self.unanswered = unanswered
        self.request_ids = request_ids or {}


BeforeCommit = Callable[[list[ReceivedMessage]], None]


class Inbox(Protocol):
    """The consumer's port (and the HTTP face's read): the queue taken into the received map."""

    def receive_batch(self, instance: str, max_items: int, wait_seconds: float,
                      before_commit: BeforeCommit | None = None) -> Batch:
        """Take up to max_items from the queue and record them as received by instance before the take is
        final (a take that fails goes back to the queue). Waits up to wait_seconds for the first item. A uuid
        recorded before is dropped, not recorded twice. `before_commit` is called with what was recorded (also
        when recording then fails) before the take is committed; if it raises, nothing is committed. Raises
        NotCommitted, naming what it recorded, when the take fails after recording."""

    def received_as_json(self, instance: str) -> list[str]:
        """What instance received, in seq order, each message as its JSON text ({uuid, msg,
        received_by, seq}): the full read, without an object per message."""


class RedeliveryPort(Protocol):
    """Redelivery's port: the logging map, the received map and the queue, seen from outside."""

    def logged_between(self, from_seq: int, to_seq: int) -> list[LoggedMessage]:
        """The entries the logging map holds with seq in [from_seq, to_seq]."""

    def received_among(self, uuids: list[str]) -> set[str]:
        """Which of these uuids some copy has received."""

    def requeue(self, messages: list[tuple[str, str]]) -> None:
        """Offer these (uuid, msg) to the queue again."""

    def queue_cleared_to(self) -> int:
        """A time (µs) such that every item offered before it has left the queue: the head item's offer
        time, or now when the queue is empty."""

    def scan_mark(self) -> int | None:
        """The seq up to which some copy has scanned the log for redelivery (None: never)."""

    def save_scan_mark(self, seq: int) -> None: ...


@dataclass(frozen=True)
class JournalEntry:
    """One message a copy recorded as received, as its journal keeps it: a record of processing that does not
    go through the received map, so a message two copies (or one copy twice) processed shows twice."""

    uuid: str
    at: int  # µs since the epoch, when it was journaled
    copy: str
    batch: str  # the consumer batch that recorded it

    def to_json(self) -> dict:
        # by hand: dataclasses.asdict copies deeply, several times the cost of the whole append
        return {"uuid": self.uuid, "at": self.at, "copy": self.copy, "batch": self.batch}


class Journal(Protocol):
    """A copy's own append-only journal of the messages it processed, in append order."""

    def append(self, entries: Sequence[JournalEntry]) -> None:
        """Keep these before returning, so that they outlive a SIGKILL of the process; raises
        JournalUnavailable when they cannot be kept."""

    def page(self, after: int, limit: int) -> list[str]:
        """Up to `limit` entries after the first `after`, each as its JSON text."""

    def pages(self) -> Iterator[list[str]]:
        """The whole journal as JSON texts, a chunk at a time."""


class JournalUnavailable(Unavailable):
    """The journal cannot keep an entry (its file cannot be written): nothing may be committed."""
