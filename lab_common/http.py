"""Calls to other services: pooled keep-alive connections, a timeout on every call, and tenacity
retries that fail over to another copy on each attempt.

The transport is urllib3 (what requests is built on), used directly: on the facade's POST path
requests' session machinery cost about 0.4 ms of CPU per call on top of urllib3's own.
"""

from __future__ import annotations

import logging
import random
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import orjson
import urllib3
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from lab_common.errors import Unavailable

if TYPE_CHECKING:
    from lab_common.discovery import Discovery

log = logging.getLogger(__name__)


Timeout = float | tuple[float, float]  # seconds, or (connect, read)
SPOOL_IN_MEMORY = 1 << 20  # a spooled answer larger than this goes to a temporary file
SPOOL_PIECE = 1 << 16


def pooled_http(pool_size: int = 32) -> urllib3.PoolManager:
    """Keep-alive connections, up to pool_size per copy; no retries of its own (ServiceClient retries
    on another copy)."""
    return urllib3.PoolManager(num_pools=16, maxsize=pool_size, retries=False)


def http_request(http: urllib3.PoolManager, method: str, url: str, *, timeout: Timeout, json=None,
                 params: dict | None = None, preload_content: bool = True) -> urllib3.BaseHTTPResponse:
    """One request; urllib3's own errors (connection refused, reset, timeouts) pass through."""
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    body, headers = None, None
    if json is not None:
        body, headers = orjson.dumps(json), {"Content-Type": "application/json"}
    return http.request(method, url, body=body, headers=headers, fields=params, preload_content=preload_content,
                        timeout=urllib3.Timeout(connect=connect, read=read))


class CopyFailed(Exception):
    """One copy did not answer usefully (connection error, timeout or 5xx); another may."""


@dataclass(frozen=True)
class Reply:
    copy: str
    status: int
    body: dict  # the JSON answer; {} for a 200 asked for with spool=True
    file: BinaryIO | None = None  # with spool=True, a 200 answer as it came, for the caller to read and close


class ServiceClient:
    """Calls one named service, choosing a random copy and another one on each retry."""

    def __init__(self, service: str, discovery: Discovery, http: urllib3.PoolManager, *,
                 timeout: Timeout, attempts: int, backoff: float = 0.05):
        self.service = service
        self._discovery = discovery
        self._http = http
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff

    def call(self, method: str, path: str, **kwargs) -> Reply:
        """The first reply below 500; Unavailable when every attempt failed. With spool=True a 200
        answer is not decoded but kept as it came in `file` (in memory while small, then on disk):
        large answers are then read piece by piece."""
        copies = self._copies_in_random_order()
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff, max=1.0),
            retry=retry_if_exception_type(CopyFailed),
            reraise=False,
        )
        failures: list[str] = []
        try:
            for attempt in retrying:
                with attempt:
                    copy = copies[(attempt.retry_state.attempt_number - 1) % len(copies)]
                    try:
                        return self._call_copy(copy, method, path, **kwargs)
                    except CopyFailed as err:
                        failures.append(str(err))
                        self._discovery.invalidate(self.service)
                        fresh = self._discovery.addresses(self.service)
                        if set(fresh) != set(copies):
                            copies = random.sample(fresh, len(fresh))
                        raise
        except RetryError:
            pass
        raise Unavailable(f"no copy of {self.service} answered", attempts=failures)

    def call_copy(self, copy: str, method: str, path: str, **kwargs) -> Reply:
        """One call to one given copy, no retries; Unavailable if it does not answer."""
        try:
            return self._call_copy(copy, method, path, **kwargs)
        except CopyFailed as err:
            raise Unavailable(str(err)) from err

    def _copies_in_random_order(self) -> list[str]:
        copies = self._discovery.addresses(self.service)
        return random.sample(copies, len(copies))

    def _call_copy(self, copy: str, method: str, path: str, *, timeout: Timeout | None = None, spool: bool = False,
                   **kwargs) -> Reply:
        try:
            response = http_request(self._http, method, copy + path, timeout=timeout or self._timeout,
                                    preload_content=not spool, **kwargs)
            if spool and response.status == 200:
                return Reply(copy=copy, status=200, body={}, file=_spooled(response))
            data = response.data
        except urllib3.exceptions.HTTPError as err:
            log.warning("%s %s%s failed: %s", method, copy, path, type(err).__name__)
            raise CopyFailed(f"{copy}: {type(err).__name__}") from err
        if response.status >= 500:
            log.warning("%s %s%s answered %s", method, copy, path, response.status)
            raise CopyFailed(f"{copy}: HTTP {response.status}")
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as err:
            raise CopyFailed(f"{copy}: answer is not JSON") from err
        return Reply(copy=copy, status=response.status, body=body)


def _spooled(response: urllib3.BaseHTTPResponse) -> BinaryIO:
    """The answer's body, read in pieces into a file that stays in memory up to SPOOL_IN_MEMORY bytes."""
    file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    try:
        for piece in response.stream(SPOOL_PIECE):
            file.write(piece)
    except BaseException:
        file.close()
        raise
    finally:
        response.release_conn()
    file.seek(0)
    return file
