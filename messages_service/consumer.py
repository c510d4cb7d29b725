"""The queue consumer: a background loop that keeps going through errors, with back-off. Every message a batch
records is written to the copy's journal before the batch is committed."""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from lab_common import metrics
from lab_common.contracts import ReceivedMessage
from lab_common.logs import ERROR_PREFIX, clipped
from messages_service.service import Inbox, Journal, JournalEntry, NotCommitted

log = logging.getLogger(__name__)


@dataclass
class ConsumerCounts:
    """What a copy's consumer did since the process started (its /health shows them)."""

    received: int = 0  # records written: what this copy's GET /messages lists, not_committed included
    taken: int = 0  # items taken by committed transactions
    dropped: int = 0  # of those, items whose uuid some copy had received already
    redelivered: int = 0  # of those, items that redelivery had offered again
    transactions: int = 0  # committed ones that took at least one item
    not_committed: int = 0  # records written by a transaction that then failed (its items come back, dropped)
    unanswered: int = 0  # record writes that got no answer: written or not, nobody knows


def _now_us() -> int:
    return time.time_ns() // 1000


class QueueConsumer:
    """Takes messages off the queue in `threads` loops of their own, each running its own transactions; every
    loop outlives any failure, with back-off. Why one loop is the default: docs/internals.md."""

    def __init__(self, inbox: Inbox, instance: str, *, journal: Journal, batch: int = 50, poll_seconds: float = 1.0,
                 max_backoff: float = 5.0, threads: int = 1, clock_us: Callable[[], int] = _now_us):
        self._inbox = inbox
        self._instance = instance
        self._journal = journal
        self._clock_us = clock_us
        # batch ids: a token of this process, then a count (a restarted copy appends to the same journal)
        token = secrets.token_hex(3)
        self._batch_ids = (f"{token}-{n}" for n in itertools.count(1))
        self._batch = batch
        self._poll_seconds = poll_seconds
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, name=f"queue-consumer-{i + 1}", daemon=True)
                         for i in range(threads)]
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.counts = ConsumerCounts()

    def start(self) -> QueueConsumer:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def running(self) -> bool:
        return all(thread.is_alive() for thread in self._threads) and not self._stop.is_set()

    def health(self) -> tuple[bool, dict]:
        if not self.running:
            ok, state = False, "not running"
        elif self.last_error:
            ok, state = False, f"failing: {self.last_error}"
        else:
            ok, state = True, "running"
        with self._lock:
            counts = asdict(self.counts)
        return ok, {"state": state, **counts}

    def step(self) -> int:
        """Take one batch off the queue; answers how many messages were received."""
        with self._lock:
            batch_id = next(self._batch_ids)

        def journal(recorded: list[ReceivedMessage]) -> None:
            at = self._clock_us()
            self._journal.append([JournalEntry(m.uuid, at, self._instance, batch_id) for m in recorded])

        try:
            batch = self._inbox.receive_batch(self._instance, self._batch, self._poll_seconds, journal)
        except NotCommitted as failed:  # what it recorded stands: this copy received it
            self._log_received(failed.recorded, failed.request_ids)
            with self._lock:
                self.counts.received += len(failed.recorded)
                self.counts.not_committed += len(failed.recorded)
                self.counts.unanswered += failed.unanswered
            metrics.record_consumed(len(failed.recorded), 0)
            raise
        self._log_received(batch.recorded, batch.request_ids)
        dropped = batch.taken - len(batch.recorded)
        with self._lock:
            self.counts.received += len(batch.recorded)
            self.counts.taken += batch.taken
            self.counts.dropped += dropped
            self.counts.redelivered += batch.redelivered
            self.counts.transactions += 1 if batch.taken else 0
        metrics.record_consumed(len(batch.recorded), dropped)
        return len(batch.recorded)

    @staticmethod
    def _log_received(recorded: list[ReceivedMessage], request_ids: dict[str, str]) -> None:
        for message in recorded:
            log.info("received uuid=%s request_id=%s msg=%s", message.uuid, request_ids.get(message.uuid),
                     clipped(message.msg))

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as err:  # the loop must outlive any single failure
                self.last_error = f"{type(err).__name__}: {err}"
                log.warning("consumer step failed (%s); retrying in %.1fs", clipped(self.last_error, ERROR_PREFIX),
                            backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if self.last_error:
                log.info("consumer recovered")
            self.last_error = None
            backoff = 0.2
        log.info("consumer stopped")
