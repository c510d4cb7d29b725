"""Calls to other services: a copy chosen for each attempt (lab_common.failover), over pooled keep-alive
connections with a timeout on every call (lab_common.http_pool). Why not urllib3: docs/internals.md.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import orjson

from lab_common import metrics
from lab_common.errors import NoQuorum
from lab_common.failover import CopyBreakers, CopyFailed, CopyRefused, Failover, Pace
from lab_common.http_pool import HttpPool, HttpResponse, Timeout, TransportError

if TYPE_CHECKING:
    from lab_common.discovery import Discovery

# HttpPool, HttpResponse and TransportError are imported from here by the services and the tools too
__all__ = ["HttpPool", "HttpResponse", "Reply", "ServiceClient", "Timeout", "TransportError"]

log = logging.getLogger(__name__)

SPOOL_IN_MEMORY = 1 << 20  # a spooled answer larger than this goes to a temporary file
SPOOL_PIECE = 1 << 16


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

    def call(self, method: str, path: str, *, window: float = 0.0, pace: Pace | None = None, **kwargs) -> Reply:
        """The first reply below 500, or the last refusal (NoQuorum's 503: the copy answered, its cluster
        refused writes) when every attempt was refused (CopyRefused); Unavailable when every attempt failed
        (and `window` seconds have passed: a caller may keep trying that long while no copy answers). With
        spool=True a 200 answer is not decoded but kept as it came in `file` (in memory while small, then on
        disk): large answers are then read piece by piece. `pace`: see Failover.run."""
        return self._failover.run(lambda base_url: self._call_copy(base_url, method, path, **kwargs), window=window,
                                  pace=pace)

    def _call_copy(self, base_url: str, method: str, path: str, **kwargs) -> Reply:
        started, ok = time.perf_counter(), False
        try:
            reply = self._call_copy_unmeasured(base_url, method, path, **kwargs)
            ok = True
            return reply
        except CopyRefused:
            ok = True  # it answered
            raise
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
        if _refusal(response.status, body):
            raise CopyRefused(f"{base_url}: HTTP 503, {body.get('message')}",
                              Reply(base_url=base_url, status=response.status, body=body))
        if response.status >= 500:
            log.warning("%s %s%s answered %s", method, base_url, path, response.status)
            raise CopyFailed(f"{base_url}: HTTP {response.status}")
        if isinstance(body, orjson.JSONDecodeError):
            raise CopyFailed(f"{base_url}: answer is not JSON") from body
        return Reply(base_url=base_url, status=response.status, body=body)


def _refusal(status: int, body) -> bool:
    """A 503 saying the copy's cluster refuses writes (no quorum): every copy gives it when members are gone,
    but under a partition a copy on the larger side may not; not a failure of this copy."""
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
