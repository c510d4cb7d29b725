"""Pooled keep-alive HTTP connections (http.client) to the copies of a service, with a timeout on every
request. The copy-choosing client on top of it is lab_common.http; why not urllib3: docs/internals.md."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlencode, urlsplit

import orjson

Timeout = float | tuple[float, float]  # seconds, or (connect, read)
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
