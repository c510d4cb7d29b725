"""The load client every tool shares: keep-alive POSTs of messages, each answered with its Outcome, and a
Poster that keeps POSTing from threads."""

from __future__ import annotations

import http.client
import itertools
import json
import select
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from labctl.probe import wait_for

POST_TIMEOUT = 30.0  # above the facade's worst case: 3 logging calls of 2 s, then 3 queue offers of 5 s
LOAD_ERRORS = (OSError, http.client.HTTPException)  # refused, reset, timed out, cut off mid-answer
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Outcome:
    """One POST: the uuid on 201, else the status (None when nothing answered) and what went wrong."""

    msg: str
    started: float
    elapsed: float
    status: int | None
    uuid: str | None = None
    error: str | None = None


class PostClient:
    """One keep-alive connection POSTing `msg=...` forms to one URL (the facade's /facade, or a bench floor part),
    on the standard library's http.client: about a fifth of the CPU per request of a requests session, so a
    load generator takes fewer of the cores the system under test shares with it. After a failure the
    connection is closed and the next request opens a new one."""

    def __init__(self, url: str, timeout: float = POST_TIMEOUT):
        parts = urlsplit(url)
        self.path = parts.path or "/"
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def __enter__(self) -> PostClient:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def request(self, method: str, path: str, form: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """Sends the request and reads the whole answer (so the connection can be used again)."""
        headers = {**({"Content-Type": FORM} if form is not None else {}), **(headers or {})}
        self._drop_if_closed_by_server()
        try:
            self._connection.request(method, path, body=form, headers=headers)
            response = self._connection.getresponse()
            body = response.read()
        except BaseException:
            self._connection.close()
            raise
        return response.status, body

    def post(self, msg: str, *, headers: Mapping[str, str] | None = None, want_uuid: bool = True) -> Outcome:
        """POST one message and say how it went; `want_uuid=False` skips reading the JSON of a 201."""
        started, began = time.time(), time.perf_counter()
        try:
            status, body = self.request("POST", self.path, urlencode({"msg": msg}).encode(), headers)
        except LOAD_ERRORS as err:
            return Outcome(msg, started, time.perf_counter() - began, None, error=type(err).__name__)
        elapsed = time.perf_counter() - began
        if status != 201:
            return Outcome(msg, started, elapsed, status, error=body.decode(errors="replace").strip()[:200])
        if not want_uuid:
            return Outcome(msg, started, elapsed, 201)
        try:
            return Outcome(msg, started, elapsed, 201, uuid=json.loads(body)["uuid"])
        except (ValueError, KeyError, TypeError):
            return Outcome(msg, started, elapsed, 201, error="201 without a uuid")

    def close(self) -> None:
        self._connection.close()

    def _drop_if_closed_by_server(self) -> None:
        """An idle keep-alive connection the server closed reads as ready (end of file): a request sent on it
        would fail without reaching the server, so it is closed and the next request opens a new one."""
        sock = self._connection.sock
        if sock is not None and select.select([sock], [], [], 0)[0]:
            self._connection.close()


class Poster:
    """POSTs through the facade from `threads` threads until stopped, `count` sent or `seconds` passed,
    recording every outcome."""

    def __init__(self, facade: str, tag: str, *, threads: int = 4, count: int | None = None,
                 seconds: float = 120.0, timeout: float = POST_TIMEOUT):
        self._url = facade + "/facade"
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
        with PostClient(self._url, self._timeout) as client:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                msg = self._next_message()
                if msg is None:
                    return
                outcome = client.post(msg)
                with self._lock:
                    self.outcomes.append(outcome)


def failure_summary(failures: Iterable[Outcome]) -> str:
    """'12 x 503, 1 x ReadTimeout' (or 'none')."""
    kinds = Counter(str(o.status) if o.status is not None else o.error for o in failures)
    return ", ".join(f"{n} x {kind}" for kind, n in kinds.most_common()) or "none"
