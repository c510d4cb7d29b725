"""Redelivery: puts back on the queue what was logged but never received, until some copy receives it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lab_common import metrics
from lab_common.logs import ERROR_PREFIX, clipped
from messages_service.service import RedeliveryPort

log = logging.getLogger(__name__)


class Redelivery:
    """Puts back on the queue what was logged but never received, once it has surely left the queue, until
    some copy receives it (docs/internals.md, "Redelivery"). `grace`: how long after its seq a message may
    still be offered by the facade; offers made again are repeated after pauses growing up to `max_pause`;
    the log is scanned `span` seconds per step, from `horizon` seconds back on a fresh cluster and at most
    `catch_up` seconds back after a restart. When a member leaves or comes back, the scan goes back over the
    log from `lookback` seconds before it left, `settle` seconds after the change (`membership_changed`)."""

    def __init__(self, port: RedeliveryPort, *, grace: float = 10.0, horizon: float = 60.0, catch_up: float = 600.0,
                 span: float = 60.0, max_pause: float = 60.0, lookback: float = 30.0, settle: float = 15.0,
                 clock: Callable[[], float] = time.time):
        self._port = port
        self._grace = grace
        self._grace_us = int(grace * 1e6)
        self._span_us = int(span * 1e6)  # at most this much of the log per step, so no step is large
        self._max_pause = max_pause
        self._clock = clock
        self._horizon_us = int(horizon * 1e6)
        self._catch_up_us = int(catch_up * 1e6)
        self._checked_to: int | None = None  # the seq up to which the log was scanned; from the cluster at first
        self._offered: dict[str, _Offered] = {}  # offered again, not yet seen received
        self._lookback = lookback
        self._settle = settle
        self._left_at: dict[str, float] = {}  # member address -> when it left, until it comes back
        self._rewinds: list[tuple[float, int]] = []  # (when, seq to scan again from)
        self._rewind_lock = threading.Lock()
        self.rescans = 0
        self.requeued = 0
        self.last_error: str | None = None
        self._stop = threading.Event()

    def start(self, every: float = 5.0) -> Redelivery:
        """Check every `every` seconds, in a thread of its own."""

        def run():
            while not self._stop.wait(every):
                try:
                    self.step()
                except Exception as err:  # the next round tries again
                    self.last_error = f"{type(err).__name__}: {err}"
                    log.warning("redelivery check failed: %s", clipped(self.last_error, ERROR_PREFIX))
                else:
                    self.last_error = None

        threading.Thread(target=run, name="redelivery", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def outstanding(self) -> int:
        """Messages offered again that no copy has been seen to receive yet."""
        return len(self._offered)

    def health(self) -> tuple[bool, dict]:
        """Always passing (the cluster check covers an unreachable cluster); says what it did."""
        return True, {"offered_again": self.requeued, "awaiting_a_copy": self.outstanding,
                      "rescans": self.rescans, "last_error": self.last_error}

    def membership_changed(self, address: str, joined: bool) -> None:
        """A member left or came back (a client's membership listener calls this). A member that hangs
        holds the writes sent to it; they land with the seq they were given before it hung, after the
        scan may have passed it: when the cluster drops the member (writes that waited on its backups),
        or when it thaws and merges back into the cluster (writes it then carries out). So the scan goes
        over the log again from `lookback` seconds before the member left, once the change has settled."""
        now = self._clock()
        with self._rewind_lock:
            if not joined:
                self._left_at.setdefault(address, now)
                left = now
            elif address in self._left_at:
                left = self._left_at.pop(address)
            else:
                return  # a member this copy never saw leave: the first member list, or a new member
            self._rewinds.append((now + self._settle, int((left - self._lookback) * 1e6)))

    def _due_rewind(self, now: float) -> int | None:
        with self._rewind_lock:
            due = [seq for at, seq in self._rewinds if at <= now]
            self._rewinds = [(at, seq) for at, seq in self._rewinds if at > now]
        return min(due, default=None)

    def step(self) -> int:
        """One round: offer again what is newly found missing and what is still missing since an
        earlier offer. Answers how many offers were made."""
        now = self._clock()
        now_us = int(now * 1e6)
        if self._checked_to is None:
            self._checked_to = self._first_mark(now_us)
        rewind = self._due_rewind(now)
        if rewind is not None and rewind < self._checked_to:
            log.info("scanning the log again from %.1f s back: the cluster's members changed",
                     (now_us - rewind) / 1e6)
            self._checked_to = rewind
            self.rescans += 1
        cleared_to = min(self._port.queue_cleared_to(), now_us)
        due = [e for e in self._offered.values() if e.due <= now and e.offered_at < cleared_to]
        until = min(now_us - self._grace_us, cleared_to - self._grace_us, self._checked_to + self._span_us)
        fresh = self._port.logged_between(self._checked_to + 1, until) if until > self._checked_to else []
        candidates = {e.uuid: e.msg for e in fresh} | {e.uuid: e.msg for e in due}
        received = self._port.received_among(list(candidates)) if candidates else set()
        for uuid in received:
            self._offered.pop(uuid, None)
        missing = [(uuid, msg) for uuid, msg in candidates.items() if uuid not in received]
        if missing:
            self._port.requeue(missing)
        for uuid, msg in missing:
            earlier = self._offered.get(uuid)
            attempts = earlier.attempts + 1 if earlier else 1
            pause = min(self._grace * 2 ** (attempts - 1), self._max_pause)
            self._offered[uuid] = _Offered(uuid, msg, attempts, offered_at=now_us, due=now + pause)
        if missing:
            again = sum(1 for uuid, _ in missing if self._offered[uuid].attempts > 1)
            log.warning("offered again %d message(s) logged but never received (%d not for the first time): %s",
                        len(missing), again, " ".join(uuid for uuid, _ in missing[:10]))
        if until > self._checked_to:
            self._checked_to = until
            self._port.save_scan_mark(until)
        self.requeued += len(missing)
        metrics.record_redelivered(len(missing))
        return len(missing)

    def _first_mark(self, now_us: int) -> int:
        saved = self._port.scan_mark()
        if saved is None:
            return now_us - self._horizon_us
        return max(saved, now_us - self._catch_up_us)


@dataclass(frozen=True)
class _Offered:
    uuid: str
    msg: str
    attempts: int
    offered_at: int  # µs; the offer has left the queue once the queue is cleared past it
    due: float  # when to look again whether some copy received it
