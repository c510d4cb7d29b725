"""Calls to other services: pooled keep-alive connections (http.client), a timeout on every call, and
another copy on each attempt (lab_common.failover). Why not urllib3: docs/internals.md.
"""

from __future__ import annotations

import http.client
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlencode, urlsplit

import orjson

from lab_common import metrics
from lab_common.errors import NoQuorum, Unavailable
from lab_common.failover import CopyBreakers, CopyFailed, Failover

if TYPE_CHECKING:
    from lab_common.discovery import Discovery

log = logging.getLogger(__name__)


Timeout = float | tuple[float, float]  # seconds, or (connect, read)
SPOOL_IN_MEMORY = 1 << 20  # a spooled answer larger than this goes to a temporary file
SPOOL_PIECE = 1 << 16
JSON_HEADERS = {"Content-Type": "application/json"}
# what a copy's closing of an idle keep-alive connection looks like on the next request through it
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class TransportError(Exception):
    """The request did not get a whole answer: refused, reset, timed out, or cut off mid-way."""


@dataclass
class HttpResponse:
    status: int
    data: bytes  # the whole body; empty when it was asked for as a stream
    stream: http.client.HTTPResponse | None = None  # with stream=True: read it with pieces()
    _release: Callable[[bool], None] | None = None  # True: read to the end, the connection may be reused

    def pieces(self, size: int) -> Iterator[bytes]:
        """The streamed body piece by piece; TransportError if it ends before its announced length."""
        whole = False
        try:
            while piece := self.stream.read(size):
                yield piece
            if self.stream.length:  # http.client answers b"" early when the copy closes mid-way
                raise TransportError(f"answer cut off {self.stream.length} bytes short")
            whole = True
        except (OSError, http.client.HTTPException) as err:
            raise TransportError(type(err).__name__) from err
        finally:
            self._release(whole)


class HttpPool:
    """Keep-alive connections per copy (`http://host:port`), at most `size` idle ones each; thread-safe.
    A connection that failed, or that the copy means to close, is closed and never reused."""

    def __init__(self, size: int = 32):
        self._size = size
        self._idle: dict[str, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def request(self, method: str, base_url: str, path: str, *, timeout: Timeout, json=None,
                params: dict | None = None, headers: dict[str, str] | None = None, stream: bool = False
                ) -> HttpResponse:
        """One request to the copy at `base_url`. The answer is read whole unless `stream`; its
        connection goes back to the pool once read."""
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        body = orjson.dumps(json) if json is not None else None
        target = f"{path}?{urlencode(params)}" if params else path
        connection = self._take(base_url)
        reused = connection is not None
        while True:
            connection = connection or _connection(base_url, connect)
            try:
                if connection.sock is None:
                    connection.connect()
                connection.sock.settimeout(read)
                sent_headers = {**(JSON_HEADERS if body is not None else {}), **(headers or {})}
                connection.request(method, target, body=body, headers=sent_headers)
                response = connection.getresponse()
                if stream:
                    return HttpResponse(response.status, b"", response, partial(self._give_back, base_url, connection))
                data = response.read()
            except _STALE:
                connection.close()
                if reused:  # the copy had closed it while idle: once more on a new connection
                    connection, reused = None, False
                    continue
                raise TransportError("connection reset") from None
            except (OSError, http.client.HTTPException) as err:
                connection.close()
                raise TransportError(type(err).__name__) from err
            self._give_back(base_url, connection, True)
            return HttpResponse(response.status, data)

    def clear(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _take(self, base_url: str) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(base_url)
            return idle.pop() if idle else None

    def _give_back(self, base_url: str, connection: http.client.HTTPConnection, read_whole: bool) -> None:
        if connection.sock is None or not read_whole:
            connection.close()  # the copy closes it (http.client has let go of it), or its answer was cut
            return
        with self._lock:
            idle = self._idle.setdefault(base_url, [])
            if len(idle) < self._size:
                idle.append(connection)
                return
        connection.close()


def _connection(base_url: str, connect_timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(base_url)
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=connect_timeout)


@dataclass(frozen=True)
class Reply:
    base_url: str  # of the copy that answered
    status: int
    body: dict  # the JSON answer; {} for a 200 asked for with spool=True
    file: BinaryIO | None = None  # with spool=True, a 200 answer as it came, for the caller to read and close


class ServiceClient:
    """Calls one named service: a random copy, another one on each retry (Failover), with a circuit
    breaker per copy when given `breakers`."""

    def __init__(self, service: str, discovery: Discovery, http: HttpPool, *,
                 timeout: Timeout, attempts: int, backoff: float = 0.05, breakers: CopyBreakers | None = None):
        self.service = service
        self._http = http
        self._timeout = timeout
        self._failover = Failover(service, discovery, attempts=attempts, backoff=backoff, breakers=breakers)

    def call(self, method: str, path: str, *, window: float = 0.0, **kwargs) -> Reply:
        """The first reply below 500 or that says every copy would be refused alike (NoQuorum's 503: the copy
        answered, its cluster refused); Unavailable when every attempt failed (and `window` seconds have
        passed: a caller may keep trying that long while no copy answers). With spool=True a 200
        answer is not decoded but kept as it came in `file` (in memory while small, then on disk):
        large answers are then read piece by piece."""
        return self._failover.run(lambda base_url: self._call_copy(base_url, method, path, **kwargs), window=window)

    def call_copy(self, base_url: str, method: str, path: str, **kwargs) -> Reply:
        """One call to one given copy, no retries; Unavailable if it does not answer."""
        try:
            return self._call_copy(base_url, method, path, **kwargs)
        except CopyFailed as err:
            raise Unavailable(str(err)) from err

    def _call_copy(self, base_url: str, method: str, path: str, **kwargs) -> Reply:
        started, ok = time.perf_counter(), False
        try:
            reply = self._call_copy_unmeasured(base_url, method, path, **kwargs)
            ok = True
            return reply
        finally:
            metrics.record_call(self.service, base_url, time.perf_counter() - started, ok)

    def _call_copy_unmeasured(self, base_url: str, method: str, path: str, *, timeout: Timeout | None = None,
                              spool: bool = False, **kwargs) -> Reply:
        try:
            response = self._http.request(method, base_url, path, timeout=timeout or self._timeout, stream=spool,
                                          **kwargs)
            if spool and response.status == 200:
                return Reply(base_url=base_url, status=200, body={}, file=_spooled(response))
            data = b"".join(response.pieces(SPOOL_PIECE)) if spool else response.data
        except TransportError as err:
            log.warning("%s %s%s failed: %s", method, base_url, path, type(err).__name__)
            raise CopyFailed(f"{base_url}: {type(err).__name__}") from err
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as err:
            body = err
        if response.status >= 500 and not _shared_refusal(response.status, body):
            log.warning("%s %s%s answered %s", method, base_url, path, response.status)
            raise CopyFailed(f"{base_url}: HTTP {response.status}")
        if isinstance(body, orjson.JSONDecodeError):
            raise CopyFailed(f"{base_url}: answer is not JSON") from body
        return Reply(base_url=base_url, status=response.status, body=body)


def _shared_refusal(status: int, body) -> bool:
    """A 503 that every copy would give (the cluster they share refuses writes): no reason to try another
    copy, nor to count it against this one's breaker."""
    return status == 503 and isinstance(body, dict) and body.get("reason") == NoQuorum.reason


def _spooled(response: HttpResponse) -> BinaryIO:
    """The answer's body, read in pieces into a file that stays in memory up to SPOOL_IN_MEMORY bytes."""
    file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    try:
        for piece in response.pieces(SPOOL_PIECE):
            file.write(piece)
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return file
