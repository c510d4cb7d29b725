"""The queue consumer: a background loop that keeps going through errors, with back-off."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceivedMessage:
    uuid: str
    msg: str
    received_by: str
    seq: int

    def to_json(self) -> dict:
        return {"uuid": self.uuid, "msg": self.msg, "received_by": self.received_by, "seq": self.seq}


class Inbox(Protocol):
    def receive_batch(self, copy_name: str, max_items: int, wait_seconds: float) -> list[ReceivedMessage]:
        """Take up to max_items from the queue and record them as received by copy_name, atomically.

        Waits up to wait_seconds for the first item. Answers what was newly recorded (a uuid seen
        before is dropped, not recorded twice)."""

    def received_by(self, copy_name: str) -> list[ReceivedMessage]: ...

    def logged_not_received(self, from_seq: int, to_seq: int) -> list[dict]:
        """Messages the logging map holds with seq in [from_seq, to_seq] that no copy has received."""

    def requeue(self, uuid: str, msg: str) -> None: ...


class Redelivery:
    """Puts back on the queue what was logged but never received.

    When a member dies, the queue items that a consumer transaction coordinated by it had taken stay
    reserved by that transaction: the client lives on, so Hazelcast never rolls it back, and the items
    reach no copy. The logging map is the record of what was accepted: every message logged more than
    `grace` seconds ago and received by no copy is offered again (consumers drop a uuid they have).
    Each message is looked at once, in order of seq, from `horizon` seconds before this copy started."""

    def __init__(self, inbox: Inbox, *, grace: float = 10.0, horizon: float = 60.0, span: float = 60.0,
                 clock: Callable[[], float] = time.time):
        self._inbox = inbox
        self._grace_us = int(grace * 1e6)
        self._span_us = int(span * 1e6)  # at most this much of the log per step, so no step is large
        self._clock = clock
        self._checked_to = int(clock() * 1e6) - int(horizon * 1e6)
        self.requeued = 0
        self._stop = threading.Event()

    def start(self, every: float = 5.0) -> Redelivery:
        """Check every `every` seconds in a thread of its own: a consumer stuck in a transaction with a
        dying member must not hold this up."""

        def run():
            while not self._stop.wait(every):
                try:
                    self.step()
                except Exception as err:  # the next round tries again
                    log.warning("redelivery check failed: %s: %s", type(err).__name__, err)

        threading.Thread(target=run, name="redelivery", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def step(self) -> int:
        until = min(int(self._clock() * 1e6) - self._grace_us, self._checked_to + self._span_us)
        if until <= self._checked_to:
            return 0
        missing = self._inbox.logged_not_received(self._checked_to + 1, until)
        for entry in missing:
            self._inbox.requeue(entry["uuid"], entry["msg"])
        if missing:
            log.warning("offered again %d message(s) logged but never received: %s", len(missing),
                        " ".join(e["uuid"] for e in missing[:10]))
        self._checked_to = until
        self.requeued += len(missing)
        return len(missing)


class QueueConsumer:
    def __init__(self, inbox: Inbox, copy_name: str, *, batch: int = 50, poll_seconds: float = 1.0,
                 max_backoff: float = 5.0):
        self._inbox = inbox
        self._copy = copy_name
        self._batch = batch
        self._poll_seconds = poll_seconds
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-consumer", daemon=True)
        self.last_error: str | None = None
        self.received_count = 0

    def start(self) -> QueueConsumer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def health(self) -> tuple[bool, str]:
        if not self.running:
            return False, "consumer is not running"
        if self.last_error:
            return False, f"consumer failing: {self.last_error}"
        return True, f"running, {self.received_count} received"

    def step(self) -> int:
        received = self._inbox.receive_batch(self._copy, self._batch, self._poll_seconds)
        for message in received:
            log.info("received uuid=%s msg=%r", message.uuid, message.msg)
        self.received_count += len(received)
        return len(received)

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as err:  # the loop must outlive any single failure
                self.last_error = f"{type(err).__name__}: {err}"
                log.warning("consumer step failed (%s); retrying in %.1fs", self.last_error, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if self.last_error:
                log.info("consumer recovered")
            self.last_error = None
            backoff = 0.2
        log.info("consumer stopped")

