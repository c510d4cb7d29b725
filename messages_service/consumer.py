"""The queue consumer: a background loop that keeps going through errors, with back-off."""

from __future__ import annotations

import logging
import threading
import time

from lab_common import metrics
from lab_common.logs import ERROR_PREFIX, clipped
from messages_service.service import Inbox

log = logging.getLogger(__name__)


class QueueConsumer:
    """Takes messages off the queue in `threads` loops of their own, each running its own transactions; every
    loop outlives any failure, with back-off. Why one loop is the default: docs/internals.md."""

    def __init__(self, inbox: Inbox, instance: str, *, batch: int = 50, poll_seconds: float = 1.0,
                 max_backoff: float = 5.0, threads: int = 1):
        self._inbox = inbox
        self._instance = instance
        self._batch = batch
        self._poll_seconds = poll_seconds
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, name=f"queue-consumer-{i + 1}", daemon=True)
                         for i in range(threads)]
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.received_count = 0
        self.taken_count = 0
        self.transactions = 0  # that took at least one item

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
        return ok, {"state": state, "received": self.received_count, "taken": self.taken_count,
                    "transactions": self.transactions}

    def step(self) -> int:
        """Take one batch off the queue; answers how many messages were received."""
        batch = self._inbox.receive_batch(self._instance, self._batch, self._poll_seconds)
        for message in batch.recorded:
            log.info("received uuid=%s request_id=%s msg=%s", message.uuid, batch.request_ids.get(message.uuid),
                     clipped(message.msg))
        with self._lock:
            self.received_count += len(batch.recorded)
            self.taken_count += batch.taken
            self.transactions += 1 if batch.taken else 0
        metrics.record_consumed(len(batch.recorded), batch.taken)
        return len(batch.recorded)

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
