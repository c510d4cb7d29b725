"""Load through the facade: one POST and how it went, and posters that keep POSTing from threads."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import requests

from scripts.probe import wait_for

POST_TIMEOUT = 30.0  # above the facade's worst case: 3 logging calls of 2 s, then 3 queue offers of 5 s


@dataclass(frozen=True)
class Outcome:
    """One POST: the uuid on 201, else the status (None when nothing answered) and what went wrong."""

    msg: str
    started: float
    elapsed: float
    status: int | None
    uuid: str | None = None
    error: str | None = None


def post_message(session: requests.Session, facade: str, msg: str, timeout: float = POST_TIMEOUT) -> Outcome:
    """POST one message to the facade and say how it went."""
    started, began = time.time(), time.monotonic()
    try:
        response = session.post(facade + "/facade", data={"msg": msg}, timeout=timeout)
    except requests.RequestException as err:
        return Outcome(msg, started, time.monotonic() - began, None, error=type(err).__name__)
    elapsed = time.monotonic() - began
    if response.status_code == 201:
        try:
            return Outcome(msg, started, elapsed, 201, uuid=response.json()["uuid"])
        except (ValueError, KeyError):
            return Outcome(msg, started, elapsed, 201, error="201 without a uuid")
    return Outcome(msg, started, elapsed, response.status_code, error=response.text.strip()[:200])


class Poster:
    """POSTs through the facade from `threads` threads until stopped, `count` sent or `seconds` passed,
    recording every outcome."""

    def __init__(self, facade: str, tag: str, *, threads: int = 4, count: int | None = None,
                 seconds: float = 120.0, timeout: float = POST_TIMEOUT):
        self._url = facade
        self._tag = tag
        self._count = count
        self._seconds = seconds
        self._timeout = timeout
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = 0.0
        self._threads = [threading.Thread(target=self._post_until_done, name=f"poster-{i}", daemon=True)
                         for i in range(threads)]
        self.outcomes: list[Outcome] = []

    def start(self) -> Poster:
        self._deadline = time.monotonic() + self._seconds
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self) -> None:
        """Until every thread is done: bounded by the deadline plus one request's timeout."""
        for thread in self._threads:
            thread.join(max(0.0, self._deadline - time.monotonic()) + self._timeout + 5.0)

    def wait_accepted(self, count: int, timeout: float) -> bool:
        _, seconds = wait_for(lambda: len(self.accepted), lambda n: n >= count, timeout, interval=0.05)
        return seconds is not None

    @property
    def accepted(self) -> dict[str, str]:
        """uuid -> msg of every POST answered 201."""
        with self._lock:
            return {o.uuid: o.msg for o in self.outcomes if o.uuid}

    @property
    def failures(self) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if not o.uuid]

    def _next_message(self) -> str | None:
        with self._lock:
            number = next(self._numbers)
        if self._count is not None and number > self._count:
            return None
        return f"{self._tag}{number}"

    def _post_until_done(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                msg = self._next_message()
                if msg is None:
                    return
                outcome = post_message(session, self._url, msg, self._timeout)
                with self._lock:
                    self.outcomes.append(outcome)


def failure_summary(failures: Iterable[Outcome]) -> str:
    """'12 x 503, 1 x ReadTimeout' (or 'none')."""
    kinds = Counter(str(o.status) if o.status is not None else o.error for o in failures)
    return ", ".join(f"{n} x {kind}" for kind, n in kinds.most_common()) or "none"
